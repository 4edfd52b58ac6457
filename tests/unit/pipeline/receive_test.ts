import assert from "node:assert/strict";
import { streamExpectation } from "../../../lib/pipeline/receive.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const snap = (extra: Partial<RemoteSnapshot>): RemoteSnapshot => ({
  name: "pool/fs@b",
  snapshot: "b",
  key: "z3-backup/pool/fs@b",
  isFull: false,
  parent: "pool/fs@a",
  objectSize: 1,
  metadata: {},
  ...extra,
});

Deno.test("streamExpectation() asks an incremental for its GUID and its parent's", () => {
  assert.deepEqual(streamExpectation(snap({ guid: "22", parentGuid: "11" })), {
    name: "z3-backup/pool/fs@b",
    toguid: "22",
    fromguid: "11",
  });
});

Deno.test("streamExpectation() asks a full of this z3 for its GUID, from nothing", () => {
  assert.deepEqual(streamExpectation(snap({ isFull: true, parent: undefined, guid: "22" })), {
    name: "z3-backup/pool/fs@b",
    toguid: "22",
    fromguid: "0",
  });
});

Deno.test("streamExpectation() checks only the structure of an object of the original z3", () => {
  assert.deepEqual(streamExpectation(snap({})), { name: "z3-backup/pool/fs@b" });
  assert.deepEqual(streamExpectation(snap({ isFull: true })), { name: "z3-backup/pool/fs@b" });
});
