/**
 * Writes a missing check record again, from the object itself: the object's bytes are downloaded
 * and checked against its ETag (recomputed from the part sizes recorded in its metadata), and
 * only then is the record written. Used where a run died between completing an object and
 * writing its record: by `z3 backup` for the object it builds on, and by `z3 verify --repair`.
 *
 * A record written this way proves the object is whole and self-consistent, not that it is the
 * object the original run uploaded; that is why it is only ever written where none exists. It
 * holds the chain's shape (full or parent, both GUIDs) as the object's metadata states it. It is
 * never signed: with trusted keys configured nothing is written, and the caller is told to run
 * `z3 verify --adopt`.
 *
 * @module
 */

import { checkKey, type CheckRecord, writeCheck } from "./check_records.ts";
import { lockObject, runLock } from "./object_lock_run.ts";
import { retentionAt } from "../chain/object_lock_policy.ts";
import { shapeOf } from "../chain/metadata.ts";
import { downloadVerified } from "./verified_object.ts";
import type { Config } from "../config/config.ts";
import { ChainError, IntegrityError } from "../base/errors.ts";
import { scheduleFromMetadata } from "../transfer/part_size.ts";
import { withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";
import { verifiability } from "../transfer/verifying_stream.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import { trustedKeysOf } from "./trusted_records.ts";

/**
 * Writes the check record of `snapshot`'s object, a z3 object the caller found without one, and
 * returns it. Throws when the object is gone, has no part sizes to check it by, or fails its
 * check; then nothing is written.
 */
export async function rerecord(
  config: Config,
  store: S3Store,
  snapshot: RemoteSnapshot,
  options: {
    signal?: AbortSignal;
    /** What the caller was doing, for errors: `Cannot ACTION "dataset@snap": …`. @default {"check"} */
    action?: string;
  } = {},
): Promise<CheckRecord> {
  const { signal, action = "check" } = options;
  if (trustedKeysOf(config)) {
    // Never a signing oracle: only bytes this host has just uploaded and read back are signed.
    throw new IntegrityError(
      `Cannot ${action} "${snapshot.name}": it has no signed record, and z3 signs only what it ` +
        "has just uploaded and checked itself; run z3 verify --adopt (with SIGNING_KEY_FILE) " +
        "to sign what the bucket holds after checking it",
    );
  }
  const attempts = config.maxRetries + 1;
  const info = await withRetry(() => store.head(snapshot.key, signal), { attempts, signal });
  if (!info) {
    throw new ChainError(`Cannot ${action} "${snapshot.name}": its object is gone from the bucket`);
  }
  const expected = {
    etag: info.etag,
    size: info.size,
    schedule: scheduleFromMetadata(info.metadata),
  };
  if (verifiability(expected) !== "etag") {
    throw new IntegrityError(
      `Cannot ${action} "${snapshot.name}": it has no check record and no part sizes to check it by`,
    );
  }
  await downloadVerified(store, snapshot.key, expected, config, { signal }).pipeTo(
    new WritableStream(),
  );
  // The chain's shape as the object's metadata states it now, as backup records it.
  const shape = shapeOf(info.metadata);
  const record: CheckRecord = { etag: info.etag, size: info.size, full: shape.isFull };
  if (shape.guid !== undefined) record.guid = shape.guid;
  if (shape.parent !== undefined) record.parent = shape.parent;
  if (shape.parentGuid !== undefined) record.parentGuid = shape.parentGuid;
  // Under OBJECT_LOCK_DAYS the record is locked as backup locks one (refused without Object Lock).
  const policy = await runLock(config, store, { attempts, signal });
  const lock = policy && retentionAt(policy, new Date());
  await writeCheck(store, config.s3Prefix, snapshot.name, record, attempts, { lock });
  if (lock) {
    const key = checkKey(config.s3Prefix, snapshot.name);
    await lockObject(store, key, lock, { attempts, signal });
  }
  return record;
}
