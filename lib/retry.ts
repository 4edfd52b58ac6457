/**
 * The retry policy: exponential backoff with full jitter, retrying only what is retryable.
 * A wrapper, kept out of the S3 code, so each call path has exactly one policy.
 *
 * @module
 */

/** Options for {@linkcode withRetry}. */
export interface RetryOptions {
  /** Total attempts, first included. @default {5} */
  attempts?: number;
  /** First backoff ceiling in ms; doubles per attempt. @default {200} */
  baseDelayMs?: number;
  /** Largest backoff ceiling in ms. @default {10000} */
  maxDelayMs?: number;
  /** Stops waiting and retrying when aborted. */
  signal?: AbortSignal;
  /** Whether an error is worth another attempt. @default {errors with `retryable: true`} */
  isRetryable?: (err: unknown) => boolean;
  /** Called before each retry (for --debug logs). */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

const defaultRetryable = (err: unknown) => (err as { retryable?: boolean })?.retryable === true;

/** Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = Math.max(1, options.attempts ?? 5);
  const base = options.baseDelayMs ?? 200;
  const max = options.maxDelayMs ?? 10_000;
  const retryable = options.isRetryable ?? defaultRetryable;
  for (let attempt = 1;; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !retryable(err) || options.signal?.aborted) throw err;
      const delay = Math.random() * Math.min(max, base * 2 ** (attempt - 1));
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
