import assert from "node:assert/strict";
import { verifyStored } from "../../../lib/transfer/upload_readback.ts";
import { IntegrityError } from "../../../lib/base/errors.ts";
import type { ObjectInfo, S3Store } from "../../../lib/backend/s3.ts";

const KEY = "z3-backup/pool/fs@s1";
const SENT = { etag: "aaaa-2", size: 10 };

/** A store whose HEAD answers `current` and that records every delete. */
function fakeStore(current: Partial<ObjectInfo> | undefined) {
  const deleted: string[] = [];
  const store = {
    head: () =>
      Promise.resolve(
        current && {
          key: KEY,
          metadata: {},
          encryption: {},
          lockHeaders: {},
          etag: "",
          size: 0,
          ...current,
        },
      ),
    delete: (key: string) => (deleted.push(`key ${key}`), Promise.resolve()),
    deleteVersion: (key: string, id: string) => (deleted.push(`${key} ${id}`), Promise.resolve()),
  };
  return { store: store as unknown as S3Store, deleted };
}

const retry = { attempts: 1 };

Deno.test("verifyStored() leaves another run's object alone in a bucket without versioning", async () => {
  // Run B completed the same key after this run did: its object is what the key holds.
  const other = { etag: "bbbb-3", size: 10, lastModified: new Date("2026-01-02T03:04:05Z") };
  const { store, deleted } = fakeStore(other);
  const err = await verifyStored(store, KEY, SENT, retry).catch((e) => e);
  assert.ok(err instanceof IntegrityError, String(err));
  assert.match(
    err.message,
    /^Cannot verify upload of ".*": its ETag is "bbbb-3", expected "aaaa-2"/,
  );
  assert.match(err.message, /ETag "bbbb-3", 10 bytes, written 2026-01-02T03:04:05.000Z\) was left/);
  assert.match(err.message, /Concurrent runs/);
  assert.deepEqual(deleted, [], "nothing deleted");
});

Deno.test("verifyStored() deletes only the version it wrote, never the current other one", async () => {
  const { store, deleted } = fakeStore({ etag: "bbbb-3", size: 10, versionId: "theirs" });
  const err = await verifyStored(store, KEY, SENT, retry, { versionId: "ours" }).catch((e) => e);
  assert.ok(err instanceof IntegrityError);
  assert.match(err.message, /the version this run wrote \(ours\) was deleted/);
  assert.match(err.message, /current version \(theirs\) is another upload's and was left/);
  assert.deepEqual(deleted, [`${KEY} ours`]);
});

Deno.test("verifyStored() deletes its own wrong version when the key still holds it", async () => {
  const { store, deleted } = fakeStore({ etag: "cccc-2", size: 10, versionId: "ours" });
  const err = await verifyStored(store, KEY, SENT, retry, { versionId: "ours" }).catch((e) => e);
  assert.ok(err instanceof IntegrityError);
  assert.match(err.message, /\(ours\) was deleted$/);
  assert.deepEqual(deleted, [`${KEY} ours`]);
});

Deno.test("verifyStored() deletes nothing when the object is stored as sent", async () => {
  const { store, deleted } = fakeStore({ ...SENT, versionId: "ours" });
  await verifyStored(store, KEY, SENT, retry, { versionId: "ours" });
  assert.deepEqual(deleted, []);
});
