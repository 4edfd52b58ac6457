/**
 * A backup object's multipart upload while it is pending: the hooks that keep its pending record
 * (`pending_record.ts`) beside it, and the adoption of one that an earlier run left behind, so
 * that the next `z3 backup` resumes it instead of sending every part again.
 *
 * @module
 */

import { normalizePrefix } from "../config/prefix.ts";
import {
  type PendingRecord,
  pendingRecordKey,
  readPendingRecord,
  samePendingRecord,
  writePendingRecord,
} from "./pending_record.ts";
import { withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";
import type { PendingRecordHooks, Resume } from "../transfer/upload.ts";

/** What a run starts its upload with, and how it asks. */
export interface PendingUploadOptions {
  /** What this run starts the upload with (its pending record). */
  started: PendingRecord;
  /** The pending record's key (`pendingRecordKey`). */
  recordKey: string;
  /** Attempts per request (first included). */
  attempts: number;
  signal?: AbortSignal;
}

/**
 * The hooks for `uploadStream`'s `pendingRecord`: write `options.started` at `options.recordKey`
 * (never locked) before the upload starts, delete it for good once the upload is completed or
 * aborted ({@linkcode removePendingRecord}), also when this run resumed an earlier run's upload.
 */
export function pendingRecordHooks(
  store: S3Store,
  options: PendingUploadOptions,
): PendingRecordHooks {
  const { started, recordKey, attempts, signal } = options;
  return {
    write: () => writePendingRecord(store, recordKey, started, attempts, signal),
    remove: () => removePendingRecord(store, recordKey, signal),
  };
}

/**
 * Deletes the pending record at `recordKey` for good: every version of it and every delete marker
 * (a plain delete would leave its bytes under a marker in a versioned bucket; a bucket without
 * versioning lists its one object as version `null`); nothing when none is listed. A version the bucket refuses to delete (one locked by an
 * earlier z3, which locked pending records) stays; the first such error is thrown after the rest
 * are deleted.
 */
export async function removePendingRecord(
  store: S3Store,
  recordKey: string,
  signal?: AbortSignal,
): Promise<void> {
  const versions = await store.versions(recordKey, signal);
  let refused: unknown;
  for (const v of versions) {
    try {
      await store.deleteVersion(recordKey, v.versionId, signal);
    } catch (err) {
      refused ??= err;
    }
  }
  if (refused !== undefined) throw refused;
}

/**
 * The pending multipart upload of exactly `key` to resume: the newest one left by an earlier run
 * that died before it could complete or abort, and only when its pending record (what it was
 * started with: metadata, part schedule, storage class) equals this run's. Every other pending
 * upload of the key is aborted, and one line on `options.err` says how many: a timed-out
 * CreateMultipartUpload that the server carried out later leaves such extras.
 */
export async function adoptPendingUpload(
  store: S3Store,
  key: string,
  options: PendingUploadOptions & { err: (line: string) => void },
): Promise<Resume | undefined> {
  const { signal } = options;
  const retry = { attempts: options.attempts, signal };
  const pending = (await withRetry(
    () => Array.fromAsync(store.listMultipartUploads(key, signal)),
    retry,
  )).filter((u) => u.key === key);
  if (pending.length === 0) return undefined;
  const recorded = await readPendingRecord(store, options.recordKey, options.attempts, signal);
  const matches = recorded !== undefined && samePendingRecord(recorded, options.started);
  pending.sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0));
  const adopted = matches ? pending.pop() : undefined;
  for (const u of pending) {
    await withRetry(() => store.abortMultipart(key, u.uploadId, signal), retry);
  }
  if (pending.length > 0) {
    const why = adopted
      ? "older than the one resumed"
      : recorded
      ? "started with other metadata (GUID, part schedule, compressor or storage class)"
      : "no record of what they were started with";
    options.err(`${key}: aborted ${pending.length} pending upload(s) of earlier runs (${why})`);
  }
  if (!adopted) return undefined;
  const parts = await withRetry(() => store.listParts(key, adopted.uploadId, signal), retry);
  options.err(
    `${key}: resuming an interrupted upload (${parts.size} part(s) already in the bucket)`,
  );
  return { uploadId: adopted.uploadId, parts };
}

/**
 * For `z3 cleanup`, once it aborted the upload of `objectKey`: deletes that object's pending
 * record ({@linkcode removePendingRecord}) when `objectKey` is a snapshot's key under `prefix`.
 */
export async function removePendingRecordOf(
  store: S3Store,
  prefix: string,
  objectKey: string,
  signal?: AbortSignal,
): Promise<void> {
  const head = normalizePrefix(prefix);
  if (!objectKey.startsWith(head) || !objectKey.includes("@", head.length)) return;
  const recordKey = pendingRecordKey(prefix, objectKey.slice(head.length));
  await removePendingRecord(store, recordKey, signal);
}
