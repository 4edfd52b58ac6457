import assert from "node:assert/strict";
import { keyFor, MAX_KEY_BYTES } from "../../../lib/chain/keys.ts";
import { UsageError } from "../../../lib/base/errors.ts";

Deno.test("keyFor() joins S3_PREFIX and the snapshot's full name", () => {
  assert.equal(keyFor("z3-backup", "tank/data@s1"), "z3-backup/tank/data@s1");
  assert.equal(keyFor("", "tank/data@s1"), "tank/data@s1");
});

Deno.test("keyFor() refuses a key over S3's 1024 bytes, naming S3_PREFIX and the limit", () => {
  const name = "tank/data@s1";
  const fits = "p".repeat(MAX_KEY_BYTES - name.length - 1);
  assert.equal(keyFor(fits, name).length, MAX_KEY_BYTES);
  // Bytes, not characters: "é" is two bytes in UTF-8.
  for (const prefix of [fits + "p", "é".repeat(600)]) {
    assert.throws(
      () => keyFor(prefix, name),
      (e) =>
        e instanceof UsageError && /S3_PREFIX/.test(e.message) && /1024 bytes/.test(e.message) &&
        e.message.length < 400,
    );
  }
});
