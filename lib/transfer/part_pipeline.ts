/**
 * The hashing pipeline of a multipart upload: parts are read into pool buffers, hashed a group
 * at a time (several SIMD lanes cost little more than one: `md5_lanes.ts`), queue, and go out as
 * upload slots free up. Buffers in use (sending + hashed + unhashed) never exceed
 * `concurrency + 2`. A group is hashed when it is full, when the stream has ended, or when an
 * upload slot would otherwise sit idle.
 *
 * A part that fails (after its retries, which are the sender's) stops new parts; the parts in
 * flight finish, then one error names every failed part. After a signal, parts in flight get
 * {@linkcode SIGNAL_GRACE_MS} to end. Nothing here aborts the upload: that is
 * the caller's.
 *
 * @module
 */

import { S3Error, UsageError } from "../base/errors.ts";
import type { BufferPool } from "./buffer_pool.ts";
import { LANES, type Md5Lanes } from "./md5_lanes.ts";
import { sleep } from "../base/sleep.ts";

/** After SIGINT/SIGTERM, how long parts in flight get to end before the upload is aborted. */
export const SIGNAL_GRACE_MS = 500;

/** A part read and hashed: what one UploadPart sends. */
export interface HashedPart {
  bytes: Uint8Array;
  md5: Uint8Array;
}

/** Options for {@linkcode sendParts}. */
export interface PipelineOptions {
  /** The object's key, for errors. */
  key: string;
  /** Reads part `n` into a pool buffer; `undefined` at the end of the stream. */
  readPart: (n: number) => Promise<Uint8Array | undefined>;
  /** Whether the stream has ended. */
  ended: () => boolean;
  pool: BufferPool;
  hasher: Md5Lanes;
  /** Parts sent at once. */
  concurrency: number;
  /** Most parts allowed; one more fails with a {@linkcode UsageError}. */
  maxParts: number;
  /**
   * Sends part `n` (retries included) and resolves when it is stored; returns `undefined` when
   * the part needs no sending (already in a resumed upload). A synchronous throw stops the run.
   */
  send: (n: number, part: HashedPart) => Promise<void> | undefined;
  signal?: AbortSignal;
}

/** What went through the pipeline. */
export interface PipelineResult {
  /** Each part's MD5, in part order. */
  md5s: Uint8Array[];
  /** Bytes in all parts. */
  bytes: number;
}

/** Sends `first` (parts 1, 2, … already read) and the rest of the stream; see the module doc. */
export async function sendParts(
  first: Uint8Array[],
  options: PipelineOptions,
): Promise<PipelineResult> {
  const { key, pool, hasher, concurrency, maxParts, signal } = options;
  const md5s: Uint8Array[] = [];
  const running = new Set<Promise<void>>();
  const failures: unknown[] = [];
  const start = (n: number, part: HashedPart) => {
    md5s[n - 1] = part.md5;
    const sending = options.send(n, part);
    if (!sending) {
      pool.give(part.bytes.buffer as ArrayBuffer);
      return;
    }
    const p = sending.then(
      () => pool.give(part.bytes.buffer as ArrayBuffer),
      (err) => void failures.push(err),
    ).finally(() => running.delete(p));
    running.add(p);
  };
  const buffers = concurrency + 2;
  const unhashed: Uint8Array[] = [...first];
  const hashed: HashedPart[] = [];
  let bytes = first.reduce((sum, p) => sum + p.length, 0);
  let count = first.length;
  let sent = 0;
  try {
    while (failures.length === 0) {
      signal?.throwIfAborted();
      while (hashed.length > 0 && running.size < concurrency) start(++sent, hashed.shift()!);
      const inUse = running.size + hashed.length + unhashed.length;
      if (!options.ended() && unhashed.length < LANES && inUse < buffers) {
        const part = await options.readPart(count + 1);
        if (!part) continue;
        if (count + 1 > maxParts) {
          throw new UsageError(
            `Cannot upload "${key}": the stream needs more than ${maxParts} parts`,
          );
        }
        count++;
        bytes += part.length;
        unhashed.push(part);
        continue;
      }
      if (
        unhashed.length > 0 &&
        (unhashed.length === LANES || options.ended() || running.size < concurrency)
      ) {
        const group = unhashed.splice(0);
        const digests = await hasher.digest(group);
        group.forEach((bytes, i) => hashed.push({ bytes, md5: digests[i] }));
        continue;
      }
      if (options.ended() && unhashed.length === 0 && hashed.length === 0) break;
      await Promise.race(running);
    }
    await Promise.all(running);
  } catch (err) {
    // After a signal the parts in flight are cancelled, but a write the server does not read can
    // only end with the process: wait for them a moment, not for the server.
    const settled = Promise.allSettled(running);
    await (signal?.aborted ? Promise.race([settled, sleep(SIGNAL_GRACE_MS)]) : settled);
    throw err;
  }
  if (failures.length > 0) throw combine(key, failures);
  return { md5s, bytes };
}

/**
 * One error for several failed parts, on one line: `Cannot upload "KEY": parts 1, 3: WHY; …`,
 * parts that failed for the same reason grouped, the key said once.
 */
function combine(key: string, failures: unknown[]): Error {
  if (failures.length === 1) return failures[0] as Error;
  const byReason = new Map<string, number[]>();
  const others = new Set<string>();
  for (const f of failures) {
    const message = (f as Error)?.message ?? String(f);
    const m = /^Cannot upload part (\d+) of "/.exec(message);
    const rest = m ? message.slice(m[0].length) : "";
    if (m && rest.startsWith(`${key}": `)) {
      const reason = rest.slice(key.length + 3);
      byReason.set(reason, [...(byReason.get(reason) ?? []), Number(m[1])]);
    } else others.add(message);
  }
  const grouped = [...byReason].map(([reason, parts]) =>
    `${parts.length > 1 ? "parts" : "part"} ${parts.sort((a, b) => a - b).join(", ")}: ${reason}`
  );
  return new S3Error(`Cannot upload "${key}": ${[...grouped, ...others].join("; ")}`);
}
