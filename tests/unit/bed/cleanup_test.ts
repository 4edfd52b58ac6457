import assert from "node:assert/strict";
import { withCleanup } from "../../bed/cleanup.ts";

Deno.test("withCleanup() rethrows the test's own error and adds a failed cleanup's to it", async () => {
  const own = new assert.AssertionError({ message: "restored bytes differ" });
  const ran: string[] = [];
  const got = await withCleanup([
    () => {
      ran.push("close");
      throw new Error("zpool destroy -f z3t1 failed (1): pool is busy");
    },
    () => void ran.push("remove"),
  ], () => Promise.reject(own)).catch((err) => err);
  assert.equal(got, own, "the test's own error, not the cleanup's");
  assert.match(
    got.message,
    /^restored bytes differ\nand then a cleanup failed too: .*pool is busy$/,
  );
  assert.deepEqual(ran, ["close", "remove"], "every cleanup ran");
});

Deno.test("withCleanup() returns the body's value, and throws a cleanup's error after a pass", async () => {
  assert.equal(await withCleanup([() => {}], () => Promise.resolve(7)), 7);
  const busy = new Error("pool is busy");
  await assert.rejects(
    withCleanup([() => Promise.reject(busy), () => {}], () => Promise.resolve()),
    (err) => err === busy,
  );
});
