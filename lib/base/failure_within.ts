/**
 * Waiting a bounded time for a promise's failure, with the timer cleared as soon as it settles
 * (an uncleared timer keeps the process, and Deno's op sanitizer, waiting for it).
 *
 * @module
 */

import { sleep } from "./sleep.ts";

/**
 * What `promise` rejected with, if it rejects within `ms`; `undefined` when it fulfils or is still
 * pending after `ms`. The timer is cleared as soon as `promise` settles.
 */
export async function failureWithin(promise: Promise<unknown>, ms: number): Promise<unknown> {
  const settled = new AbortController();
  try {
    return await Promise.race([
      promise.then(() => undefined, (err) => err ?? new Error(String(err))),
      sleep(ms, settled.signal).then(() => undefined),
    ]);
  } finally {
    settled.abort();
  }
}
