/**
 * Stores one byte stream as one S3 object, or fails leaving nothing behind.
 *
 * - A stream that fits in one part goes up with one PutObject; an empty stream is refused.
 * - Otherwise a multipart upload with at most `concurrency` parts in flight. Memory is bounded
 *   by `(concurrency + 2) × part size`: reading waits for a free upload slot, so the producer
 *   blocks instead of memory growing.
 * - Every part carries its Content-MD5; the final ETag (read back with HeadObject) must equal
 *   the one computed from the part MD5s, or the object is deleted and the upload fails.
 * - `beforeComplete` (the producer's exit status) is awaited before the object is made: end of
 *   stream is not success.
 * - Any failure aborts the multipart upload and throws one error naming every cause.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { IntegrityError, S3Error, UsageError } from "./errors.ts";
import { type FilledPart, PartReader } from "./part_reader.ts";
import { MAX_PART_SIZE, type PartSchedule, partSizeOf, scheduleToMetadata } from "./part_size.ts";
import { withRetry } from "./retry.ts";
import type { S3Store } from "./s3.ts";

/** Options for {@linkcode uploadStream}. */
export interface UploadOptions {
  /** Part sizes. */
  schedule: PartSchedule;
  /** Most parts allowed. @default {10000} */
  maxParts?: number;
  /** Parts in flight at once. @default {4} */
  concurrency?: number;
  /** Attempts per request (first included). @default {5} */
  attempts?: number;
  /** First retry backoff in ms. @default {200} */
  retryDelayMs?: number;
  /** User metadata for the object (the schedule and size keys are added). */
  metadata?: Record<string, string>;
  /** Storage class. */
  storageClass?: string;
  /** Aborts the upload (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Awaited after the stream ends and before the object is made; a throw aborts the upload. */
  beforeComplete?: () => Promise<void>;
  /** Called with the running byte count as parts are read. */
  onProgress?: (bytes: number) => void;
  /** Names the input in read errors. @default {"the input stream"} */
  inputLabel?: string;
  /** Called before each retry. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** What a finished upload reports. */
export interface UploadResult {
  key: string;
  /** The object's ETag as the server reports it (verified). */
  etag: string;
  bytes: number;
  /** 1 for a single PutObject. */
  parts: number;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const toBase64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

/** Multipart ETag from part MD5s: md5(concat(md5s)) + "-" + count. */
export function multipartEtag(md5s: Uint8Array[]): string {
  const h = createHash("md5");
  for (const m of md5s) h.update(m);
  return `${h.digest("hex")}-${md5s.length}`;
}

/** A small pool of part buffers, reused so no part allocates. */
class BufferPool {
  #free: ArrayBuffer[] = [];
  take(size: number): Uint8Array {
    const i = this.#free.findIndex((b) => b.byteLength === size);
    const buf = i >= 0 ? this.#free.splice(i, 1)[0] : new ArrayBuffer(size);
    return new Uint8Array(buf);
  }
  give(buf: ArrayBuffer): void {
    this.#free.push(buf);
  }
}

/** Uploads `source` to `key`; see the module doc for the guarantees. */
export async function uploadStream(
  store: S3Store,
  key: string,
  source: ReadableStream<Uint8Array>,
  options: UploadOptions,
): Promise<UploadResult> {
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const maxParts = options.maxParts ?? 10_000;
  const signal = options.signal;
  const retry = {
    attempts: options.attempts ?? 5,
    baseDelayMs: options.retryDelayMs,
    signal,
    onRetry: options.onRetry,
  };
  const reader = new PartReader(source, options.inputLabel);
  const pool = new BufferPool();
  const sizeOf = (n: number) => partSizeOf(options.schedule, n);
  const readPart = async (n: number): Promise<FilledPart | undefined> => {
    if (sizeOf(n) > MAX_PART_SIZE) {
      throw new UsageError(`Cannot upload "${key}": part ${n} would exceed 5 GiB`);
    }
    const part = await reader.fill(pool.take(sizeOf(n)));
    options.onProgress?.(reader.bytesRead);
    return part;
  };
  const metadata = { ...options.metadata, ...scheduleToMetadata(options.schedule) };
  // A cancelled read looks like the end of the stream; every path below checks the signal
  // before it makes an object, so an interrupted stream can never be stored as complete.
  const onAbort = () => void reader.cancel(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await upload();
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }

  async function upload(): Promise<UploadResult> {
    let first: FilledPart | undefined;
    let second: FilledPart | undefined;
    try {
      first = await readPart(1);
      if (!first) throw new UsageError(`Cannot upload "${key}": the input stream is empty`);
      second = reader.done ? undefined : await readPart(2);
    } catch (err) {
      await reader.cancel(err);
      throw err;
    }
    if (!second) {
      // Fits in one part: one PutObject, after the producer said it succeeded.
      signal?.throwIfAborted();
      await options.beforeComplete?.();
      signal?.throwIfAborted();
      const md5hex = toHex(first.md5);
      const etag = await withRetry(
        () =>
          store.put(key, first!.bytes, toBase64(first!.md5), {
            metadata,
            storageClass: options.storageClass,
            signal,
          }),
        retry,
      );
      await verifyObject(store, key, md5hex, first.bytes.length, etag);
      return { key, etag: md5hex, bytes: first.bytes.length, parts: 1 };
    }

    if (maxParts < 2) {
      await reader.cancel();
      throw new UsageError(`Cannot upload "${key}": the stream needs more than ${maxParts} parts`);
    }
    const uploadId = await withRetry(
      () => store.createMultipart(key, { metadata, storageClass: options.storageClass, signal }),
      retry,
    );
    const md5s: Uint8Array[] = [];
    const etags: string[] = [];
    const running = new Set<Promise<void>>();
    const failures: unknown[] = [];
    const sendPart = (n: number, part: FilledPart) => {
      md5s[n - 1] = part.md5;
      const p = withRetry(
        () => store.uploadPart(key, uploadId, n, part.bytes, toBase64(part.md5), signal),
        retry,
      ).then(
        (etag) => {
          etags[n - 1] = etag;
          pool.give(part.bytes.buffer as ArrayBuffer);
        },
        (err) => {
          failures.push(err);
        },
      ).finally(() => running.delete(p));
      running.add(p);
    };
    let total = first.bytes.length + second.bytes.length;
    let count = 2;
    try {
      sendPart(1, first);
      sendPart(2, second);
      while (!reader.done && failures.length === 0) {
        signal?.throwIfAborted();
        while (running.size >= concurrency && failures.length === 0) await Promise.race(running);
        if (failures.length > 0) break;
        const part = await readPart(count + 1);
        if (!part) break;
        if (count + 1 > maxParts) {
          throw new UsageError(
            `Cannot upload "${key}": the stream needs more than ${maxParts} parts`,
          );
        }
        count++;
        total += part.bytes.length;
        sendPart(count, part);
      }
      await Promise.all(running);
      if (failures.length > 0) throw combine(key, failures);
      signal?.throwIfAborted();
      await options.beforeComplete?.();
      await withRetry(
        () =>
          store.completeMultipart(
            key,
            uploadId,
            etags.map((etag, i) => ({ partNumber: i + 1, etag })),
          ),
        retry,
      );
    } catch (err) {
      await reader.cancel(err);
      await Promise.allSettled(running);
      await store.abortMultipart(key, uploadId).catch(() => {});
      throw err;
    }
    const expected = multipartEtag(md5s);
    await verifyObject(store, key, expected, total);
    return { key, etag: expected, bytes: total, parts: count };
  }
}

/** Reads the object back (HEAD) and deletes it unless ETag and size are what was sent. */
async function verifyObject(
  store: S3Store,
  key: string,
  etag: string,
  size: number,
  putEtag?: string,
) {
  const info = await withRetry(() => store.head(key));
  const problem = !info
    ? "it is missing after the upload"
    : info.size !== size
    ? `its size is ${info.size}, expected ${size}`
    : info.etag !== etag || (putEtag && putEtag !== etag)
    ? `its ETag is "${info.etag}", expected "${etag}"`
    : undefined;
  if (!problem) return;
  await store.delete(key).catch(() => {});
  throw new IntegrityError(`Cannot verify upload of "${key}": ${problem}; the object was deleted`);
}

function combine(key: string, failures: unknown[]): Error {
  const messages = [...new Set(failures.map((f) => (f as Error)?.message ?? String(f)))];
  if (failures.length === 1) return failures[0] as Error;
  return new S3Error(`Cannot upload "${key}": ${messages.join("; ")}`);
}
