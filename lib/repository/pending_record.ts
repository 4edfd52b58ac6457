/**
 * The record of a pending multipart upload: S3 cannot show a pending upload's metadata, so
 * `z3 backup` writes what it starts each upload with (the object's metadata: GUID, parent, part
 * schedule, compressor, …, and its storage class) as a small JSON object beside the check record,
 * `checkKey(...)` + `#upload` (`#` never occurs in a ZFS name, so it cannot meet a check record).
 * It is written before CreateMultipartUpload and removed once the upload is completed or aborted.
 * A later run adopts a pending upload only when this record equals what it would start itself.
 *
 * @module
 */

import { checkKey } from "./check_records.ts";
import { putJson } from "./sidecar.ts";
import { withRetry } from "../backend/retry.ts";
import type { Retention, S3Store } from "../backend/s3.ts";

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

/** Writes the record (one small PutObject, retried). */
export async function writePendingRecord(
  store: S3Store,
  key: string,
  record: PendingRecord,
  attempts: number,
  signal?: AbortSignal,
  lock?: Retention,
): Promise<void> {
  await putJson(store, key, record, attempts, { signal, lock });
}

/** Reads the record; `undefined` when there is none or it is not one (the bucket is untrusted). */
export async function readPendingRecord(
  store: S3Store,
  key: string,
  attempts: number,
  signal?: AbortSignal,
): Promise<PendingRecord | undefined> {
  const retry = { attempts, signal };
  if (!(await withRetry(() => store.head(key, signal), retry))) return undefined;
  const text = await withRetry(async () => {
    return await new Response(await store.get(key, { signal })).text();
  }, retry);
  try {
    const r = JSON.parse(text);
    const strings = (o: unknown) =>
      typeof o === "object" && o !== null && !Array.isArray(o) &&
      Object.values(o).every((v) => typeof v === "string");
    if (
      strings(r?.metadata) && (r.storageClass === undefined || typeof r.storageClass === "string")
    ) return { metadata: r.metadata, storageClass: r.storageClass };
  } catch { /* not JSON: not a record */ }
  return undefined;
}

/** Whether two records start the same upload: equal metadata (every key) and storage class. */
export function samePendingRecord(a: PendingRecord, b: PendingRecord): boolean {
  const keys = Object.keys(a.metadata);
  return a.storageClass === b.storageClass && keys.length === Object.keys(b.metadata).length &&
    keys.every((k) => Object.hasOwn(b.metadata, k) && b.metadata[k] === a.metadata[k]);
}
