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
 *   fetched again when it does not (up to `attempts` times in all), so bad bytes never leave;
 * - a larger part streams range by range (memory stays bounded) and is checked when its last
 *   range arrives: a mismatch then errors the stream, since its first bytes have already gone.
 *
 * Held parts are hashed off the main thread, in a Worker of their own ({@linkcode Md5Thread}):
 * MD5 was most of the main thread's time in a restore, and while it hashes an 8 MiB part (about
 * 15 ms) nothing else moves there, neither the sockets nor the writes into `zfs receive`. A
 * part's buffers are transferred to the worker and back, not copied; a part is released only once
 * its own digest is back and matches.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { withRetry } from "../backend/retry.ts";
import { S3RequestError, type S3Store } from "../backend/s3.ts";
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
  /** Attempts per range, and per part whose MD5 does not match (first included). @default {5} */
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

function md5Of(chunks: Uint8Array[]): string {
  const h = createHash("md5");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/** The worker's code: MD5 of the buffers it is sent, which it sends back with the digest. */
const MD5_WORKER = `import { createHash } from "node:crypto";
self.onmessage = (e) => {
  const { id, buffers } = e.data;
  const h = createHash("md5");
  for (const b of buffers) h.update(new Uint8Array(b));
  self.postMessage({ id, md5: h.digest("hex"), buffers }, buffers);
};`;

/**
 * MD5s computed in a Worker (module doc), made from a blob of {@linkcode MD5_WORKER}, so it needs
 * no file and no permission beyond the caller's. Where no Worker can start, it hashes inline.
 */
class Md5Thread {
  #worker: Worker | undefined;
  #url: string | undefined;
  #next = 0;
  #waiting = new Map<number, { resolve: (r: Uint8Array[] | Error) => void; md5?: string }>();
  #failed: Error | undefined;

  constructor() {
    try {
      this.#url = URL.createObjectURL(new Blob([MD5_WORKER], { type: "text/javascript" }));
      this.#worker = new Worker(this.#url, { type: "module" });
    } catch {
      this.close();
      return;
    }
    this.#worker.onmessage = (
      e: MessageEvent<{ id: number; md5: string; buffers: ArrayBuffer[] }>,
    ) => {
      const w = this.#waiting.get(e.data.id);
      if (!w) return;
      this.#waiting.delete(e.data.id);
      w.md5 = e.data.md5;
      w.resolve(e.data.buffers.map((b) => new Uint8Array(b)));
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failed = new Error(`the MD5 worker failed: ${e.message}`);
      for (const w of this.#waiting.values()) w.resolve(this.#failed);
      this.#waiting.clear();
    };
  }

  /**
   * The hex MD5 of `chunks` in order, and the chunks back (the same memory: each must be a whole
   * ArrayBuffer of its own, which is handed to the worker meanwhile).
   */
  async md5(chunks: Uint8Array[]): Promise<{ md5: string; chunks: Uint8Array[] }> {
    if (!this.#worker) return { md5: md5Of(chunks), chunks };
    if (this.#failed) throw this.#failed;
    const id = this.#next++;
    const buffers = chunks.map((c) => c.buffer as ArrayBuffer);
    const entry: { resolve: (r: Uint8Array[] | Error) => void; md5?: string } = {
      resolve: () => {},
    };
    const back = new Promise<Uint8Array[] | Error>((resolve) => (entry.resolve = resolve));
    this.#waiting.set(id, entry);
    this.#worker.postMessage({ id, buffers }, buffers);
    const r = await back;
    if (r instanceof Error) throw r;
    return { md5: entry.md5!, chunks: r };
  }

  /** Stops the worker; hashes still waiting fail. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = undefined;
    const closed = new Error("the download was closed");
    for (const w of this.#waiting.values()) w.resolve(closed);
    this.#waiting.clear();
  }
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
  const retry = { attempts, signal: options.signal, onRetry: options.onRetry };
  const units = unitsOf(options, rangeSize, concurrency);
  const hasher = options.parts ? new Md5Thread() : undefined;
  const fetchUnit = async (unit: Unit): Promise<Uint8Array[]> => {
    for (let attempt = 1;; attempt++) {
      const fetched = await Promise.all(
        unit.ranges.map(([s, e]) => withRetry(() => fetchRange(store, key, s, e, options), retry)),
      );
      if (!unit.part?.held || !hasher) return fetched;
      const { md5: got, chunks } = await hasher.md5(fetched);
      if (got === unit.part.md5) return chunks;
      if (attempt >= attempts) {
        throw verifyError(
          key,
          `part ${unit.part.number} hashes to MD5 ${got} on each of ${attempt} downloads, its ` +
            `check record says ${unit.part.md5}`,
        );
      }
      options.onRefetch?.(unit.part.number, attempt, got);
    }
  };
  let next = 0;
  let rangesInFlight = 0;
  const inflight: { unit: Unit; chunks: Promise<Uint8Array[]> }[] = [];
  const launch = () => {
    while (next < units.length) {
      const unit = units[next];
      if (inflight.length > 0 && rangesInFlight + unit.ranges.length > concurrency) return;
      next++;
      rangesInFlight += unit.ranges.length;
      const chunks = fetchUnit(unit);
      chunks.catch(() => {}); // surfaced when its turn comes
      inflight.push({ unit, chunks });
    }
  };
  // A part too large to hold streams; its MD5 is checked as its ranges pass.
  let streamed = createHash("md5");
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      launch();
      const head = inflight.shift();
      if (!head) {
        hasher?.close();
        return controller.close();
      }
      const chunks = await head.chunks.catch((err) => {
        hasher?.close();
        throw err;
      });
      rangesInFlight -= head.unit.ranges.length;
      const part = head.unit.part;
      if (part && !part.held) {
        for (const c of chunks) streamed.update(c);
        if (part.last) {
          const got = streamed.digest("hex");
          streamed = createHash("md5");
          if (got !== part.md5) {
            hasher?.close();
            throw verifyError(
              key,
              `part ${part.number} hashes to MD5 ${got}, its check record says ${part.md5} ` +
                `(a part larger than CONCURRENCY × CHUNK_SIZE streams and is not fetched again)`,
            );
          }
        }
      }
      for (const c of chunks) controller.enqueue(c);
      launch();
    },
    cancel() {
      next = units.length; // start nothing more; running ranges end on their own
      hasher?.close();
    },
  }, { highWaterMark: 0 });
}
