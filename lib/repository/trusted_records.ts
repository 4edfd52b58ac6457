/**
 * Signed records read and acted on. With trusted keys configured (`TRUSTED_KEYS`,
 * `TRUSTED_KEYS_FILE`, or `SIGNING_KEY_FILE`, whose public key is trusted), the record beside each
 * object (at its check record's key, `check_records.ts`) must be a record signed by a trusted key
 * (`signed_record.ts`): every field z3 acts on is then taken from it, never from the object's S3
 * metadata, and the listing's ETag and size are checked against it. An object without such a
 * record is never a restore point. Without trusted keys nothing here is asked for, and check
 * records are read as before signing existed.
 *
 * @module
 */

import { ChainError, IntegrityError } from "../base/errors.ts";
import { mapLimit } from "../base/map_limit.ts";
import { VERSION } from "../base/version.ts";
import type { S3Store } from "../backend/s3.ts";
import { META_KEYS } from "../chain/metadata.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import { type Flaw, quote } from "../chain/walk.ts";
import type { Config } from "../config/config.ts";
import { SEND_FLAGS_META } from "../config/send_flags.ts";
import type { TrustedKeys } from "../config/signing_keys.ts";
import { SCHEDULE_KEYS } from "../transfer/part_size.ts";
import { checkKey, recordFlaws } from "./check_records.ts";
import { readBytes, SidecarError } from "./sidecar.ts";
import {
  MAX_SIGNED_RECORD_BYTES,
  type SignedFields,
  SignedRecordError,
  verifyRecord,
} from "./signed_record.ts";

/** The age metadata keys, as `pipeline/age.ts` (`AGE_META`) writes and reads them. */
export const AGE_METADATA = { encryption: "z3-encryption", recipients: "z3-age-recipients" };

/** The keys a signed record must come from, or `undefined` when none is configured. */
export function trustedKeysOf(config: Config): TrustedKeys | undefined {
  return config.trustedKeys !== undefined && config.trustedKeys.size > 0
    ? config.trustedKeys
    : undefined;
}

/**
 * The fields of the signed record of `name` (`dataset@snap`), whose object is `key`, once it is
 * shown to be signed by a trusted key for this bucket, prefix and object. Throws a
 * {@linkcode SignedRecordError} (exit 6): `unsigned` when there is no record or it has no
 * signature, else the record's flaw.
 */
export async function readSignedFields(
  store: S3Store,
  config: Config,
  trusted: TrustedKeys,
  object: { name: string; key: string; signal?: AbortSignal },
): Promise<SignedFields> {
  const recordKey = checkKey(config.s3Prefix, object.name);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readBytes(store, recordKey, {
      maxBytes: MAX_SIGNED_RECORD_BYTES,
      attempts: config.maxRetries + 1,
      signal: object.signal,
    });
  } catch (err) {
    if (!(err instanceof SidecarError)) throw err;
    throw new SignedRecordError(object.key, "malformed", err.message);
  }
  if (bytes === undefined) {
    throw new SignedRecordError(
      object.key,
      "unsigned",
      `it has no signed record ${quote(recordKey)} (not written by a z3 with SIGNING_KEY_FILE; ` +
        "z3 verify --adopt signs what the bucket holds now)",
    );
  }
  const place = { bucket: store.bucket, prefix: config.s3Prefix, key: object.key };
  return verifyRecord(bytes, trusted, place);
}

/** Throws unless the object as listed or HEADed has the signed ETag and size. */
export function compareSigned(key: string, seen: { etag?: string; size: number }, f: SignedFields) {
  if (seen.etag === f.etag && seen.size === f.size) return;
  throw new IntegrityError(
    `Cannot trust ${quote(key)}: it changed in the bucket after the backup (now ETag ` +
      `"${seen.etag ?? ""}", ${seen.size} bytes; signed "${f.etag}", ${f.size} bytes)`,
  );
}

/**
 * The object metadata z3 acts on, from the signed fields alone, in the keys z3 writes; from
 * `listed` only the keys nothing is decided by (`size`, the stream's estimate for progress).
 */
export function signedMetadata(
  f: SignedFields,
  listed: Record<string, string> = {},
): Record<string, string> {
  const meta: Record<string, string> = {
    [META_KEYS.guid]: f.guid,
    [META_KEYS.created]: String(f.created),
    "z3-version": listed["z3-version"] ?? VERSION,
    [SCHEDULE_KEYS.base]: String(f.schedule.base),
    [SCHEDULE_KEYS.doubleEvery]: String(f.schedule.doubleEvery),
  };
  if (f.schedule.growAfter > 0) meta[SCHEDULE_KEYS.growAfter] = String(f.schedule.growAfter);
  if (f.full) meta[META_KEYS.isFull] = "true";
  else {
    meta[META_KEYS.parent] = f.parent!;
    meta[META_KEYS.parentGuid] = f.parentGuid!;
  }
  if (f.compressor !== "none") meta[META_KEYS.compressor] = f.compressor;
  if (f.sendFlags.length > 0) meta[SEND_FLAGS_META] = f.sendFlags.join(" ");
  if (f.encryption === "age") {
    meta[AGE_METADATA.encryption] = "age";
    meta[AGE_METADATA.recipients] = f.recipients.join(",");
  }
  if (f.propertiesSha256 !== null) meta[PROPERTIES_SHA256_META] = f.propertiesSha256;
  if (listed[META_KEYS.size] !== undefined) meta[META_KEYS.size] = listed[META_KEYS.size];
  return meta;
}

/**
 * The metadata key {@linkcode signedMetadata} puts a full's signed properties SHA-256 under; z3
 * never writes it to S3, and it is only read from an object whose fields are signed ones.
 */
export const PROPERTIES_SHA256_META = "z3-properties-sha256";

/**
 * With trusted keys, what the properties sidecar of `full` (after {@linkcode trustRemote}) must
 * hash to: its signed SHA-256, or `null` when none was signed; without trusted keys `undefined`
 * (read as before signing existed).
 */
export function signedProperties(
  config: Config,
  full: RemoteSnapshot,
): { sha256: string | null } | undefined {
  if (!trustedKeysOf(config)) return undefined;
  return { sha256: full.metadata[PROPERTIES_SHA256_META] ?? null };
}

/** Replaces `snap`'s chain fields and metadata by the signed ones (see module doc). */
export function overlaySigned(snap: RemoteSnapshot, f: SignedFields): void {
  snap.isFull = f.full;
  snap.guid = f.guid;
  snap.created = f.created;
  if (f.full) {
    delete snap.parent;
    delete snap.parentGuid;
  } else {
    snap.parent = f.parent!;
    snap.parentGuid = f.parentGuid!;
  }
  if (f.compressor !== "none") snap.compressor = f.compressor;
  else delete snap.compressor;
  snap.metadata = signedMetadata(f, snap.metadata);
}

/** Records read at once by {@linkcode trustRemote}. */
const RECORDS_PARALLEL = 16;

/** How status shows an object whose record `err` refused. */
function flawOf(name: string, err: IntegrityError): Flaw {
  const unsigned = err instanceof SignedRecordError && err.flaw === "unsigned";
  const mismatch = !(err instanceof SignedRecordError);
  return {
    health: unsigned ? "unsigned" : mismatch ? "record mismatch" : "bad signature",
    detail: `${quote(name)}: ${err.message}`,
  };
}

/**
 * With trusted keys: reads every object's signed record, replaces each verified object's chain
 * fields and metadata by the signed ones ({@linkcode overlaySigned}), and returns the objects
 * that are not z3's as {@linkcode Flaw}s: `unsigned` (no record, or one without a signature),
 * `bad signature` (untrusted key, bad signature, malformed, misplaced) or `record mismatch`
 * (ETag or size not the signed ones). Without trusted keys: the check records' flaws
 * (`recordFlaws`), as before signing existed.
 */
export async function trustRemote(
  store: S3Store,
  config: Config,
  remote: ReadonlyMap<string, RemoteSnapshot>,
  options: { signal?: AbortSignal } = {},
): Promise<Map<string, Flaw>> {
  const attempts = config.maxRetries + 1;
  const trusted = trustedKeysOf(config);
  if (!trusted) {
    return await recordFlaws(store, config.s3Prefix, remote, { attempts, signal: options.signal });
  }
  const snaps = [...remote.values()];
  const found = await mapLimit(snaps, RECORDS_PARALLEL, async (snap) => {
    options.signal?.throwIfAborted();
    try {
      const object = { name: snap.name, key: snap.key, signal: options.signal };
      const fields = await readSignedFields(store, config, trusted, object);
      compareSigned(snap.key, { etag: snap.etag, size: snap.objectSize }, fields);
      overlaySigned(snap, fields);
      return undefined;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      return flawOf(snap.name, err);
    }
  });
  const flaws = new Map<string, Flaw>();
  snaps.forEach((snap, i) => {
    if (found[i] !== undefined) flaws.set(snap.name, found[i]!);
  });
  return flaws;
}

/** `remote` without the objects in `flaws`: what a command may act on as z3's. */
export function withoutFlawed<T>(
  remote: ReadonlyMap<string, T>,
  flaws: ReadonlyMap<string, Flaw>,
): Map<string, T> {
  return new Map([...remote].filter(([name]) => !flaws.has(name)));
}

/**
 * {@linkcode trustRemote} with trusted keys; without them nothing is read and no object is
 * flawed (for the commands that read check records object by object as they act).
 */
export async function signedFlaws(
  store: S3Store,
  config: Config,
  remote: ReadonlyMap<string, RemoteSnapshot>,
  options: { signal?: AbortSignal } = {},
): Promise<Map<string, Flaw>> {
  if (!trustedKeysOf(config)) return new Map();
  return await trustRemote(store, config, remote, options);
}

/**
 * For `z3 backup`: with trusted keys, the objects backup may build on (signed, their fields from
 * their records) and the others (`foreign`, with why); without, `remote` as listed and none.
 */
export async function backupRemote(
  store: S3Store,
  config: Config,
  remote: Map<string, RemoteSnapshot>,
  options: { signal?: AbortSignal } = {},
): Promise<{ remote: Map<string, RemoteSnapshot>; foreign: Map<string, Flaw> }> {
  const foreign = await signedFlaws(store, config, remote, options);
  return { remote: withoutFlawed(remote, foreign), foreign };
}

/**
 * Throws a {@linkcode ChainError} (exit 5) when an object z3 did not write (`foreign`, from
 * {@linkcode backupRemote}) sits where one of `uploads` (`dataset@snap`) would go: z3 never
 * writes over it, and never calls the dataset up to date because of it.
 */
export function refuseForeign(
  uploads: readonly string[],
  foreign: ReadonlyMap<string, Flaw>,
  keyOf: (name: string) => string,
): void {
  const blocking = uploads.filter((name) => foreign.has(name));
  if (blocking.length === 0) return;
  const what = blocking.map((name) => `${quote(keyOf(name))} (${foreign.get(name)!.health})`);
  throw new ChainError(
    `Cannot back up ${quote(blocking[0])}: the bucket holds an object z3 did not write where ` +
      `its upload goes: ${what.join(", ")}; ${foreign.get(blocking[0])!.detail}. Nothing was ` +
      "uploaded; check and delete it (or run z3 verify --adopt if it is yours)",
  );
}

/**
 * With trusted keys: throws an {@linkcode IntegrityError} (exit 6) when the signed records of a
 * chain's objects (`chain`, after {@linkcode trustRemote}) say some are encrypted and some are
 * not: a plaintext object is never received into a chain whose records say encrypted.
 */
export function refuseMixedEncryption(config: Config, chain: readonly RemoteSnapshot[]): void {
  if (!trustedKeysOf(config)) return;
  const plain = chain.filter((s) => s.metadata[AGE_METADATA.encryption] !== "age");
  if (plain.length === 0 || plain.length === chain.length) return;
  throw new IntegrityError(
    `Cannot trust ${quote(plain[0].name)}: its signed record says plaintext, in a chain whose ` +
      "other records say encrypted with age; nothing was received",
  );
}
