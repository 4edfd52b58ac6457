/**
 * pput: reads a stream (stdin, or a file descriptor) and stores it as one S3 object by multipart
 * upload, or fails leaving no object and its multipart upload aborted (when even the abort fails,
 * the error names the upload left pending). See `pput --help`.
 *
 * @module
 */

import {
  addSecrets,
  parseFlags,
  printErr,
  printOut,
  runCommand,
  setQuiet,
  STOP_DEADLINE_MS,
} from "./lib/cli/run.ts";
import { loadConfig } from "./lib/config/load.ts";
import { connect } from "./lib/cli/connect.ts";
import { describeError, EXIT, UsageError, Z3Error } from "./lib/base/errors.ts";
import { lockObject, type LockRequestOptions, runLock } from "./lib/repository/object_lock_run.ts";
import { planSchedule, sizeSteps, usableEstimate } from "./lib/transfer/part_size.ts";
import { humanBytes } from "./lib/cli/human.ts";
import { Progress } from "./lib/cli/progress.ts";
import { sizeValue } from "./lib/config/size.ts";
import { ABORT_DEADLINE_MS } from "./lib/transfer/upload_abort.ts";
import { OVERHEAD_MIB, uploadStream } from "./lib/transfer/upload.ts";
import type { Retention, S3Store } from "./lib/backend/s3.ts";
import { VERSION } from "./lib/base/version.ts";

/** Buffer memory along the default schedule: `48 MiB up to 7.1 GiB, 96 MiB up to 21.3 GiB, …`. */
const memorySteps = sizeSteps(planSchedule(), 10_000).slice(0, 3)
  .map((s) => `${humanBytes(6 * s.size)} up to ${humanBytes(s.upTo)}`).join(", ");

const abortS = ABORT_DEADLINE_MS / 1000;
const stopS = STOP_DEADLINE_MS / 1000;

const HELP = `Usage: pput [options] KEY
Reads standard input (or --file-descriptor N) and stores it as the S3 object KEY in $BUCKET.

Options:
  --chunk-size SIZE        first part size, 5M to 5G [default: CHUNK_SIZE, 8M]. With no
                           --estimated the part size doubles every max-parts/11 parts, so any
                           stream up to S3's 5 TiB limit fits; the schedule is recorded in the
                           object's metadata
  --estimated SIZE         expected stream size: the first parts are sized to hold it plus 10 %
                           (never below --chunk-size), and past that the part size doubles every
                           max-parts/50 parts, so a low estimate never fails an upload (up to
                           5 TiB with 10,000 parts). An estimate above 5 TiB counts as none
  --concurrency N          parts uploaded at once [default: CONCURRENCY, 4]
  --max-retries N          retries per request after the first try [default: MAX_RETRIES, 4]
  --max-parts N            most parts allowed [default: 10000]
  --max-rate SIZE          bytes per second for the whole upload, all parts in flight together
                           (e.g. 50M) [default: MAX_RATE, none]
  --metadata K=V           user metadata; repeatable (--meta is accepted too)
  --storage-class CLASS    storage class of the object
  --file-descriptor N      read from this file descriptor instead of standard input
  --progress               print progress on stderr (default when stderr is a terminal)
  --quiet                  print nothing on success (warnings included; errors still go to stderr)
  --config PATH            config file [default: $Z3_CONFIG or /etc/z3_backup/z3.conf]
  --host URL, --region R   S3 endpoint and region (BUCKET, S3_KEY_ID, S3_SECRET: environment or
                           config file only, never argv)
  --ca-file PATH           PEM file of CA certificates trusted for HTTPS besides the built-in
                           roots [default: S3_CA_FILE]
  --debug                  more detail on errors (secrets stay redacted)
  -h, --help               this help; --version prints the version

Object Lock: OBJECT_LOCK_DAYS and OBJECT_LOCK_MODE (environment or config file, as for z3
backup) lock the object for that many days [default: 0, no lock; mode GOVERNANCE]. A bucket
without Object Lock is refused before stdin is read (exit 2).

Memory: at most (concurrency + 2) x the largest part so far, on top of about ${OVERHEAD_MIB} MiB of
runtime, SDK and working heap. Parts grow with the stream, and so does memory. With the
defaults (4, 8M, no --estimated):
  ${memorySteps}, …,
  6 x 5 GiB near 5 TiB.
With --estimated: 6 x the part size it picks while the stream stays within the estimate plus
10 %, then growing the same way.
A slow server makes pput read more slowly, never use more memory.

Integrity: every part carries its Content-MD5; the object's ETag, read back after completion,
must equal the one computed from the parts or the object is deleted. With OBJECT_LOCK_DAYS the
object's lock is read back too, and set where the server ignored the request's (Ceph does on
multipart uploads); an object that cannot be locked is deleted, or named when it cannot be. Any error, a read error or
SIGINT/SIGTERM aborts the multipart upload: no object is left behind. After a signal, requests in
flight are cancelled and the abort gets one attempt of at most ${abortS} s, and whatever still runs
${stopS} s after the signal does not hold pput up: it exits within 15 s whatever the endpoint does.
An upload it could not abort is named ("left pending"): z3 cleanup aborts it.
pput cannot see whether the command feeding its stdin failed: \`zfs send ... | pput KEY\` stores
whatever arrived if zfs dies after a clean end of stream. Use \`z3 backup\`, which runs zfs itself
and checks its exit status before completing the upload.

On success prints one JSON line: {"status":"success","etag":"…","bytes":N,"parts":N}

Exit status: 0 success, 2 usage, 4 S3 error, 6 integrity (ETag mismatch), 130 SIGINT, 143 SIGTERM,
1 unexpected error.
`;

await runCommand("pput", async ({ signal }) => {
  const { values, positionals } = parseFlags(Deno.args, {
    "chunk-size": { type: "string" },
    estimated: { type: "string" },
    concurrency: { type: "string" },
    "max-retries": { type: "string" },
    "max-parts": { type: "string" },
    "max-rate": { type: "string" },
    metadata: { type: "string", multiple: true },
    meta: { type: "string", multiple: true },
    "storage-class": { type: "string" },
    "file-descriptor": { type: "string" },
    progress: { type: "boolean" },
    quiet: { type: "boolean" },
    config: { type: "string" },
    host: { type: "string" },
    region: { type: "string" },
    "ca-file": { type: "string" },
    debug: { type: "boolean" },
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
  });
  if (values.help || values.version) {
    printOut(values.help ? HELP.trimEnd() : `pput ${VERSION}`);
    return 0;
  }
  setQuiet(values.quiet === true);
  if (positionals.length !== 1) {
    throw new UsageError("Cannot upload: expected exactly one KEY (see --help)");
  }
  const key = positionals[0];
  const str = (name: string) => values[name] as string | undefined;
  const config = await loadConfig({
    configPath: str("config"),
    flags: {
      "chunk-size": str("chunk-size"),
      concurrency: str("concurrency"),
      "max-retries": str("max-retries"),
      "max-rate": str("max-rate"),
      "storage-class": str("storage-class"),
      host: str("host"),
      region: str("region"),
      "ca-file": str("ca-file"),
    },
    warn: printErr,
  });
  addSecrets(config.secrets);
  const metadata: Record<string, string> = {};
  for (const kv of [...(values.metadata as string[] ?? []), ...(values.meta as string[] ?? [])]) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot use metadata "${kv}": expected KEY=VALUE`);
    metadata[kv.slice(0, eq).toLowerCase()] = kv.slice(eq + 1);
  }
  const maxPartsText = str("max-parts");
  const maxParts = maxPartsText === undefined ? undefined : Number(maxPartsText);
  if (
    maxParts !== undefined && !(Number.isInteger(maxParts) && maxParts >= 1 && maxParts <= 10_000)
  ) {
    throw new UsageError(`Cannot parse --max-parts "${maxPartsText}": expected 1 to 10000`);
  }
  const estimatedText = str("estimated");
  let estimated: number | undefined;
  try {
    // An absurd estimate (not a whole number, above 5 TiB) counts as none, not as bad input.
    estimated = estimatedText === undefined ? undefined : usableEstimate(sizeValue(estimatedText));
  } catch (err) {
    throw new UsageError(`Cannot parse --estimated "${estimatedText}": ${(err as Error).message}`);
  }
  const schedule = planSchedule({ partSize: config.chunkSize, estimated, maxParts });
  let source: ReadableStream<Uint8Array> = Deno.stdin.readable;
  const fd = str("file-descriptor");
  if (fd !== undefined) {
    if (!/^\d+$/.test(fd)) {
      throw new UsageError(`Cannot parse --file-descriptor "${fd}": expected a number`);
    }
    try {
      source = (await Deno.open(`/dev/fd/${fd}`)).readable;
    } catch (err) {
      throw new UsageError(
        `Cannot read file descriptor ${fd}: ${(err as Error).message.split("\n")[0]}`,
      );
    }
  }
  const store = connect(config);
  const locking = { attempts: config.maxRetries + 1, signal };
  const showProgress = !values.quiet && (values.progress === true || Deno.stderr.isTerminal());
  const progress = showProgress ? new Progress(key) : undefined;
  try {
    // Before a byte of stdin is read: a bucket without Object Lock is refused here.
    const lock = await runLock(config, store, locking);
    if (lock?.note) printErr(lock.note);
    const result = await uploadStream(store, key, source, {
      schedule,
      maxParts,
      concurrency: config.concurrency,
      attempts: config.maxRetries + 1,
      metadata,
      storageClass: config.storageClass,
      lock: lock?.retention,
      signal,
      inputLabel: fd === undefined ? "standard input" : `file descriptor ${fd}`,
      onProgress: progress ? (n) => progress.update(n) : undefined,
    });
    if (lock) await lockOrDelete(store, key, lock.retention, locking);
    progress?.finish(result.bytes);
    if (!values.quiet) {
      printOut(
        JSON.stringify({
          status: "success",
          etag: result.etag,
          bytes: result.bytes,
          parts: result.parts,
        }),
      );
    }
    return 0;
  } finally {
    store.close();
  }
});

/**
 * Locks the uploaded `key` as `retention` asks (see `lockObject`); when that fails, deletes the
 * version just written, so that no unlocked object stays behind looking like a success.
 */
async function lockOrDelete(
  store: S3Store,
  key: string,
  retention: Retention,
  options: LockRequestOptions,
): Promise<void> {
  try {
    await lockObject(store, key, retention, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    let fate: string;
    try {
      const info = await store.head(key, options.signal);
      if (!info?.versionId) throw new Error("the bucket names no version of it");
      await store.deleteVersion(key, info.versionId, options.signal);
      fate = "the object was deleted";
    } catch (e) {
      fate = `the object is left in the bucket (deleting it failed: ${describeError(e)})`;
    }
    const code = err instanceof Z3Error ? err.exitCode : EXIT.s3;
    throw new Z3Error(`${describeError(err)}; ${fate}`, code, { cause: err });
  }
}
