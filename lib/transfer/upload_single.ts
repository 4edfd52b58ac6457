/**
 * A stream that fits in one part goes up with one PutObject, after the producer said it
 * succeeded, and is read back (HEAD) before it counts as stored.
 *
 * @module
 */

import { toBase64, toHex } from "../base/hex.ts";
import type { Md5Lanes } from "./md5_lanes.ts";
import { type RetryOptions, withRetry } from "../backend/retry.ts";
import type { Retention, S3Store } from "../backend/s3.ts";
import { verifyStored } from "./upload_readback.ts";

/** Options for {@linkcode putSingle}. */
export interface SingleOptions {
  metadata: Record<string, string>;
  storageClass?: string;
  lock?: Retention;
  signal?: AbortSignal;
  retry: RetryOptions;
  hasher: Md5Lanes;
  /** Awaited before the PUT (the producer's exit status); a throw stores nothing. */
  beforeComplete?: () => Promise<void>;
}

/** Stores `bytes` at `key` with one PutObject; returns the part's MD5 (hex), the ETag. */
export async function putSingle(
  store: S3Store,
  key: string,
  bytes: Uint8Array,
  options: SingleOptions,
): Promise<string> {
  const { signal } = options;
  signal?.throwIfAborted();
  await options.beforeComplete?.();
  signal?.throwIfAborted();
  const [md5] = await options.hasher.digest([bytes]);
  const md5hex = toHex(md5);
  const written = await withRetry(
    () =>
      store.putVersion(key, bytes, toBase64(md5), {
        metadata: options.metadata,
        storageClass: options.storageClass,
        lock: options.lock,
        signal,
      }),
    options.retry,
  );
  const wrote = { putEtag: written.etag, versionId: written.versionId };
  await verifyStored(store, key, { etag: md5hex, size: bytes.length }, options.retry, wrote);
  return md5hex;
}
