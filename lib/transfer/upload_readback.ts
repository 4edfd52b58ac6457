/**
 * After an upload: read the object back (HeadObject) and compare its ETag and size with what was
 * sent. Complete's own answer is not trusted (Ceph 16 returns an empty ETag there).
 *
 * @module
 */

import { IntegrityError } from "../base/errors.ts";
import { etagNotMd5, etagNotMd5Error } from "./etag.ts";
import { type RetryOptions, withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";

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

/**
 * Throws an {@linkcode IntegrityError} and deletes the object unless it is stored as `sent`
 * (and, for a single PutObject, unless PUT's own ETag `putEtag` agrees too).
 */
export async function verifyStored(
  store: S3Store,
  key: string,
  sent: Sent,
  retry: RetryOptions,
  putEtag?: string,
): Promise<void> {
  const problem = putEtag !== undefined && putEtag !== sent.etag
    ? `its ETag is "${putEtag}", expected "${sent.etag}"`
    : await storedDifference(store, key, sent, retry);
  if (!problem) return;
  // In an SSE-KMS or SSE-C bucket the ETag is no MD5 of the bytes: say so, not "corrupt".
  const info = await store.head(key, retry.signal).catch(() => undefined);
  await store.delete(key).catch(() => {});
  const notMd5 = info && etagNotMd5(info.encryption);
  if (notMd5) throw etagNotMd5Error("upload", key, notMd5, "the object was deleted");
  throw new IntegrityError(`Cannot verify upload of "${key}": ${problem}; the object was deleted`);
}
