import assert from "node:assert/strict";
import { pruneLine } from "../../../lib/commands/prune.ts";

Deno.test("pruneLine() gives action, snapshot and reasons, tab-separated", () => {
  assert.equal(
    pruneLine({ snapshot: "pool/a@z3-1", action: "keep", reasons: ["last 2", "daily"] }),
    "keep\tpool/a@z3-1\tlast 2, daily",
  );
});
