/**
 * `z3 cleanup [--max-age AGE] [--dry-run]`: aborts the multipart uploads under `S3_PREFIX`
 * started more than AGE ago. z3 aborts its own upload on any failure or signal, but a run that
 * is killed outright, loses power, or loses the endpoint before it can abort leaves one behind,
 * and the bucket bills for its parts until someone aborts it. (A rerun of the same backup
 * resumes such an upload instead; cleanup is for the ones nobody will rerun.) With each upload
 * of a snapshot's object it aborts, it deletes that upload's pending record, every version of it
 * (`repository/pending_upload.ts`).
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { S3Error } from "../base/errors.ts";
import { formatAge, parseDuration } from "../cli/durations.ts";
import { printable } from "../chain/names.ts";
import { withRetry } from "../backend/retry.ts";
import { removePendingRecordOf } from "../repository/pending_upload.ts";
import type { PendingUpload, S3Store } from "../backend/s3.ts";
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";

/** The default of `--max-age`: one day, far longer than any backup still running. */
export const DEFAULT_MAX_AGE = "1d";

/** Options of `z3 cleanup`. */
export interface CleanupOptions {
  /** Only uploads started at least this long ago (ms). @default {one day} */
  maxAgeMs?: number;
  /** Only list what would be aborted. @default {false} */
  dryRun?: boolean;
  /** The current time. @default {new Date()} */
  now?: Date;
  signal?: AbortSignal;
  /** One line per upload (stdout): key, upload id, age, tab-separated. */
  out: (line: string) => void;
  /** Diagnostics and the summary (stderr). */
  err: (line: string) => void;
}

/** One upload cleanup found old enough. */
export interface CleanupRecord extends PendingUpload {
  /** Milliseconds since it was started; undefined when the server did not say. */
  ageMs?: number;
  /** False on a dry run. */
  aborted: boolean;
}

/**
 * Lists the pending multipart uploads under `S3_PREFIX` and aborts those older than
 * `maxAgeMs`, printing each as it goes. Aborts every one it can, then throws one error naming
 * every upload it could not abort.
 */
export async function cleanup(
  config: Config,
  store: S3Store,
  options: CleanupOptions,
): Promise<CleanupRecord[]> {
  const maxAgeMs = options.maxAgeMs ?? parseDuration(DEFAULT_MAX_AGE);
  const now = (options.now ?? new Date()).getTime();
  const prefix = config.s3Prefix;
  const old: CleanupRecord[] = [];
  let younger = 0;
  const retry = { attempts: config.maxRetries + 1, signal: options.signal };
  const uploads = await withRetry(() => Array.fromAsync(store.listMultipartUploads(prefix)), retry);
  for (const u of uploads) {
    const ageMs = u.initiated ? now - u.initiated.getTime() : undefined;
    // Without a start time an upload's age is unknown: only "0" (everything) takes it.
    if (maxAgeMs > 0 && (ageMs === undefined || ageMs < maxAgeMs)) {
      younger++;
      continue;
    }
    old.push({ ...u, ageMs, aborted: false });
  }
  const line = (r: CleanupRecord) =>
    `${printable(r.key)}\t${printable(r.uploadId)}\t${
      r.ageMs === undefined ? "unknown" : formatAge(r.ageMs)
    }`;
  const scope = `under "${prefix}" in bucket "${store.bucket}"`;
  const limit = maxAgeMs > 0 ? ` started more than ${formatAge(maxAgeMs)} ago` : "";
  if (options.dryRun) {
    old.forEach((r) => options.out(line(r)));
    options.err(
      `dry run: ${old.length} pending multipart upload(s) ${scope}${limit} would be aborted` +
        (younger ? `; ${younger} younger one(s) left alone` : ""),
    );
    return old;
  }
  const failures: string[] = [];
  for (const r of old) {
    options.signal?.throwIfAborted();
    try {
      await withRetry(() => store.abortMultipart(r.key, r.uploadId), retry);
      await removePendingRecordOf(store, prefix, r.key, options.signal).catch(() => {});
      r.aborted = true;
      options.out(line(r));
    } catch (err) {
      failures.push(
        `"${printable(r.key)}" (upload id ${printable(r.uploadId)}): ${
          (err as Error)?.message ?? err
        }`,
      );
    }
  }
  options.err(
    `aborted ${old.length - failures.length} pending multipart upload(s) ${scope}${limit}` +
      (younger ? `; ${younger} younger one(s) left alone` : ""),
  );
  if (failures.length > 0) {
    throw new S3Error(
      `Cannot abort ${failures.length} multipart upload(s): ${failures.join("; ")}`,
    );
  }
  return old;
}

/**
 * `z3 cleanup` for `main.ts`: one line per upload as it goes (see {@linkcode cleanup}), or with
 * `--json` the uploads as one document at the end.
 */
export const cleanupCli: CliCommand = { many: false, start: startCleanup };

function startCleanup(context: CliContext): CliRun {
  const { values } = context;
  return {
    async runDataset(config, store) {
      const maxAgeMs = parseDuration((values["max-age"] as string | undefined) ?? DEFAULT_MAX_AGE);
      const uploads = await cleanup(config, store, {
        maxAgeMs,
        dryRun: values["dry-run"] === true,
        signal: context.signal,
        out: values.json ? () => {} : context.out,
        err: context.err,
      });
      if (values.json) context.out(JSON.stringify(uploads, null, 2));
      return 0;
    },
  };
}
