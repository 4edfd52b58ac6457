/**
 * What `z3 backup` writes once an object is complete: its check record (`check_records.ts`) and,
 * with OBJECT_LOCK_DAYS, the Object Lock of the object and of the record.
 *
 * @module
 */

import { checkKey, type CheckRecord, writeCheck } from "./check_records.ts";
import { lockObject } from "./object_lock_run.ts";
import { describeError, S3Error } from "../base/errors.ts";
import { quote } from "../chain/walk.ts";
import type { Config } from "../config/config.ts";
import type { Retention, S3Store } from "../backend/s3.ts";
import type { LocalSnapshot } from "../chain/types.ts";
import type { UploadResult } from "../transfer/upload.ts";

/** A completed backup object. */
export interface UploadedObject {
  /** The snapshot it holds. */
  snapshot: LocalSnapshot;
  /** The snapshot an incremental builds on; absent for a full. */
  from?: LocalSnapshot;
  key: string;
  result: UploadResult;
  /** The Object Lock the object and its record get; none when absent. */
  retention?: Retention;
}

/**
 * Locks the object (when `uploaded.retention` is set), writes its check record and locks that.
 *
 * @throws {S3Error} when the record cannot be written: the message says the object stays in the
 * bucket and that `z3 verify --repair` writes the record.
 */
export async function recordUpload(
  store: S3Store,
  config: Config,
  uploaded: UploadedObject,
  signal?: AbortSignal,
): Promise<void> {
  const { snapshot, from, key, result, retention } = uploaded;
  const attempts = config.maxRetries + 1;
  const record: CheckRecord = {
    etag: result.etag,
    size: result.bytes,
    guid: snapshot.guid,
    full: from === undefined,
    ...(from ? { parent: from.name, parentGuid: from.guid } : {}),
    parts: result.partMd5s,
  };
  const locking = { attempts, signal };
  if (retention) await lockObject(store, key, retention, locking);
  try {
    // writeCheck retries (MAX_RETRIES) on its own.
    await writeCheck(store, config.s3Prefix, snapshot.name, record, attempts, { lock: retention });
  } catch (err) {
    signal?.throwIfAborted();
    // The object is whole and verified: deleting it would lose a good backup. Restore refuses it
    // until its record exists; verify --repair writes the record from its checked bytes.
    throw new S3Error(
      `Cannot write the check record of ${quote(snapshot.name)}: ${describeError(err)}; its ` +
        `object ${quote(key)} is complete and verified and stays in the bucket; run ` +
        `\`z3 verify --repair\` to write the record (restore refuses the object until then)`,
      { cause: err },
    );
  }
  if (retention) {
    await lockObject(store, checkKey(config.s3Prefix, snapshot.name), retention, locking);
  }
}
