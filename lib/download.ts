/**
 * A download that survives a dropped connection: when the body stream fails with a retryable
 * error, it asks again for the rest (`Range: bytes=OFFSET-`, `If-Match: ETAG`, so a changed
 * object is never spliced in) after the retry policy's backoff.
 *
 * @module
 */

import { sleep } from "./retry.ts";
import type { S3Store } from "./s3.ts";

/** Options for {@linkcode resumableDownload}. */
export interface DownloadOptions {
  /** The version to read (from HeadObject). */
  etag: string;
  /** Failures in a row before giving up. @default {5} */
  attempts?: number;
  /** First backoff in ms, doubling. @default {200} */
  baseDelayMs?: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number) => void;
}

/** The object's bytes as one stream, resumed after retryable failures. */
export function resumableDownload(
  store: S3Store,
  key: string,
  options: DownloadOptions,
): ReadableStream<Uint8Array> {
  const attempts = Math.max(1, options.attempts ?? 5);
  let offset = 0;
  let failures = 0;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const retryable = (err: unknown) => (err as { retryable?: boolean })?.retryable === true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      for (;;) {
        try {
          reader ??=
            (await store.get(key, { start: offset, etag: options.etag, signal: options.signal }))
              .getReader();
          const r = await reader.read();
          if (r.done) return controller.close();
          offset += r.value.length;
          failures = 0;
          return controller.enqueue(r.value);
        } catch (err) {
          reader?.cancel().catch(() => {});
          reader = undefined;
          failures++;
          if (!retryable(err) || failures >= attempts || options.signal?.aborted) throw err;
          options.onRetry?.(err, failures);
          await sleep(
            Math.random() * (options.baseDelayMs ?? 200) * 2 ** (failures - 1),
            options.signal,
          );
        }
      }
    },
    cancel: (reason) => reader?.cancel(reason),
  }, { highWaterMark: 0 });
}
