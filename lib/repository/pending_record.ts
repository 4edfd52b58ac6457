/**
 * The record of a pending multipart upload: S3 cannot show a pending upload's metadata, so
 * `z3 backup` writes what it starts each upload with (the object's metadata: GUID, parent, part
 * schedule, compressor, …, and its storage class) as a small JSON object beside the check record,
 * `checkKey(...)` + `#upload` (`#` never occurs in a ZFS name, so it cannot meet a check record).
 * It is written before CreateMultipartUpload, never under Object Lock (it protects nothing once
 * the upload is completed or aborted), and deleted for good then, every version of it, by the run
 * that completes or aborts the upload or by `z3 cleanup` (`pending_upload.ts`). A later run adopts
 * a pending upload only when this record equals what it would start itself.
 *
 * @module
 */

import { checkKey } from "./check_records.ts";
import { putJson, readJson, SidecarError } from "./sidecar.ts";
import type { S3Store } from "../backend/s3.ts";

/** What a multipart upload was started with. */
export interface PendingRecord {
  /** The object's user metadata, as given to CreateMultipartUpload. */
  metadata: Record<string, string>;
  storageClass?: string;
}

/** The record's key for the backup object of `name` (`dataset@snap`). */
export function pendingRecordKey(prefix: string, name: string): string {
  return `${checkKey(prefix, name)}#upload`;
}

/** Writes the record (one small PutObject, retried), without Object Lock. */
export async function writePendingRecord(
  store: S3Store,
  key: string,
  record: PendingRecord,
  attempts: number,
  signal?: AbortSignal,
): Promise<void> {
  await putJson(store, key, record, attempts, { signal });
}

/**
 * Far larger than any record z3 writes (S3 user metadata is at most 2 KB, the part schedule a few
 * lines): not read.
 */
const MAX_RECORD_BYTES = 64 * 1024;

/**
 * Reads the record; `undefined` when there is none or it is not one (the bucket is untrusted),
 * such as an object over 64 KiB, which is not read.
 */
export async function readPendingRecord(
  store: S3Store,
  key: string,
  attempts: number,
  signal?: AbortSignal,
): Promise<PendingRecord | undefined> {
  let read: unknown;
  try {
    read = await readJson(store, key, { maxBytes: MAX_RECORD_BYTES, attempts, signal });
  } catch (err) {
    // Too large or not JSON: not a record.
    if (err instanceof SidecarError) return undefined;
    throw err;
  }
  const strings = (o: unknown): o is Record<string, string> =>
    typeof o === "object" && o !== null && !Array.isArray(o) &&
    Object.values(o).every((v) => typeof v === "string");
  const { metadata, storageClass } = (read ?? {}) as { metadata?: unknown; storageClass?: unknown };
  if (!strings(metadata)) return undefined;
  if (storageClass !== undefined && typeof storageClass !== "string") return undefined;
  return { metadata, storageClass };
}

/** Whether two records start the same upload: equal metadata (every key) and storage class. */
export function samePendingRecord(a: PendingRecord, b: PendingRecord): boolean {
  const keys = Object.keys(a.metadata);
  return a.storageClass === b.storageClass && keys.length === Object.keys(b.metadata).length &&
    keys.every((k) => Object.hasOwn(b.metadata, k) && b.metadata[k] === a.metadata[k]);
}
