/**
 * Downloads for restore: parallel ranged GETs with bounded memory, delivered in order as one
 * stream so `zfs receive` stays fed. Each range is fetched whole into its own buffer, with
 * `If-Match` on the ETag from HeadObject (so no two versions of an object are ever spliced) and
 * retried with the retry policy when it fails or comes back short; a range that fails for good
 * errors the stream. Memory: at most `concurrency × rangeSize` bytes of ranges in flight.
 *
 * @module
 */

import { withRetry } from "./retry.ts";
import { S3RequestError, type S3Store } from "./s3.ts";

/** Options for {@linkcode parallelDownload}. */
export interface DownloadOptions {
  /** The version to read (from HeadObject). */
  etag: string;
  /** Object size (from HeadObject). */
  size: number;
  /** Bytes per ranged GET. @default {8 MiB} */
  rangeSize?: number;
  /** Ranged GETs in flight. @default {4} */
  concurrency?: number;
  /** Attempts per range (first included). @default {5} */
  attempts?: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

async function fetchRange(
  store: S3Store,
  key: string,
  start: number,
  end: number,
  options: DownloadOptions,
): Promise<Uint8Array> {
  const out = new Uint8Array(end - start + 1);
  let filled = 0;
  const body = await store.get(key, { start, end, etag: options.etag, signal: options.signal });
  for await (const chunk of body) {
    if (filled + chunk.length > out.length) {
      throw new S3RequestError(
        `Cannot download "${key}": bytes ${start}-${end} came back too long`,
        true,
      );
    }
    out.set(chunk, filled);
    filled += chunk.length;
  }
  if (filled !== out.length) {
    throw new S3RequestError(
      `Cannot download "${key}": bytes ${start}-${end} came back short (${filled} bytes)`,
      true,
    );
  }
  return out;
}

/** The object's bytes, in order, fetched as parallel ranges (see module doc). */
export function parallelDownload(
  store: S3Store,
  key: string,
  options: DownloadOptions,
): ReadableStream<Uint8Array> {
  const rangeSize = Math.max(1, options.rangeSize ?? 8 * 1024 * 1024);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const retry = { attempts: options.attempts, signal: options.signal, onRetry: options.onRetry };
  let next = 0;
  const inflight: Promise<Uint8Array>[] = [];
  const launch = () => {
    while (inflight.length < concurrency && next < options.size) {
      const start = next;
      const end = Math.min(options.size, start + rangeSize) - 1;
      next = end + 1;
      const p = withRetry(() => fetchRange(store, key, start, end, options), retry);
      p.catch(() => {}); // surfaced when its turn comes
      inflight.push(p);
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      launch();
      const head = inflight.shift();
      if (!head) return controller.close();
      controller.enqueue(await head);
      launch();
    },
    cancel() {
      next = options.size; // start nothing more; running ranges end on their own
    },
  }, { highWaterMark: 0 });
}
