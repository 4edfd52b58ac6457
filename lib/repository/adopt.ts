/**
 * `z3 verify --adopt`: the operator's explicit statement that the bucket's present state is
 * trusted. Each object is downloaded and checked as `z3 verify` checks it without keys (against
 * its check record where it has one, else against its ETag recomputed from the part sizes in its
 * metadata), and only then is its record replaced by a record signed with `SIGNING_KEY_FILE`:
 * its fields are those of its record signed by a trusted key where it has one (a key rotation),
 * else those its metadata states, with the ETag, size, part MD5s and SHA-256 of the bytes just
 * checked. An object that cannot be checked that way (no part sizes, no GUID or creation time in
 * its metadata: an object of the original z3) is not adopted.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";
import { ChainError, IntegrityError, UsageError } from "../base/errors.ts";
import { withRetry } from "../backend/retry.ts";
import type { ObjectInfo, S3Store } from "../backend/s3.ts";
import { META_KEYS, shapeOf } from "../chain/metadata.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import { quote } from "../chain/walk.ts";
import { retentionAt } from "../chain/object_lock_policy.ts";
import type { Config } from "../config/config.ts";
import { normalizePrefix } from "../config/prefix.ts";
import { readSendFlags } from "../config/send_flags.ts";
import { partSizeOf, scheduleFromMetadata } from "../transfer/part_size.ts";
import { etagPartCount, multipartEtag } from "../transfer/etag.ts";
import { Sha256Stream } from "../transfer/sha256_stream.ts";
import { type Expected, verifiability } from "../transfer/verifying_stream.ts";
import { checkKey, MissingRecordError } from "./check_records.ts";
import { lockObject, runLock } from "./object_lock_run.ts";
import { putBytes } from "./sidecar.ts";
import { type SignedFields, SignedRecordError, signRecord } from "./signed_record.ts";
import { AGE_METADATA, compareSigned, readSignedFields, trustedKeysOf } from "./trusted_records.ts";
import { downloadVerified, inspectHeaded } from "./verified_object.ts";

/** What an object must match before it is adopted, and its trusted signed fields if any. */
interface Checked {
  expected: Expected;
  signed?: SignedFields;
}

/**
 * What `info`'s bytes must match: its trusted signed record's fields, else what `z3 verify`
 * without keys checks (its check record; none: its ETag and the part sizes in its metadata).
 */
async function whatToCheck(
  store: S3Store,
  config: Config,
  info: ObjectInfo,
  name: string,
): Promise<Checked> {
  const trusted = trustedKeysOf(config);
  if (trusted) {
    try {
      const signed = await readSignedFields(store, config, trusted, { name, key: info.key });
      compareSigned(info.key, info, signed);
      const { base, doubleEvery, growAfter } = signed.schedule;
      const schedule = { base, doubleEvery, growAfter: growAfter > 0 ? growAfter : undefined };
      const expected = {
        etag: signed.etag,
        size: signed.size,
        schedule,
        parts: signed.partMd5s,
        sha256: signed.sha256,
      };
      return { expected, signed };
    } catch (err) {
      if (!(err instanceof SignedRecordError) || err.flaw !== "unsigned") throw err;
    }
  }
  try {
    return { expected: await inspectHeaded(store, info, { ...config, trustedKeys: undefined }) };
  } catch (err) {
    if (!(err instanceof MissingRecordError)) throw err;
    const schedule = scheduleFromMetadata(info.metadata);
    return { expected: { etag: info.etag, size: info.size, schedule } };
  }
}

/** The size of each part of `expected`'s object, in order. */
function partSizes(expected: Expected): number[] {
  if (!/-\d+$/.test(expected.etag)) return [expected.size];
  const sizes: number[] = [];
  let left = expected.size;
  for (let n = 1; left > 0; n++) {
    const size = Math.min(partSizeOf(expected.schedule!, n), left);
    sizes.push(size);
    left -= size;
  }
  return sizes;
}

/** A pass-through stream that records the MD5 (hex) of each part of `sizes`. */
function partMd5Stream(sizes: number[], md5s: string[]): TransformStream<Uint8Array, Uint8Array> {
  let part = 0;
  let left = sizes[0] ?? 0;
  let hash = createHash("md5");
  return new TransformStream({
    transform(chunk, controller) {
      let at = 0;
      while (at < chunk.length) {
        const take = Math.min(left, chunk.length - at);
        hash.update(chunk.subarray(at, at + take));
        at += take;
        left -= take;
        if (left === 0 && part < sizes.length) {
          md5s.push(hash.digest("hex"));
          hash = createHash("md5");
          part++;
          left = sizes[part] ?? Infinity;
        }
      }
      controller.enqueue(chunk);
    },
  });
}

/** The fields a record of `info` signs, from its metadata (see module doc). */
function fieldsFromMetadata(
  store: S3Store,
  config: Config,
  info: ObjectInfo,
  name: string,
): Omit<SignedFields, "etag" | "size" | "partMd5s" | "sha256"> {
  const meta = info.metadata;
  const shape = shapeOf(meta);
  const created = meta[META_KEYS.created];
  const schedule = scheduleFromMetadata(meta);
  const incomplete = shape.guid === undefined || !/^[0-9]+$/.test(created ?? "") ||
    (!shape.isFull && (shape.parent === undefined || shape.parentGuid === undefined));
  if (incomplete) {
    throw new IntegrityError(
      `Cannot adopt ${quote(name)}: its metadata does not name its GUID, creation time and ` +
        "parent (an object of the original z3?); back it up again with z3 instead",
    );
  }
  const recipients = meta[AGE_METADATA.recipients];
  const at = name.indexOf("@");
  return {
    bucket: store.bucket,
    prefix: normalizePrefix(config.s3Prefix),
    key: info.key,
    dataset: name.slice(0, at),
    snapshot: name.slice(at + 1),
    guid: shape.guid!,
    full: shape.isFull,
    parent: shape.parent ?? null,
    parentGuid: shape.parentGuid ?? null,
    created: Number(created),
    compressor: meta[META_KEYS.compressor]?.trim() || "none",
    encryption: meta[AGE_METADATA.encryption] === "age" ? "age" : "none",
    recipients: recipients ? recipients.split(",") : [],
    sendFlags: readSendFlags(name, meta),
    schedule: {
      base: schedule?.base ?? Math.max(info.size, 1),
      doubleEvery: schedule?.doubleEvery ?? 0,
      growAfter: schedule?.growAfter ?? 0,
    },
    storageClass: null,
    propertiesSha256: null,
  };
}

/**
 * Checks `snapshot`'s object (see module doc) and writes its record signed with
 * `config.signingKey`; returns the signed fields. Throws an {@linkcode IntegrityError} when the
 * bytes do not verify or the object cannot be checked (then nothing is written), a
 * {@linkcode ChainError} when the object is gone, a {@linkcode UsageError} without a signing key.
 */
export async function adoptObject(
  config: Config,
  store: S3Store,
  snapshot: RemoteSnapshot,
  options: { signal?: AbortSignal } = {},
): Promise<SignedFields> {
  const { signal } = options;
  if (!config.signingKey) {
    throw new UsageError("Cannot verify --adopt: set SIGNING_KEY_FILE to the key to sign with");
  }
  const attempts = config.maxRetries + 1;
  const info = await withRetry(() => store.head(snapshot.key, signal), { attempts, signal });
  if (!info) {
    throw new ChainError(
      `Cannot adopt ${quote(snapshot.name)}: its object is gone from the bucket`,
    );
  }
  const metadata = { ...info.metadata };
  const { expected, signed } = await whatToCheck(store, config, info, snapshot.name);
  if (verifiability(expected) !== "etag") {
    throw new IntegrityError(
      `Cannot adopt ${quote(snapshot.name)}: it has no part sizes to check its bytes by`,
    );
  }
  const md5s: string[] = [];
  const hash = new Sha256Stream();
  await downloadVerified(store, snapshot.key, expected, config, { signal })
    .pipeThrough(partMd5Stream(partSizes(expected), md5s))
    .pipeThrough(hash)
    .pipeTo(new WritableStream());
  const base = signed ?? fieldsFromMetadata(store, config, { ...info, metadata }, snapshot.name);
  const fields: SignedFields = {
    ...base,
    etag: expected.etag,
    size: expected.size,
    partMd5s: md5s,
    sha256: hash.hex,
  };
  checkPartMd5s(snapshot.name, fields);
  await writeAdopted(config, store, snapshot.name, signRecord(fields, config.signingKey), signal);
  return fields;
}

/** Throws when the part MD5s of the bytes read do not make their ETag. */
function checkPartMd5s(name: string, fields: SignedFields): void {
  const etag = etagPartCount(fields.etag) !== undefined
    ? multipartEtag(fields.partMd5s.map((m) => Buffer.from(m, "hex")))
    : fields.partMd5s.join();
  if (etag !== fields.etag) {
    throw new IntegrityError(
      `Cannot adopt ${quote(name)}: its parts hash to ETag "${etag}", not "${fields.etag}"`,
    );
  }
}

/** Writes the signed record at the record's key, locked as backup locks one (OBJECT_LOCK_DAYS). */
async function writeAdopted(
  config: Config,
  store: S3Store,
  name: string,
  record: Uint8Array,
  signal?: AbortSignal,
): Promise<void> {
  const attempts = config.maxRetries + 1;
  const lock = await runLock(config, store, { attempts, signal });
  const key = checkKey(config.s3Prefix, name);
  // Counted from this write, as backup counts each object's from its own upload.
  const retention = lock && retentionAt(lock, new Date());
  await putBytes(store, key, record, attempts, { lock: retention, signal });
  if (retention) await lockObject(store, key, retention, { attempts, signal });
}
