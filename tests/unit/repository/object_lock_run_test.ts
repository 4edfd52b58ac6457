import assert from "node:assert/strict";
import type { S3Store } from "../../../lib/backend/s3.ts";
import { lockOrDelete } from "../../../lib/repository/object_lock_run.ts";

const retention = { mode: "GOVERNANCE" as const, until: new Date("2026-12-08T00:00:00Z") };

/** A store whose key's current version is another writer's and whose retention is refused. */
function refusingStore() {
  const deleted: string[] = [];
  const store = {
    head: () => Promise.resolve({ size: 1, etag: "e", metadata: {}, versionId: "theirs" }),
    putRetention: () => Promise.reject(new Error("AccessDenied: Access Denied")),
    deleteVersion(_key: string, versionId: string) {
      deleted.push(versionId);
      return Promise.resolve();
    },
  };
  return { store: store as unknown as S3Store, deleted };
}

Deno.test("lockOrDelete() deletes the version this run wrote, never the key's current one", async () => {
  const { store, deleted } = refusingStore();
  await assert.rejects(
    () => lockOrDelete(store, "piped/key", retention, { attempts: 1, versionId: "mine" }),
    /AccessDenied: Access Denied; the object was deleted$/,
  );
  assert.deepEqual(deleted, ["mine"]);
});

Deno.test("lockOrDelete() deletes nothing when the version this run wrote is not known", async () => {
  const { store, deleted } = refusingStore();
  await assert.rejects(
    () => lockOrDelete(store, "piped/key", retention, { attempts: 1 }),
    /; the object is left in the bucket \(the version this run wrote is not known\)$/,
  );
  assert.deepEqual(deleted, []);
});
