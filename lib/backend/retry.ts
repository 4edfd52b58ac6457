/**
 * The retry policy: exponential backoff with full jitter, retrying only what is retryable, with
 * the constants of the AWS SDK's standard retry mode (`@smithy/util-retry`): a ceiling of
 * 100 ms × 2^retry, or 500 ms × 2^retry for a throttling answer (503, 429, SlowDown, Throttling,
 * …), capped at 20 s; each wait is a random fraction of its ceiling. With the default 4 retries a
 * throttled request waits up to 1 + 2 + 4 + 8 s before it fails. A wrapper, kept out of the S3
 * code, so each call path has exactly one policy.
 *
 * @module
 */

import { sleep } from "../base/sleep.ts";

/** Backoff ceiling of the first retry, ms (`DEFAULT_RETRY_DELAY_BASE` × 2). */
export const BASE_DELAY_MS = 100;
/** The same for throttling answers (`THROTTLING_RETRY_DELAY_BASE`). */
export const THROTTLING_BASE_DELAY_MS = 500;
/** Largest backoff ceiling (`MAXIMUM_RETRY_DELAY`). */
export const MAX_DELAY_MS = 20_000;

/**
 * S3 error codes that mean "slow down" (the SDK's `THROTTLING_ERROR_CODES`, which S3 and
 * S3-compatible servers use).
 */
const THROTTLING_CODES = new Set([
  "BandwidthLimitExceeded",
  "EC2ThrottledException",
  "LimitExceededException",
  "PriorRequestNotComplete",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "ThrottledException",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "TransactionInProgressException",
]);

/** Options for {@linkcode withRetry}. */
export interface RetryOptions {
  /** Total attempts, first included. @default {5} */
  attempts?: number;
  /** Stops waiting and retrying when aborted. */
  signal?: AbortSignal;
  /** Whether an error is worth another attempt. @default {errors with `retryable: true`} */
  isRetryable?: (err: unknown) => boolean;
  /** Called before each retry (for --debug logs). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const defaultRetryable = (err: unknown) => (err as { retryable?: boolean })?.retryable === true;

/** Whether `err` is the server asking to slow down: HTTP 503 or 429, or a throttling code. */
export function isThrottling(err: unknown): boolean {
  const e = err as { status?: number; code?: string } | undefined;
  return e?.status === 503 || e?.status === 429 || THROTTLING_CODES.has(e?.code ?? "");
}

/**
 * How long to wait before retry number `retry` (1 for the first) after `err`: a `random()`
 * fraction of `base × 2^retry`, capped at {@linkcode MAX_DELAY_MS}.
 */
export function retryDelay(retry: number, err: unknown, random: () => number = Math.random) {
  const base = isThrottling(err) ? THROTTLING_BASE_DELAY_MS : BASE_DELAY_MS;
  return random() * Math.min(MAX_DELAY_MS, base * 2 ** retry);
}

/** Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const retryable = options.isRetryable ?? defaultRetryable;
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !retryable(err) || options.signal?.aborted) throw err;
      const delay = retryDelay(attempt, err);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw err;
    }
  }
}
