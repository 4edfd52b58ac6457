/**
 * Check records: after `z3 backup` has verified an object, it writes a small JSON record of the
 * object's ETag and size beside the backup prefix (`S3_PREFIX` without its slash + `.z3/` +
 * `dataset@snap`, outside the listing the original z3 reads). Restore compares the object with
 * its record before anything reaches ZFS, so an object rewritten or replaced in the bucket after
 * the backup is refused even when its own ETag matches its new bytes.
 *
 * @module
 */

import { IntegrityError } from "./errors.ts";
import { withRetry } from "./retry.ts";
import type { S3Store } from "./s3.ts";
import { createHash } from "node:crypto";

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

/** Writes the record (a single small PutObject, retried). */
export async function writeCheck(
  store: S3Store,
  prefix: string,
  name: string,
  record: CheckRecord,
  attempts: number,
): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(record) + "\n");
  const md5 = createHash("md5").update(body).digest("base64");
  await withRetry(() => store.put(checkKey(prefix, name), body, md5), { attempts });
}

/** Reads the record, or `undefined` when there is none. */
export async function readCheck(
  store: S3Store,
  prefix: string,
  name: string,
  attempts: number,
): Promise<CheckRecord | undefined> {
  const key = checkKey(prefix, name);
  if (!(await withRetry(() => store.head(key), { attempts }))) return undefined;
  const text = await new Response(await withRetry(() => store.get(key), { attempts })).text();
  try {
    const r = JSON.parse(text);
    if (typeof r.etag === "string" && Number.isSafeInteger(r.size)) return r as CheckRecord;
  } catch { /* fall through */ }
  throw new IntegrityError(`Cannot read check record "${key}": it is not what z3 writes`);
}

/** Throws unless the object (as HeadObject saw it) matches its record. */
export function compareCheck(
  key: string,
  seen: { etag: string; size: number },
  record: CheckRecord,
): void {
  if (seen.etag !== record.etag || seen.size !== record.size) {
    throw new IntegrityError(
      `Cannot trust "${key}": it changed in the bucket after the backup (now ETag "${seen.etag}", ` +
        `${seen.size} bytes; recorded "${record.etag}", ${record.size} bytes)`,
    );
  }
}
