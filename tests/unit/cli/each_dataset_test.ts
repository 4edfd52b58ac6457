import assert from "node:assert/strict";
import {
  type DatasetOutcome,
  eachDataset,
  exitCodeOf,
  shortReason,
  summaryLine,
} from "../../../lib/cli/each_dataset.ts";
import { ChainError, InterruptedError, S3Error, ZfsError } from "../../../lib/base/errors.ts";

const diverged = new ChainError(
  'Cannot back up "pool/b@s2": the local and bucket histories diverged at "pool/b@s1" ' +
    "(guid: local 1 vs bucket 2); the dataset was probably recreated",
);

Deno.test("eachDataset() goes on after a failure and names the dataset on stderr", async () => {
  const lines: string[] = [];
  const ran: string[] = [];
  const outcomes = await eachDataset(["pool/a", "pool/b", "pool/c"], (d) => {
    ran.push(d);
    if (d === "pool/b") return Promise.reject(diverged);
    return Promise.resolve(d.length);
  }, { err: (l) => lines.push(l) });
  assert.deepEqual(ran, ["pool/a", "pool/b", "pool/c"]);
  assert.deepEqual(outcomes.map((o) => o.ok), [true, false, true]);
  assert.deepEqual(lines, [`z3: pool/b: ${diverged.message}`]);
  assert.equal(exitCodeOf(outcomes), 5);
});

Deno.test("eachDataset() with one dataset throws its error as it is", async () => {
  await assert.rejects(
    eachDataset(["pool/a"], () => Promise.reject(diverged), { err: () => {} }),
    (e) => e === diverged,
  );
});

Deno.test("eachDataset() stops at a signal", async () => {
  const ran: string[] = [];
  await assert.rejects(
    eachDataset(["pool/a", "pool/b"], (d) => {
      ran.push(d);
      return Promise.reject(new InterruptedError("SIGTERM"));
    }, { err: () => {} }),
    InterruptedError,
  );
  assert.deepEqual(ran, ["pool/a"]);
});

Deno.test("summaryLine() counts what each dataset did and names the failed ones", () => {
  const outcomes: DatasetOutcome<string>[] = [
    { dataset: "pool/a", ok: true, value: "backed up" },
    { dataset: "pool/b", ok: false, error: diverged, code: 5 },
    { dataset: "pool/c", ok: true, value: "backed up" },
    { dataset: "pool/d", ok: true, value: "backed up" },
  ];
  assert.equal(
    summaryLine(outcomes, (v) => v),
    '4 datasets: 3 backed up, 1 failed: pool/b (the local and bucket histories diverged at "pool/b@s1")',
  );
});

Deno.test("exitCodeOf() is the first failed dataset's code, else the given one", () => {
  const outcomes: DatasetOutcome<number>[] = [
    { dataset: "a", ok: true, value: 1 },
    { dataset: "b", ok: false, error: new S3Error("x"), code: 4 },
    { dataset: "c", ok: false, error: diverged, code: 5 },
  ];
  assert.equal(exitCodeOf(outcomes), 4);
  assert.equal(exitCodeOf([outcomes[0]], 9), 9);
});

Deno.test("shortReason() drops the Cannot clause, even with a colon in a quoted name", () => {
  assert.equal(
    shortReason(new S3Error('Cannot list "a:b@": connection refused; retry')),
    "connection refused",
  );
  assert.equal(shortReason(new Error("plain")), "plain");
  assert.equal(
    shortReason(new Error('Cannot back up "p/a": another z3 run (pid 42) is running; lock file x')),
    "another z3 run (pid 42) is running",
  );
  const zfs = new ZfsError("Command failed (exit 1): zfs list -H p/nope: cannot open", {
    stderr: "cannot open 'p/nope': dataset does not exist\n",
  });
  assert.equal(shortReason(zfs), "cannot open 'p/nope': dataset does not exist");
});
