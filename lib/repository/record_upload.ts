/**
 * What `z3 backup` writes once an object is complete: its check record (`check_records.ts`) and,
 * with OBJECT_LOCK_DAYS, the Object Lock of the object and of the record. With SIGNING_KEY_FILE
 * the record is the signed record (`signed_record.ts`) of the object this run has just uploaded
 * and read back, at the same key: the SHA-256 is the one computed while uploading.
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
import { type SignedFields, signRecord } from "./signed_record.ts";
import { putBytes } from "./sidecar.ts";
import { normalizePrefix } from "../config/prefix.ts";
import { META_KEYS } from "../chain/metadata.ts";
import { SEND_FLAGS_META } from "../config/send_flags.ts";
import { scheduleFromMetadata } from "../transfer/part_size.ts";
import { AGE_METADATA } from "./trusted_records.ts";

/** A completed backup object. */
export interface UploadedObject {
  /** The snapshot it holds. */
  snapshot: LocalSnapshot;
  /** The snapshot an incremental builds on; absent for a full. */
  from?: LocalSnapshot;
  key: string;
  /** The upload, with the SHA-256 of its bytes when it was computed (needed to sign). */
  result: UploadResult & { sha256?: string };
  /** The Object Lock the object and its record get; none when absent. */
  retention?: Retention;
  /** The object's user metadata as uploaded, its part schedule included (needed to sign). */
  metadata?: Record<string, string>;
  /** For a full: the SHA-256 (hex) of the properties sidecar stored with it, when one was. */
  propertiesSha256?: string;
}

/**
 * The fields of the signed record of `uploaded` in `bucket` (see `signed_record.ts`). Throws an
 * `Error` (a bug) when the upload computed no SHA-256 or its metadata holds no part schedule.
 */
export function uploadedFields(
  config: Config,
  bucket: string,
  uploaded: UploadedObject,
): SignedFields {
  const { snapshot, from, key, result, metadata = {} } = uploaded;
  const schedule = scheduleFromMetadata(metadata);
  if (result.sha256 === undefined || schedule === undefined) {
    throw new Error(
      `Cannot sign the record of ${quote(snapshot.name)}: its upload has no SHA-256 or schedule`,
    );
  }
  const recipients = metadata[AGE_METADATA.recipients];
  const flags = metadata[SEND_FLAGS_META];
  return {
    bucket,
    prefix: normalizePrefix(config.s3Prefix),
    key,
    dataset: snapshot.name.slice(0, snapshot.name.indexOf("@")),
    snapshot: snapshot.snapshot,
    guid: snapshot.guid,
    full: from === undefined,
    parent: from?.name ?? null,
    parentGuid: from?.guid ?? null,
    created: snapshot.creation,
    compressor: metadata[META_KEYS.compressor] ?? "none",
    encryption: metadata[AGE_METADATA.encryption] === "age" ? "age" : "none",
    recipients: recipients ? recipients.split(",") : [],
    sendFlags: flags ? flags.split(" ") : [],
    schedule: { ...schedule, growAfter: schedule.growAfter ?? 0 },
    storageClass: config.storageClass ?? null,
    etag: result.etag,
    size: result.bytes,
    partMd5s: result.partMd5s,
    sha256: result.sha256,
    propertiesSha256: uploaded.propertiesSha256 ?? null,
  };
}

/**
 * Writes the record of `uploaded`: signed with `config.signingKey` when set, else the check
 * record; locked with `lock` when set.
 */
async function writeRecord(
  store: S3Store,
  config: Config,
  uploaded: UploadedObject,
  lock: Retention | undefined,
): Promise<void> {
  const { snapshot, from, result } = uploaded;
  const attempts = config.maxRetries + 1;
  if (config.signingKey) {
    const signed = signRecord(uploadedFields(config, store.bucket, uploaded), config.signingKey);
    const recordKey = checkKey(config.s3Prefix, snapshot.name);
    await putBytes(store, recordKey, signed, attempts, { lock });
    return;
  }
  const record: CheckRecord = {
    etag: result.etag,
    size: result.bytes,
    guid: snapshot.guid,
    full: from === undefined,
    ...(from ? { parent: from.name, parentGuid: from.guid } : {}),
    parts: result.partMd5s,
  };
  // writeCheck retries (MAX_RETRIES) on its own.
  await writeCheck(store, config.s3Prefix, snapshot.name, record, attempts, { lock });
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
  const { snapshot, key, retention } = uploaded;
  const attempts = config.maxRetries + 1;
  const locking = { attempts, signal };
  if (retention) await lockObject(store, key, retention, locking);
  try {
    await writeRecord(store, config, uploaded, retention);
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
