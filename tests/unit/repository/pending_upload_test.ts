import assert from "node:assert/strict";
import type { S3Store } from "../../../lib/backend/s3.ts";
import type { PendingRecord } from "../../../lib/repository/pending_record.ts";
import {
  adoptPendingUpload,
  pendingRecordHooks,
  removePendingRecordOf,
} from "../../../lib/repository/pending_upload.ts";

const KEY = "z3/pool/fs@b";
const RECORD_KEY = "z3.z3/pool/fs@b#upload";
const started: PendingRecord = { metadata: { "z3-guid": "22", "z3-part-size": "8" } };

/** A store holding `uploads` pending on KEY (and one on a longer key) and, maybe, a record. */
function fakeStore(uploads: { uploadId: string; initiated: number }[], record?: PendingRecord) {
  const aborted: string[] = [];
  const store = {
    async *listMultipartUploads(prefix: string) {
      assert.equal(prefix, KEY);
      yield { key: `${KEY}x`, uploadId: "other-key", initiated: new Date(9) };
      for (const u of uploads) {
        yield { key: KEY, uploadId: u.uploadId, initiated: new Date(u.initiated) };
      }
    },
    abortMultipart(key: string, uploadId: string) {
      assert.equal(key, KEY);
      aborted.push(uploadId);
      return Promise.resolve();
    },
    listParts(_key: string, uploadId: string) {
      return Promise.resolve(new Map([[1, { etag: `${uploadId}-1`, size: 8 }]]));
    },
    head(key: string) {
      assert.equal(key, RECORD_KEY);
      return Promise.resolve(record ? { size: 1, etag: "e", metadata: {} } : undefined);
    },
    get(key: string) {
      assert.equal(key, RECORD_KEY);
      return Promise.resolve(new Response(JSON.stringify(record)).body!);
    },
  };
  return { store: store as unknown as S3Store, aborted };
}

async function adopt(store: S3Store) {
  const lines: string[] = [];
  const options = {
    started,
    recordKey: RECORD_KEY,
    attempts: 1,
    err: (l: string) => lines.push(l),
  };
  return { resume: await adoptPendingUpload(store, KEY, options), lines };
}

Deno.test("adoptPendingUpload() resumes nothing and aborts nothing when none is pending", async () => {
  const { store, aborted } = fakeStore([], started);
  const { resume, lines } = await adopt(store);
  assert.equal(resume, undefined);
  assert.deepEqual(aborted, []);
  assert.deepEqual(lines, []);
});

Deno.test("adoptPendingUpload() resumes the newest upload whose record matches and aborts the older", async () => {
  const { store, aborted } = fakeStore(
    [{ uploadId: "new", initiated: 2000 }, { uploadId: "old", initiated: 1000 }],
    { metadata: { "z3-part-size": "8", "z3-guid": "22" } },
  );
  const { resume, lines } = await adopt(store);
  assert.equal(resume?.uploadId, "new");
  assert.equal(resume?.parts.get(1)?.etag, "new-1");
  assert.deepEqual(aborted, ["old"]);
  assert.deepEqual(lines, [
    `${KEY}: aborted 1 pending upload(s) of earlier runs (older than the one resumed)`,
    `${KEY}: resuming an interrupted upload (1 part(s) already in the bucket)`,
  ]);
});

Deno.test("adoptPendingUpload() aborts every upload started with other metadata", async () => {
  const { store, aborted } = fakeStore(
    [{ uploadId: "a", initiated: 1000 }, { uploadId: "b", initiated: 2000 }],
    { metadata: { "z3-guid": "21", "z3-part-size": "8" } },
  );
  const { resume, lines } = await adopt(store);
  assert.equal(resume, undefined);
  assert.deepEqual(aborted, ["a", "b"]);
  assert.match(lines.join("\n"), /aborted 2 pending upload\(s\) .*started with other metadata/);
});

Deno.test("adoptPendingUpload() aborts an upload without a record", async () => {
  const { store, aborted } = fakeStore([{ uploadId: "a", initiated: 1000 }]);
  const { resume, lines } = await adopt(store);
  assert.equal(resume, undefined);
  assert.deepEqual(aborted, ["a"]);
  assert.match(lines[0], /no record of what they were started with/);
});

/** A versioned store of pending records: PutObject adds a version, deletes are recorded. */
function versionedStore(versions: Map<string, string[]>) {
  const calls: string[] = [];
  const store = {
    putVersion(key: string, _body: Uint8Array, _md5: string, options: { lock?: unknown }) {
      calls.push(`put ${key}${options.lock ? " locked" : ""}`);
      const list = versions.get(key) ?? [];
      list.unshift(`v${list.length + 1}`);
      versions.set(key, list);
      return Promise.resolve({ etag: "e", versionId: list[0] });
    },
    put(key: string, body: Uint8Array, md5: string, options: { lock?: unknown } = {}) {
      return store.putVersion(key, body, md5, options).then((w) => w.etag);
    },
    versions(key: string) {
      return Promise.resolve(
        (versions.get(key) ?? []).map((versionId, i) => ({
          versionId,
          isLatest: i === 0,
          deleteMarker: false,
        })),
      );
    },
    deleteVersion(key: string, versionId: string) {
      calls.push(`delete ${key} ${versionId}`);
      versions.set(key, (versions.get(key) ?? []).filter((v) => v !== versionId));
      return Promise.resolve();
    },
    delete(key: string) {
      calls.push(`delete marker on ${key}`);
      return Promise.resolve();
    },
  };
  return { store: store as unknown as S3Store, calls };
}

Deno.test("pendingRecordHooks() writes the record unlocked and removes every version of it", async () => {
  // One version left by an earlier run whose upload this run resumes, and this run's own.
  const versions = new Map([[RECORD_KEY, ["v1"]]]);
  const { store, calls } = versionedStore(versions);
  const hooks = pendingRecordHooks(store, { started, recordKey: RECORD_KEY, attempts: 1 });
  await hooks.write();
  await hooks.remove();
  assert.deepEqual(calls, [
    `put ${RECORD_KEY}`,
    `delete ${RECORD_KEY} v2`,
    `delete ${RECORD_KEY} v1`,
  ]);
  assert.deepEqual(versions.get(RECORD_KEY), [], "no version of the record is left");
});

Deno.test("removePendingRecordOf() deletes the record of a snapshot's upload, nothing for other keys", async () => {
  const versions = new Map([[RECORD_KEY, ["v1"]]]);
  const { store, calls } = versionedStore(versions);
  await removePendingRecordOf(store, "z3", "z3/pool/fs", undefined);
  await removePendingRecordOf(store, "z3", "other/pool/fs@b", undefined);
  assert.deepEqual(calls, []);
  await removePendingRecordOf(store, "z3", KEY, undefined);
  assert.deepEqual(calls, [`delete ${RECORD_KEY} v1`]);
});
