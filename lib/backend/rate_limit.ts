/**
 * `MAX_RATE`: one token bucket for a whole run, shared by every request in flight, uploads and
 * downloads alike (as restic's `--limit-upload` / `--limit-download` and syncoid's
 * `--source-bwlimit`). The HTTP layer (`http.ts`) takes tokens for each slice of a request body
 * before writing it and for each piece of a download as it reads it, so a paused reader stops
 * TCP and the rate holds over the whole transfer, not part by part.
 *
 * The bucket refills at `bytesPerSecond` and holds at most {@linkcode BURST_BYTES}: a take
 * beyond what it holds waits for the rest to accrue. Takes are served in the order they come
 * (each reserves its tokens at once), so parallel parts share the limit evenly.
 *
 * @module
 */

import { sleep } from "../base/sleep.ts";

/** What the bucket may hold: the most that passes at full speed after a pause. */
export const BURST_BYTES = 64 * 1024;

/** Slice size for {@linkcode RateLimit.paced}: small enough to keep the rate smooth. */
export const SLICE_BYTES = 64 * 1024;

/** The clock and sleep a {@linkcode RateLimit} uses (tests pass fakes). */
export interface RateClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms`, or early (without error) when `signal` aborts, like `base/sleep.ts`. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const realClock: RateClock = { now: () => performance.now(), sleep };

/** A token bucket of `bytesPerSecond` (see module doc). */
export class RateLimit {
  /** The limit, bytes per second. */
  readonly bytesPerSecond: number;
  #clock: RateClock;
  /** When the bucket is full again, given every take so far (ms on the clock). */
  #full: number;

  constructor(bytesPerSecond: number, clock: RateClock = realClock) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`bytesPerSecond must be > 0`);
    this.bytesPerSecond = bytesPerSecond;
    this.#clock = clock;
    this.#full = clock.now();
  }

  /** Waits until `bytes` may pass; rejects when `signal` aborts. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = this.#clock.now();
    const burstMs = (BURST_BYTES / this.bytesPerSecond) * 1000;
    // Tokens accrue while nobody takes them, up to the burst.
    this.#full = Math.max(this.#full, now - burstMs) + (bytes / this.bytesPerSecond) * 1000;
    const wait = this.#full - burstMs - now;
    if (wait > 0) {
      await this.#clock.sleep(wait, signal);
      signal?.throwIfAborted(); // the sleep ends early on abort, without an error
    }
  }

  /** Hands `bytes` to `write` slice by slice, each after its tokens. */
  async paced(
    bytes: Uint8Array,
    write: (slice: Uint8Array) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    for (let off = 0; off < bytes.length; off += SLICE_BYTES) {
      const slice = bytes.subarray(off, Math.min(bytes.length, off + SLICE_BYTES));
      await this.take(slice.length, signal);
      await write(slice);
    }
  }
}
