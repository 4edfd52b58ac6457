/**
 * A backup object's multipart upload while it is pending: the hooks that keep its pending record
 * (`pending_record.ts`) beside it, and the adoption of one that an earlier run left behind, so
 * that the next `z3 backup` resumes it instead of sending every part again.
 *
 * @module
 */

import {
  type PendingRecord,
  readPendingRecord,
  samePendingRecord,
  writePendingRecord,
} from "./pending_record.ts";
import { withRetry } from "../backend/retry.ts";
import type { Retention, S3Store } from "../backend/s3.ts";
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
 * (locked with `lock`, when given) before the upload starts, delete it once the upload is
 * completed or aborted.
 */
export function pendingRecordHooks(
  store: S3Store,
  options: PendingUploadOptions & { lock?: Retention },
): PendingRecordHooks {
  const { started, recordKey, attempts, signal, lock } = options;
  return {
    write: () => writePendingRecord(store, recordKey, started, attempts, signal, lock),
    remove: () => store.delete(recordKey),
  };
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
