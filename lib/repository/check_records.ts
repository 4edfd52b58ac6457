/**
 * Check records: after `z3 backup` has verified an object, it writes a small JSON record of the
 * object's ETag, size and place in the chain (full or parent, and both GUIDs) beside the backup
 * prefix (`S3_PREFIX` without its slash + `.z3/` + `dataset@snap`, outside the listing the
 * original z3 reads). Every reader compares the object with its record before acting on it, so
 * an object rewritten or replaced in the bucket after the backup is refused even when its own
 * ETag matches its new bytes, and so is a metadata rewrite by server-side copy (which keeps the
 * ETag) that makes an incremental a full, points it at another parent or changes a GUID.
 *
 * What a record does not cover: the compressor, creation time, encryption and send flags are
 * still read from the object's metadata unchecked. And a record proves nothing against someone
 * who can write the bucket: they can write the record too (`signed_record.ts` is for that).
 *
 * @module
 */

import { type Shape, shapeOf } from "../chain/metadata.ts";
import { type Flaw, quote } from "../chain/walk.ts";
import { IntegrityError } from "../base/errors.ts";
import { printable } from "../chain/names.ts";
import { putJson, readJson, SidecarError } from "./sidecar.ts";
import type { Retention, S3Store } from "../backend/s3.ts";
import { mapLimit } from "../base/map_limit.ts";
import type { RemoteSnapshot } from "../chain/types.ts";

/**
 * What a check record holds. Records written before z3 0.x held only `etag`, `size` and `guid`;
 * the other fields are absent in those.
 */
export interface CheckRecord {
  /** The object's ETag, without quotes. */
  etag: string;
  /** The object's size in bytes. */
  size: number;
  /** The snapshot's GUID (`z3-guid`). */
  guid?: string;
  /** The chain's shape: whether the object is a full stream. */
  full?: boolean;
  /** For an incremental: its parent, `dataset@snap` (`parent`). */
  parent?: string;
  /** For an incremental: its parent's GUID (`z3-parent-guid`). */
  parentGuid?: string;
  /** Each part's MD5 (hex), in part order; the ETag is the MD5 of these (one for a single PUT). */
  parts?: string[];
}

/** The record's key for the backup object of `name` (`dataset@snap`). */
export function checkKey(prefix: string, name: string): string {
  const base = prefix.replace(/\/+$/, "");
  return `${base}.z3/${name}`;
}

/** A z3 object has no check record (deleted, or a run died before writing it). */
export class MissingRecordError extends IntegrityError {
  constructor(key: string, recordKey: string) {
    super(
      `Cannot trust "${key}": its check record "${recordKey}" is missing ` +
        `(deleted, or the object was not written by z3 backup)`,
    );
  }
}

/** Writes the record (a single small PutObject, retried), locked with `options.lock` if set. */
export async function writeCheck(
  store: S3Store,
  prefix: string,
  name: string,
  record: CheckRecord,
  attempts: number,
  options: { lock?: Retention } = {},
): Promise<void> {
  await putJson(store, checkKey(prefix, name), record, attempts, options);
}

/** Larger than any record z3 writes (10,000 part MD5s take about 350 KB): not read. */
const MAX_RECORD_BYTES = 1024 * 1024;

/** Reads the record, or `undefined` when there is none. */
export async function readCheck(
  store: S3Store,
  prefix: string,
  name: string,
  attempts: number,
): Promise<CheckRecord | undefined> {
  const key = checkKey(prefix, name);
  let r: unknown;
  try {
    r = await readJson(store, key, { maxBytes: MAX_RECORD_BYTES, attempts });
  } catch (err) {
    if (!(err instanceof SidecarError)) throw err;
    const size = err.reason === "too large" ? ` (${err.size} bytes)` : "";
    throw new IntegrityError(
      `Cannot read check record ${quote(key)}: it is not what z3 writes${size}`,
      { cause: err },
    );
  }
  if (r === undefined || wellFormed(r)) return r;
  const signed = signedAsCheck(r);
  if (signed !== undefined) return signed;
  throw new IntegrityError(`Cannot read check record ${quote(key)}: it is not what z3 writes`);
}

/**
 * A signed record (`signed_record.ts`) read where no key is trusted: its fields as the check
 * record they state (no more trusted than a check record, and not checked for a signature), so
 * that a bucket written with SIGNING_KEY_FILE reads as before on a host without trusted keys.
 * `undefined` when `r` is not a signed record.
 */
function signedAsCheck(r: unknown): CheckRecord | undefined {
  if (
    typeof r !== "object" || r === null || (r as { z3SignedRecord?: unknown }).z3SignedRecord !== 1
  ) {
    return undefined;
  }
  const f = (r as { fields?: Record<string, unknown> }).fields;
  if (typeof f !== "object" || f === null) return undefined;
  const record: Record<string, unknown> = {
    etag: f.etag,
    size: f.size,
    guid: f.guid,
    full: f.full,
    parts: f.partMd5s,
  };
  if (f.full === false) Object.assign(record, { parent: f.parent, parentGuid: f.parentGuid });
  return wellFormed(record) ? record : undefined;
}

function optional(value: unknown, type: "string" | "boolean"): boolean {
  return value === undefined || typeof value === type;
}

function wellFormed(r: unknown): r is CheckRecord {
  if (typeof r !== "object" || r === null) return false;
  const c = r as Record<string, unknown>;
  return typeof c.etag === "string" && Number.isSafeInteger(c.size) &&
    optional(c.guid, "string") && optional(c.full, "boolean") && optional(c.parent, "string") &&
    optional(c.parentGuid, "string") &&
    (c.parts === undefined ||
      (Array.isArray(c.parts) && c.parts.every((p) => typeof p === "string")));
}

/** What HeadObject says about an object, as compared with its record. */
export interface SeenObject {
  /** ETag without quotes. */
  etag: string;
  /** Size in bytes. */
  size: number;
  /** User metadata, keys lower-cased. */
  metadata: Record<string, string>;
}

/**
 * How the object differs from its record, or `undefined` when it matches: ETag, size, GUID, and
 * the chain's shape (full or not, parent, parent GUID) where the record holds them. Records of
 * older z3 hold only ETag, size and GUID; those are compared.
 */
export function recordDisagreement(seen: SeenObject, record: CheckRecord): string | undefined {
  if (seen.etag !== record.etag || seen.size !== record.size) {
    return `it changed in the bucket after the backup (now ETag "${seen.etag}", ${seen.size} ` +
      `bytes; recorded "${record.etag}", ${record.size} bytes)`;
  }
  const shape: Shape = shapeOf(seen.metadata);
  const differs: string[] = [];
  const field = (what: string, now: string | undefined, recorded: string | undefined) => {
    if (now === recorded) return;
    const show = (v: string | undefined) => (v === undefined ? "none" : printable(v));
    differs.push(`${what} now ${show(now)}, recorded ${show(recorded)}`);
  };
  if (record.guid !== undefined) field("GUID", shape.guid, record.guid);
  if (record.full !== undefined) {
    const kind = (full: boolean) => (full ? "full" : "incremental");
    if (shape.isFull !== record.full) {
      differs.push(`now ${kind(shape.isFull)}, recorded ${kind(record.full)}`);
    } else if (!record.full) {
      field("parent", shape.parent, record.parent);
      field("parent GUID", shape.parentGuid, record.parentGuid);
    }
  }
  if (differs.length === 0) return undefined;
  return `its metadata disagrees with its check record (${differs.join("; ")})`;
}

/** Throws unless the object (as HeadObject saw it) matches its record. */
export function compareCheck(key: string, seen: SeenObject, record: CheckRecord): void {
  const why = recordDisagreement(seen, record);
  if (why !== undefined) throw new IntegrityError(`Cannot trust ${quote(key)}: ${why}`);
}

/** Records read at once by {@linkcode recordFlaws}. */
const RECORDS_PARALLEL = 16;

/**
 * Reads the check record of every object of this z3 in `remote` (those without `z3-version`,
 * from the original z3, have none) and compares each with what the listing saw (`etag`, size,
 * metadata): the objects whose record is missing or disagrees, as {@linkcode Flaw}s for
 * {@linkcode Chains}. Reads only the small records, never the objects.
 */
export async function recordFlaws(
  store: S3Store,
  prefix: string,
  remote: ReadonlyMap<string, RemoteSnapshot>,
  options: { attempts: number; signal?: AbortSignal },
): Promise<Map<string, Flaw>> {
  const ours = [...remote.values()].filter((s) => s.metadata["z3-version"] !== undefined);
  const found = await mapLimit(ours, RECORDS_PARALLEL, async (snap): Promise<Flaw | undefined> => {
    options.signal?.throwIfAborted();
    let record: CheckRecord | undefined;
    try {
      record = await readCheck(store, prefix, snap.name, options.attempts);
    } catch (err) {
      // A record that is not what z3 writes: shown as such, not the end of the listing.
      if (!(err instanceof IntegrityError)) throw err;
      return { health: "record mismatch", detail: `${quote(snap.name)}: ${err.message}` };
    }
    if (record === undefined) {
      return {
        health: "record missing",
        detail: `${quote(snap.name)} has no check record ${
          quote(checkKey(prefix, snap.name))
        } (z3 verify --repair writes it again once its bytes match its ETag)`,
      };
    }
    const why = recordDisagreement(
      { etag: snap.etag ?? "", size: snap.objectSize, metadata: snap.metadata },
      record,
    );
    return why === undefined
      ? undefined
      : { health: "record mismatch", detail: `${quote(snap.name)}: ${why}` };
  });
  const flaws = new Map<string, Flaw>();
  ours.forEach((snap, i) => {
    const flaw = found[i];
    if (flaw !== undefined) flaws.set(snap.name, flaw);
  });
  return flaws;
}
