/**
 * Downloads for restore: parallel ranged GETs with bounded memory, delivered in order as one
 * stream so `zfs receive` stays fed. Each range is fetched whole into its own buffer, with
 * `If-Match` on the ETag from HeadObject (so no two versions of an object are ever spliced) and
 * retried with the retry policy when it fails or comes back short; a range that fails for good
 * errors the stream. At most `concurrency` ranges of at most `rangeSize` bytes are in memory.
 *
 * With the object's part MD5s (from its check record), ranges never cross a part boundary and
 * each part is checked against its MD5:
 * - a part of at most `concurrency` ranges is held until all of it has arrived and matches, and
 *   fetched again when it does not, so bad bytes never leave;
 * - a larger part streams range by range (memory stays bounded) and is checked when its last
 *   range arrives: a mismatch then errors the stream, since its first bytes have already gone.
 *
 * One retry policy per range or held part ({@linkcode fetchUnit}): a GET that fails and a held
 * part that does not match draw on the same `attempts`, so no range is asked for more than
 * `attempts` times.
 *
 * Held parts are hashed off the main thread (`md5_worker.ts`); a part is released only once its
 * own digest is back and matches.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { withRetry } from "../backend/retry.ts";
import { S3RequestError, type S3Store } from "../backend/s3.ts";
import { Md5Thread } from "./md5_worker.ts";
import { verifyError } from "./verifying_stream.ts";

/** One part of the object and its MD5, as its check record has it. */
export interface PartMd5 {
  /** Bytes in the part. */
  size: number;
  /** Lower-case hex MD5 of the part. */
  md5: string;
}

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
  /**
   * Attempts per range or held part (first included), failed GETs and MD5 mismatches together:
   * no range is asked for more than this many times. @default {5}
   */
  attempts?: number;
  /** The object's parts in order, summing to `size`: each is checked on its own (module doc). */
  parts?: PartMd5[];
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Called when part `part` (1-based) did not match its MD5 and is fetched again. */
  onRefetch?: (part: number, attempt: number, gotMd5: string) => void;
}

async function fetchRange(
  store: S3Store,
  key: string,
  start: number,
  end: number,
  options: DownloadOptions,
): Promise<Uint8Array> {
  const { bytes, filled, more } = await store.getInto(key, new Uint8Array(end - start + 1), {
    start,
    end,
    etag: options.etag,
    signal: options.signal,
  });
  if (more) {
    throw new S3RequestError(
      `Cannot download "${key}": bytes ${start}-${end} came back too long`,
      true,
    );
  }
  if (filled !== end - start + 1) {
    throw new S3RequestError(
      `Cannot download "${key}": bytes ${start}-${end} came back short (${filled} bytes)`,
      true,
    );
  }
  return bytes;
}

/** A run of bytes fetched and released together: one range, or one held part. */
interface Unit {
  /** Inclusive byte ranges, each one GET. */
  ranges: [number, number][];
  /** The part this unit belongs to (1-based), with its MD5, when parts are known. */
  part?: { number: number; md5: string; held: boolean; last: boolean };
}

function rangesOf(start: number, end: number, rangeSize: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = start; s < end; s += rangeSize) out.push([s, Math.min(end, s + rangeSize) - 1]);
  return out;
}

function unitsOf(options: DownloadOptions, rangeSize: number, concurrency: number): Unit[] {
  if (!options.parts) {
    return rangesOf(0, options.size, rangeSize).map((r) => ({ ranges: [r] }));
  }
  const units: Unit[] = [];
  let start = 0;
  for (const [i, p] of options.parts.entries()) {
    const ranges = rangesOf(start, start + p.size, rangeSize);
    if (ranges.length <= concurrency) {
      units.push({ ranges, part: { number: i + 1, md5: p.md5, held: true, last: true } });
    } else {
      ranges.forEach((r, j) =>
        units.push({
          ranges: [r],
          part: { number: i + 1, md5: p.md5, held: false, last: j === ranges.length - 1 },
        })
      );
    }
    start += p.size;
  }
  return units;
}

/**
 * A held part whose bytes did not hash to its MD5: retryable, so the unit's retry policy fetches
 * it again; when the attempts run out it becomes the {@linkcode verifyError} that says so.
 */
class PartMismatch extends Error {
  readonly retryable = true;
  constructor(readonly part: number, readonly md5: string) {
    super(`part ${part} hashes to MD5 ${md5}`);
  }
}

/**
 * The bytes of `unit`, each range fetched whole; a held part is hashed and, when it does not
 * match its MD5, fetched again. One {@linkcode withRetry} covers the unit: a range that failed
 * and a part that did not match use the same attempts. Ranges that arrived are kept while a
 * failed sibling is fetched again; after a mismatch every range is.
 */
async function fetchUnit(
  store: S3Store,
  key: string,
  unit: Unit,
  options: DownloadOptions & { attempts: number; hasher?: Md5Thread },
): Promise<Uint8Array[]> {
  const got: (Uint8Array | undefined)[] = unit.ranges.map(() => undefined);
  const part = unit.part?.held ? unit.part : undefined;
  const hasher = options.hasher;
  let hashed = 0;
  const attempt = async (): Promise<Uint8Array[]> => {
    const settled = await Promise.allSettled(
      unit.ranges.map(([s, e], i) => got[i] ?? fetchRange(store, key, s, e, options)),
    );
    settled.forEach((r, i) => r.status === "fulfilled" && (got[i] = r.value));
    const failed = settled.find((r) => r.status === "rejected");
    if (failed) throw failed.reason; // the ranges that arrived are kept for the next attempt
    const fetched = got as Uint8Array[];
    if (!part || !hasher) return fetched;
    const { md5, chunks } = await hasher.md5(fetched);
    hashed++;
    if (md5 === part.md5) return chunks;
    got.fill(undefined);
    throw new PartMismatch(part.number, md5);
  };
  try {
    return await withRetry(attempt, {
      attempts: options.attempts,
      signal: options.signal,
      onRetry: (err, n, delayMs) =>
        err instanceof PartMismatch
          ? options.onRefetch?.(err.part, n, err.md5)
          : options.onRetry?.(err, n, delayMs),
    });
  } catch (err) {
    if (!(err instanceof PartMismatch)) throw err;
    options.signal?.throwIfAborted(); // stopped between attempts: the signal's reason, not a verdict
    throw verifyError(
      key,
      `part ${err.part} hashes to MD5 ${err.md5} on each of ${hashed} downloads, its ` +
        `check record says ${part!.md5}`,
    );
  }
}

/** Units fetched ahead, in order, with at most `concurrency` ranges in flight (one unit always). */
class Prefetch {
  #units: Unit[];
  #concurrency: number;
  #fetch: (unit: Unit) => Promise<Uint8Array[]>;
  #next = 0;
  #ranges = 0;
  #inflight: { unit: Unit; chunks: Promise<Uint8Array[]> }[] = [];

  constructor(units: Unit[], concurrency: number, fetch: (unit: Unit) => Promise<Uint8Array[]>) {
    this.#units = units;
    this.#concurrency = concurrency;
    this.#fetch = fetch;
  }

  /** Starts the next units while their ranges fit. */
  launch(): void {
    while (this.#next < this.#units.length) {
      const unit = this.#units[this.#next];
      const ranges = this.#ranges + unit.ranges.length;
      if (this.#inflight.length > 0 && ranges > this.#concurrency) return;
      this.#next++;
      this.#ranges = ranges;
      const chunks = this.#fetch(unit);
      chunks.catch(() => {}); // surfaced when its turn comes
      this.#inflight.push({ unit, chunks });
    }
  }

  /** The oldest unit in flight (after starting what fits), or `undefined` when none is left. */
  shift(): { unit: Unit; chunks: Promise<Uint8Array[]> } | undefined {
    this.launch();
    return this.#inflight.shift();
  }

  /** `unit`'s bytes were passed on: its ranges no longer count against `concurrency`. */
  release(unit: Unit): void {
    this.#ranges -= unit.ranges.length;
  }

  /** Starts no more units; those in flight end on their own. */
  stop(): void {
    this.#next = this.#units.length;
  }
}

/**
 * Checks parts too large to hold as their ranges pass: the returned function takes each streamed
 * range in order and throws at a part's last range when the part does not match its MD5.
 */
function streamedPartCheck(key: string) {
  let hash = createHash("md5");
  return (part: NonNullable<Unit["part"]>, chunks: Uint8Array[]) => {
    for (const c of chunks) hash.update(c);
    if (!part.last) return;
    const got = hash.digest("hex");
    hash = createHash("md5");
    if (got !== part.md5) {
      throw verifyError(
        key,
        `part ${part.number} hashes to MD5 ${got}, its check record says ${part.md5} ` +
          `(a part larger than CONCURRENCY × CHUNK_SIZE streams and is not fetched again)`,
      );
    }
  };
}

/** The object's bytes, in order, fetched as parallel ranges (see module doc). */
export function parallelDownload(
  store: S3Store,
  key: string,
  options: DownloadOptions,
): ReadableStream<Uint8Array> {
  const rangeSize = Math.max(1, options.rangeSize ?? 8 * 1024 * 1024);
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const attempts = Math.max(1, options.attempts ?? 5);
  const hasher = options.parts ? new Md5Thread() : undefined;
  const prefetch = new Prefetch(
    unitsOf(options, rangeSize, concurrency),
    concurrency,
    (unit) => fetchUnit(store, key, unit, { ...options, attempts, hasher }),
  );
  const checkStreamed = streamedPartCheck(key);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const head = prefetch.shift();
      if (!head) {
        hasher?.close();
        return controller.close();
      }
      try {
        const chunks = await head.chunks;
        prefetch.release(head.unit);
        if (head.unit.part && !head.unit.part.held) checkStreamed(head.unit.part, chunks);
        for (const c of chunks) controller.enqueue(c);
      } catch (err) {
        hasher?.close();
        throw err;
      }
      prefetch.launch();
    },
    cancel() {
      prefetch.stop();
      hasher?.close();
    },
  }, { highWaterMark: 0 });
}
