import assert from "node:assert/strict";
import type { S3Store } from "../../../lib/backend/s3.ts";
import type { PendingRecord } from "../../../lib/repository/pending_record.ts";
import { adoptPendingUpload } from "../../../lib/repository/pending_upload.ts";

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
