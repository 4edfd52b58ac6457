/**
 * After an upload: read the object back (HeadObject) and compare its ETag and size with what was
 * sent. Complete's own answer is not trusted (Ceph 16 returns an empty ETag there). On a
 * mismatch z3 deletes only the version it wrote, never what another run wrote to the key.
 *
 * @module
 */

import { IntegrityError } from "../base/errors.ts";
import { etagNotMd5, etagNotMd5Error } from "./etag.ts";
import { type RetryOptions, withRetry } from "../backend/retry.ts";
import type { ObjectInfo, S3Store } from "../backend/s3.ts";

/** What an upload sent: the ETag computed from its parts, and its size. */
export interface Sent {
  etag: string;
  size: number;
}

/** How the stored object differs from `sent` (one phrase), or `undefined` when it matches. */
export async function storedDifference(
  store: S3Store,
  key: string,
  sent: Sent,
  retry: RetryOptions,
): Promise<string | undefined> {
  const info = await withRetry(() => store.head(key, retry.signal), retry);
  return !info
    ? "it is missing after the upload"
    : info.size !== sent.size
    ? `its size is ${info.size}, expected ${sent.size}`
    : info.etag !== sent.etag
    ? `its ETag is "${info.etag}", expected "${sent.etag}"`
    : undefined;
}

/** What this run's write stored, as the server answered it. */
export interface Wrote {
  /** PutObject's own ETag (a single PUT); undefined after a multipart Complete. */
  putEtag?: string;
  /** The version the write created, in a versioned bucket (Put's or Complete's answer). */
  versionId?: string;
}

/**
 * Throws unless the object at `key` is stored as `sent` (and, for a single PutObject, unless
 * PUT's own ETag agrees too). z3 deletes only what it can tell it wrote itself: in a versioned
 * bucket the version `wrote.versionId` (never another run's version); without versioning nothing,
 * since what the key holds may be another run's completed object.
 */
export async function verifyStored(
  store: S3Store,
  key: string,
  sent: Sent,
  retry: RetryOptions,
  wrote: Wrote = {},
): Promise<void> {
  const { putEtag } = wrote;
  const problem = putEtag !== undefined && putEtag !== sent.etag
    ? `its ETag is "${putEtag}", expected "${sent.etag}"`
    : await storedDifference(store, key, sent, retry);
  if (!problem) return;
  // In an SSE-KMS or SSE-C bucket the ETag is no MD5 of the bytes: say so, not "corrupt".
  const info = await store.head(key, retry.signal).catch(() => undefined);
  const fate = await deleteOwnVersion(store, key, wrote.versionId, info, retry.signal);
  const notMd5 = info && etagNotMd5(info.encryption);
  if (notMd5) throw etagNotMd5Error("upload", key, notMd5, fate);
  throw new IntegrityError(`Cannot verify upload of "${key}": ${problem}; ${fate}`);
}

/**
 * After a failed read-back: deletes the version this run wrote, when the bucket named one, and
 * says what became of it and of what the key holds (`info`, read after the mismatch).
 */
async function deleteOwnVersion(
  store: S3Store,
  key: string,
  versionId: string | undefined,
  info: ObjectInfo | undefined,
  signal: AbortSignal | undefined,
): Promise<string> {
  if (versionId === undefined) {
    const found = info
      ? `what the key holds (ETag "${info.etag}", ${info.size} bytes${
        info.lastModified ? `, written ${info.lastModified.toISOString()}` : ""
      })`
      : "the key";
    return `${found} was left in place: without bucket versioning z3 cannot tell its own ` +
      `object from another run's, and deletes neither (see "Concurrent runs" in the README); ` +
      `the next backup checks it`;
  }
  const other = info?.versionId !== undefined && info.versionId !== versionId
    ? `; the key's current version (${info.versionId}) is another upload's and was left in place`
    : "";
  try {
    await store.deleteVersion(key, versionId, signal);
    return `the version this run wrote (${versionId}) was deleted${other}`;
  } catch (err) {
    return `the version this run wrote (${versionId}) is left (deleting it failed: ` +
      `${(err as Error).message})${other}`;
  }
}
