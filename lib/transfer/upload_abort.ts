/**
 * Aborting a multipart upload that failed or was interrupted. After a failure the abort is
 * retried like any request. After SIGINT/SIGTERM it gets one attempt of at most
 * {@linkcode ABORT_DEADLINE_MS}, so that z3 exits promptly whatever the endpoint does. When the
 * abort does not go through, the error says what is left pending and what removes it.
 *
 * @module
 */

import { withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";

/** How long the one abort attempt after a signal may take. */
export const ABORT_DEADLINE_MS = 1000;

/** Options for {@linkcode abortOrExplain}. */
export interface AbortOptions {
  /** Attempts when not interrupted. */
  attempts: number;
  /** The run's signal: once aborted, one attempt with a deadline. */
  signal?: AbortSignal;
  /** What removes a pending upload, for the message. */
  leftPendingHint: string;
}

/**
 * Aborts `uploadId`; true when it is gone. Otherwise appends to `err`'s message that the upload
 * is left pending, why, and `leftPendingHint`, and returns false.
 */
export async function abortOrExplain(
  store: S3Store,
  key: string,
  uploadId: string,
  err: unknown,
  options: AbortOptions,
): Promise<boolean> {
  const interrupted = options.signal?.aborted === true;
  try {
    if (interrupted) {
      await store.abortMultipart(key, uploadId, AbortSignal.timeout(ABORT_DEADLINE_MS));
    } else {
      await withRetry(() => store.abortMultipart(key, uploadId), { attempts: options.attempts });
    }
    return true;
  } catch (abortErr) {
    if (err instanceof Error) {
      const said = String((abortErr as Error)?.message ?? abortErr)
        .replace(`Cannot abort multipart upload of "${key}": `, "");
      const why = interrupted && /^aborted$|timed? ?out/i.test(said)
        ? `no answer within its ${ABORT_DEADLINE_MS / 1000} s deadline after the signal`
        : said;
      err.message += `; its multipart upload ${uploadId} is left pending (abort failed: ${why})` +
        `: ${options.leftPendingHint}`;
    }
    return false;
  }
}
