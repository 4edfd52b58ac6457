import assert from "node:assert/strict";
import { verifyLine } from "../../../lib/commands/verify.ts";

Deno.test("verifyLine() gives snapshot, state and detail, tab-separated, control characters made printable", () => {
  assert.equal(
    verifyLine({ snapshot: "pool/a@z3\t1", state: "ok", detail: "etag matches" }),
    "pool/a@z3\\t1\tok\tetag matches",
  );
});
