/**
 * A z3 object's verified download: {@linkcode inspectObject} learns what its bytes must match
 * (HEAD, check record, part MD5s), {@linkcode downloadVerified} streams them checked as they come
 * (see `transfer/verifying_stream.ts`), and with a signed record by its SHA-256 as well. Shared
 * by restore, get, verify and verify --repair.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { UsageError } from "../base/errors.ts";
import { checkKey, compareCheck, MissingRecordError, readCheck } from "./check_records.ts";
import { scheduleFromMetadata } from "../transfer/part_size.ts";
import { withRetry } from "../backend/retry.ts";
import type { ObjectInfo, S3Store } from "../backend/s3.ts";
import { etagNotMd5, etagNotMd5Error } from "../transfer/etag.ts";
import {
  type Expected,
  holdingBack,
  partsOf,
  verifiability,
  verifyError,
  verifying,
} from "../transfer/verifying_stream.ts";
import { Sha256Stream } from "../transfer/sha256_stream.ts";
import { type DownloadOptions, parallelDownload } from "../transfer/download.ts";
import { normalizePrefix } from "../config/prefix.ts";
import type { TrustedKeys } from "../config/signing_keys.ts";
import { SignedRecordError } from "./signed_record.ts";
import {
  compareSigned,
  readSignedFields,
  signedMetadata,
  trustedKeysOf,
} from "./trusted_records.ts";

/**
 * HEADs `key` and checks it against its check record; returns what its bytes must match (the
 * record's part MD5s included, where it has them).
 */
export async function inspectObject(
  store: S3Store,
  key: string,
  config: Config,
  signal?: AbortSignal,
): Promise<Expected> {
  const attempts = config.maxRetries + 1;
  const info = await withRetry(() => store.head(key, signal), { attempts, signal });
  if (!info) {
    throw new UsageError(`Cannot download "${key}": no such object in bucket "${store.bucket}"`);
  }
  return await inspectHeaded(store, info, config);
}

/**
 * {@linkcode inspectObject} of an object the caller has HEADed already (`info`). With trusted
 * keys (`trusted_records.ts`) every object must have a record signed by one of them, whose ETag
 * and size it must have; `info.metadata` is then replaced by the signed fields, so that what the
 * caller does with the bytes (decompress, decrypt) follows the signed record alone.
 */
export async function inspectHeaded(
  store: S3Store,
  info: ObjectInfo,
  config: Config,
): Promise<Expected> {
  const key = info.key;
  const attempts = config.maxRetries + 1;
  const notMd5 = etagNotMd5(info.encryption);
  if (notMd5) throw etagNotMd5Error("verify", key, notMd5);
  const prefix = normalizePrefix(config.s3Prefix);
  const name = key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
  const trusted = trustedKeysOf(config);
  if (trusted) return await inspectSigned(store, info, config, { trusted, name });
  const expected: Expected = {
    etag: info.etag,
    size: info.size,
    schedule: scheduleFromMetadata(info.metadata),
  };
  if (info.metadata["z3-version"] !== undefined && name?.includes("@")) {
    // Written by z3 backup: the object must still be the one the backup verified.
    const record = await readCheck(store, config.s3Prefix, name, attempts);
    if (!record) {
      throw new MissingRecordError(key, checkKey(config.s3Prefix, name));
    }
    compareCheck(key, info, record);
    if (record.parts !== undefined) {
      expected.parts = record.parts;
      partsOf(expected, key); // they must fit the object before any byte reaches ZFS
    }
  }
  return expected;
}

/** {@linkcode inspectHeaded} with trusted keys: from the signed record alone (see there). */
async function inspectSigned(
  store: S3Store,
  info: ObjectInfo,
  config: Config,
  options: { trusted: TrustedKeys; name?: string },
): Promise<Expected> {
  const { key } = info;
  if (options.name === undefined || !options.name.includes("@")) {
    throw new SignedRecordError(
      key,
      "unsigned",
      "it is not a backup object under S3_PREFIX, so no signed record can vouch for it",
    );
  }
  const object = { name: options.name, key };
  const fields = await readSignedFields(store, config, options.trusted, object);
  compareSigned(key, info, fields);
  const signed = signedMetadata(fields, info.metadata);
  for (const k of Object.keys(info.metadata)) delete info.metadata[k];
  Object.assign(info.metadata, signed);
  const growAfter = fields.schedule.growAfter > 0 ? fields.schedule.growAfter : undefined;
  const expected: Expected = {
    etag: fields.etag,
    size: fields.size,
    schedule: { base: fields.schedule.base, doubleEvery: fields.schedule.doubleEvery, growAfter },
    parts: fields.partMd5s,
    sha256: fields.sha256,
  };
  partsOf(expected, key); // they must fit the object before any byte reaches ZFS
  return expected;
}

/**
 * Downloads `key` as a verified stream (see `transfer/verifying_stream.ts`), after {@linkcode inspectObject} (unless
 * the caller already did and passes its result).
 */
export async function openVerified(
  store: S3Store,
  key: string,
  config: Config,
  options: { signal?: AbortSignal; err: (line: string) => void },
  inspected?: Expected,
): Promise<ReadableStream<Uint8Array>> {
  const expected = inspected ?? await inspectObject(store, key, config, options.signal);
  if (verifiability(expected) !== "etag") {
    options.err(
      `warning: ${key} has no recorded part sizes (written by another tool?): checking its size only`,
    );
  }
  return downloadVerified(store, key, expected, config, {
    signal: options.signal,
    onRefetch: (part, attempt, got) =>
      options.err(
        `${key}: part ${part} hashes to MD5 ${got}, not its recorded one: fetching it again ` +
          `(attempt ${attempt + 1})`,
      ),
  });
}

/**
 * `key`'s bytes by parallel ranged GETs, checked against `expected` as they stream: part by part
 * where its part MD5s are known, else as a whole against its ETag. The last bytes are held back
 * until the checks pass, so no reader sees the end of bytes that did not verify.
 */
export function downloadVerified(
  store: S3Store,
  key: string,
  expected: Expected,
  config: Config,
  options: { signal?: AbortSignal; onRefetch?: DownloadOptions["onRefetch"] } = {},
): ReadableStream<Uint8Array> {
  const download = {
    etag: expected.etag,
    size: expected.size,
    rangeSize: config.chunkSize,
    concurrency: config.concurrency,
    attempts: config.maxRetries + 1,
    signal: options.signal,
    onRefetch: options.onRefetch,
  };
  const checked = expected.parts
    ? parallelDownload(store, key, { ...download, parts: partsOf(expected, key) })
    : verifying(parallelDownload(store, key, download), expected, key);
  const hashed = expected.sha256 === undefined
    ? checked
    : checkingSha256(checked, expected.sha256, key);
  return holdingBack(hashed, Promise.resolve());
}

/**
 * `source` passed on, erroring at its end when its SHA-256 is not `want` (before the held-back
 * tail is released, so no reader sees the end of such bytes).
 */
function checkingSha256(
  source: ReadableStream<Uint8Array>,
  want: string,
  key: string,
): ReadableStream<Uint8Array> {
  const hash = new Sha256Stream();
  return source.pipeThrough(hash).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      flush(controller) {
        if (hash.hex === want) return;
        controller.error(
          verifyError(key, `its bytes hash to SHA-256 ${hash.hex}, its signed record says ${want}`),
        );
      },
    }),
  );
}
