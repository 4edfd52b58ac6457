/**
 * pput: reads a stream (stdin, or a file descriptor) and stores it as one S3 object by multipart
 * upload, or fails leaving no object and its multipart upload aborted (when even the abort fails,
 * the error names the upload left pending). See `pput --help`.
 *
 * @module
 */

import {
  addSecrets,
  type FlagSpec,
  parseFlags,
  printErr,
  printOut,
  runCommand,
  setQuiet,
  STOP_DEADLINE_MS,
} from "./lib/cli/run.ts";
import type { FlagValues } from "./lib/cli/command.ts";
import type { Config } from "./lib/config/config.ts";
import { loadConfig } from "./lib/config/load.ts";
import { connect } from "./lib/cli/connect.ts";
import { UsageError } from "./lib/base/errors.ts";
import { lockOrDelete, runLock } from "./lib/repository/object_lock_run.ts";
import { retentionAt } from "./lib/chain/object_lock_policy.ts";
import { type PartSchedule, planSchedule, sizeSteps } from "./lib/transfer/part_size.ts";
import { humanBytes } from "./lib/cli/human.ts";
import { Progress } from "./lib/cli/progress.ts";
import {
  openInput,
  parseEstimated,
  parseMaxParts,
  parseMetadata,
  type UploadInput,
} from "./lib/cli/upload_flags.ts";
import { ABORT_DEADLINE_MS } from "./lib/transfer/upload_abort.ts";
import { OVERHEAD_MIB, type UploadResult, uploadStream } from "./lib/transfer/upload.ts";
import type { S3Store } from "./lib/backend/s3.ts";
import { VERSION } from "./lib/base/version.ts";
import { MAX_KEY_BYTES } from "./lib/chain/keys.ts";

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
multipart uploads); an object that cannot be locked is deleted (the version pput wrote, never
another writer's), or named when it cannot be. Any error, a read error or
SIGINT/SIGTERM aborts the multipart upload: no object is left behind. After a signal, requests in
flight are cancelled and the abort gets one attempt of at most ${abortS} s, and whatever still runs
${stopS} s after the signal does not hold pput up: it exits within 15 s whatever the endpoint does.
An upload it could not abort is named ("left pending"): z3 cleanup aborts it.
pput cannot see whether the command feeding its stdin failed: \`zfs send ... | pput KEY\` stores
whatever arrived if zfs dies after a clean end of stream. Use \`z3 backup\`, which runs zfs itself
and checks its exit status before completing the upload.

On success prints one JSON line: {"status":"success","etag":"…","bytes":N,"parts":N}

Exit status: 0 success, 2 usage (before stdin is read: bad flags or settings, a control character
in --metadata or the storage class, a --file-descriptor that cannot be opened), 4 S3 error,
6 integrity (ETag mismatch), 10 an I/O error while reading the input, 130 SIGINT, 143 SIGTERM,
1 unexpected error.
`;

const FLAGS: FlagSpec = {
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
};

await runCommand("pput", async ({ signal }) => {
  const { values, positionals } = parseFlags(Deno.args, FLAGS);
  if (values.help || values.version) {
    printOut(values.help ? HELP.trimEnd() : `pput ${VERSION}`);
    return 0;
  }
  setQuiet(values.quiet === true);
  if (positionals.length !== 1) {
    throw new UsageError("Cannot upload: expected exactly one KEY (see --help)");
  }
  const keyBytes = new TextEncoder().encode(positionals[0]).length;
  if (keyBytes > MAX_KEY_BYTES) {
    throw new UsageError(
      `Cannot upload "${positionals[0].slice(0, 60)}…": the key is ${keyBytes} bytes, over ` +
        `S3's limit of ${MAX_KEY_BYTES} bytes for a key`,
    );
  }
  const request = await readRequest(positionals[0], values);
  const input = await openInput(values["file-descriptor"] as string | undefined);
  const store = connect(request.config);
  const showProgress = !values.quiet && (values.progress === true || Deno.stderr.isTerminal());
  const progress = showProgress ? new Progress(request.key) : undefined;
  try {
    const result = await uploadLocked(store, request, input, { signal, progress });
    progress?.finish(result.bytes);
    if (!values.quiet) printOut(successLine(result));
    return 0;
  } finally {
    store.close();
  }
});

/** What to upload where, from the command line and the config. */
interface UploadRequest {
  key: string;
  config: Config;
  metadata: Record<string, string>;
  maxParts?: number;
  schedule: PartSchedule;
}

/** Loads the config (pput's flags over it) and reads the upload's own flags. */
async function readRequest(key: string, values: FlagValues): Promise<UploadRequest> {
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
  const metadata = parseMetadata([
    ...(values.metadata as string[] ?? []),
    ...(values.meta as string[] ?? []),
  ]);
  const maxParts = parseMaxParts(str("max-parts"));
  const estimated = parseEstimated(str("estimated"));
  const schedule = planSchedule({ partSize: config.chunkSize, estimated, maxParts });
  return { key, config, metadata, maxParts, schedule };
}

/**
 * Uploads `input` as the request's object under the Object Lock that OBJECT_LOCK_DAYS asks for:
 * a bucket without Object Lock is refused before a byte of `input` is read, and an object that
 * cannot be locked is deleted (see `lockOrDelete`).
 */
async function uploadLocked(
  store: S3Store,
  request: UploadRequest,
  input: UploadInput,
  options: { signal: AbortSignal; progress?: Progress },
): Promise<UploadResult> {
  const { key, config } = request;
  const { signal, progress } = options;
  const locking = { attempts: config.maxRetries + 1, signal };
  const lock = await runLock(config, store, locking);
  if (lock?.note) printErr(lock.note);
  const result = await uploadStream(store, key, input.source, {
    schedule: request.schedule,
    maxParts: request.maxParts,
    concurrency: config.concurrency,
    attempts: config.maxRetries + 1,
    metadata: request.metadata,
    storageClass: config.storageClass,
    lock: lock && retentionAt(lock, new Date()),
    signal,
    inputLabel: input.label,
    onProgress: progress ? (n) => progress.update(n) : undefined,
  });
  // Counted from now, when the object exists: the upload may have read stdin for hours.
  if (lock) {
    const own = { ...locking, versionId: result.versionId };
    await lockOrDelete(store, key, retentionAt(lock, new Date()), own);
  }
  return result;
}

/** The one JSON line pput prints on success. */
function successLine(result: UploadResult): string {
  return JSON.stringify({
    status: "success",
    etag: result.etag,
    bytes: result.bytes,
    parts: result.parts,
  });
}
