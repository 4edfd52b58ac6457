/**
 * `z3 backup`: uploads every local snapshot after the newest one already in the bucket, each as
 * its own object (`zfs send -i PREV CUR`), oldest first; when the bucket holds none of them, the
 * oldest goes first as a full, so the bucket gets every restore point (see `planBackup`).
 * `zfs send` runs as a child of z3, and its exit status (and the compressor's) is checked before
 * an upload is completed: a send that fails midway never becomes an object.
 *
 * @module
 */

import { type BackupStep, planBackup } from "../chain/backup_plan.ts";
import { keyFor } from "../chain/keys.ts";
import { META_KEYS } from "../chain/metadata.ts";
import { Chains, quote } from "../chain/walk.ts";
import type { Config } from "../config/config.ts";
import { compress, compressCommand } from "../pipeline/compress.ts";
import { AGE_META, encryptStream } from "../pipeline/age.ts";
import { formatArgv } from "../exec/process.ts";
import { planSchedule, scheduleToMetadata, usableEstimate } from "../transfer/part_size.ts";
import {
  type PendingRecord,
  pendingRecordKey,
  readPendingRecord,
  samePendingRecord,
  writePendingRecord,
} from "../repository/pending_record.ts";
import { counted, Progress } from "../cli/progress.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import type { S3Store } from "../backend/s3.ts";
import { type Resume, ResumeMismatchError, uploadStream } from "../transfer/upload.ts";
import {
  checkKey,
  type CheckRecord,
  MissingRecordError,
  writeCheck,
} from "../repository/check_records.ts";
import { inspectObject } from "../repository/verified_object.ts";
import { describeError, S3Error, UsageError } from "../base/errors.ts";
import { rerecord } from "../repository/rerecord.ts";
import { VERSION } from "../base/version.ts";
import * as zfs from "../zfs/zfs.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import { parseSnapshot, validateSnapshotName } from "../chain/names.ts";
import { acquireBackupLock } from "../zfs/host_lock.ts";
import { type RunOutcome, writeMetricsFile } from "../cli/metrics.ts";
import { withRetry } from "../backend/retry.ts";
import {
  checkIncrementalFlags,
  formatSendFlags,
  readSendFlags,
  SEND_FLAGS_META,
  sendOptions,
} from "../config/send_flags.ts";
import { holdArgvLines, moveHold } from "../zfs/holds.ts";
import {
  bookmarkArgvLines,
  bookmarkPrefix,
  moveBookmark,
  withBookmarkedBases,
} from "../zfs/bookmarks.ts";
import { propertiesKey, storeProperties } from "../pipeline/properties.ts";
import {
  ancestorsToExtend,
  extendAncestors,
  lockObject,
  lockPlanLine,
  runLock,
} from "../repository/object_lock_run.ts";
import type { Retention } from "../backend/s3.ts";
import type { RemoteSnapshot } from "../chain/types.ts";

/** Options of `z3 backup`. */
export interface BackupOptions {
  /** Force a full backup of the target. @default {false} */
  full?: boolean;
  /** Short snapshot name to back up up to. @default {the latest matching one} */
  snapshot?: string;
  /** Print the plan and commands; touch nothing. */
  dryRun?: boolean;
  /** Show a progress line on stderr. */
  progress?: boolean;
  signal?: AbortSignal;
  /** Runs after a successful (or up-to-date) backup, still under the lock: `--prune`. */
  afterSuccess?: () => Promise<void>;
  /** With `dryRun`: receives the plan as data (`--json`), besides its lines on `out`. */
  onPlan?: (plan: BackupDryRun) => void;
  /** Where result lines go (stdout). */
  out: (line: string) => void;
  /** Where diagnostics go (stderr). */
  err: (line: string) => void;
}

/** One upload a dry run would make. */
export interface PlannedUpload {
  snapshot: string;
  type: "full" | "incremental";
  /** The snapshot it builds on (`DATASET@SNAP`); absent for a full. */
  parent?: string;
  key: string;
  /** The `zfs send` argv (from a bookmark, `DATASET#BM`, where the base is one). */
  send: string[];
  /** The compressor's name, as stored in the metadata. */
  compressor: string;
  /** Whether the object is encrypted to AGE_RECIPIENTS. */
  encrypted: boolean;
}

/** A dry run's plan as data: what `backup --dry-run --json` adds to the plan's lines. */
export interface BackupDryRun {
  steps: PlannedUpload[];
  /** The Object Lock every new object would get, and the ancestors whose lock would grow. */
  lock?: { mode: string; until: string; ancestorsToExtend: number };
  /** The `zfs hold`/`release` and `zfs bookmark`/`destroy` argvs that would run. */
  commands: string[][];
}

/** One uploaded snapshot. */
export interface BackupRecord {
  snapshot: string;
  parent?: string;
  type: "full" | "incremental";
  key: string;
  bytes: number;
  parts: number;
  /** Parts an interrupted earlier run had uploaded already (checked, not sent again). */
  resumedParts: number;
  etag: string;
  /** Wall time of the send and upload, check record included. */
  seconds: number;
}

/** Runs a backup; returns what was uploaded (empty when up to date). */
export async function backup(
  config: Config,
  store: S3Store,
  options: BackupOptions,
): Promise<BackupRecord[]> {
  const dataset = requireDataset(config);
  if (options.snapshot !== undefined) {
    // Refuse a bad name before listing anything: `snap` or `dataset@snap`.
    const named = options.snapshot.includes("@") ? parseSnapshot(options.snapshot) : undefined;
    if (named && named.dataset !== dataset) {
      throw new UsageError(
        `Cannot back up ${quote(options.snapshot)}: it is not a snapshot of ${quote(dataset)}, ` +
          `the dataset this run backs up`,
      );
    }
    const short = named ? named.snapshot : validateSnapshotName(options.snapshot);
    if (!short.startsWith(config.snapshotPrefix)) {
      throw new UsageError(
        `Cannot back up ${quote(options.snapshot)}: SNAPSHOT_PREFIX is ` +
          `${quote(config.snapshotPrefix)} (from ${config.sources.SNAPSHOT_PREFIX}) and the name ` +
          `does not start with it; set SNAPSHOT_PREFIX= (empty) to take any snapshot`,
      );
    }
  }
  // One backup per dataset at a time (see lock.ts); a dry run changes nothing and needs none.
  const lock = options.dryRun ? undefined : acquireBackupLock(dataset);
  const started = Date.now();
  try {
    const { records, newestCreated } = await planAndUpload(config, store, dataset, options);
    if (!options.dryRun) await options.afterSuccess?.();
    if (!options.dryRun) {
      const bytes = records.reduce((sum, r) => sum + r.bytes, 0);
      const end = new Date();
      const run = { ok: true, end, durationMs: end.getTime() - started, bytes, newestCreated };
      await recordMetrics(config, dataset, run, options);
    }
    return records;
  } catch (err) {
    if (lock) {
      await recordMetrics(
        config,
        dataset,
        { ok: false, durationMs: Date.now() - started },
        options,
      );
    }
    throw err;
  } finally {
    lock?.release();
  }
}

/** Updates `METRICS_FILE`, if set; a failure to write it is one line on stderr, not the run's. */
async function recordMetrics(
  config: Config,
  dataset: string,
  run: RunOutcome,
  options: BackupOptions,
): Promise<void> {
  if (config.metricsFile === undefined) return;
  try {
    await writeMetricsFile(config.metricsFile, dataset, run);
  } catch (err) {
    options.err(
      `warning: Cannot write METRICS_FILE ${quote(config.metricsFile)}: ${describeError(err)}`,
    );
  }
}

async function planAndUpload(
  config: Config,
  store: S3Store,
  dataset: string,
  options: BackupOptions,
): Promise<{ records: BackupRecord[]; newestCreated: number }> {
  // Object Lock (OBJECT_LOCK_DAYS): a bucket without it is refused before anything else runs.
  const attempts = config.maxRetries + 1;
  const lock = await runLock(config, store, { attempts, signal: options.signal });
  if (lock?.note) options.err(lock.note);
  const listed = await zfs.listSnapshots(dataset);
  const remote = await loadRemote(store, config.s3Prefix, dataset, {
    signal: options.signal,
    attempts: config.maxRetries + 1,
  });
  // A base destroyed locally but bookmarked by z3 is still a base: sent from its bookmark.
  const bookmarks = await zfs.listBookmarks(dataset);
  const mark = bookmarkPrefix(store.bucket, config.s3Prefix);
  const merged = withBookmarkedBases(dataset, listed, remote, bookmarks ?? [], mark);
  const local = merged.local.filter((s) => s.snapshot.startsWith(config.snapshotPrefix));
  const sendFrom = (step: BackupStep) =>
    step.from && (merged.sendFrom.get(step.from.name) ?? step.from.name);
  const chains = new Chains(remote);
  const plan = planBackup(local, chains, {
    full: options.full,
    target: options.snapshot,
    fullEvery: config.fullEvery,
  });
  if (plan.steps.length === 0) {
    options.err(`${plan.target.name} is already in the bucket: up to date`);
    return { records: [], newestCreated: plan.target.creation };
  }
  // Encrypted datasets go raw (-w); an incremental keeps its chain's -w and -L (send_flags.ts).
  const flags = sendOptions(config.sendFlags, (await zfs.getEncryption(dataset)) !== "off");
  const base = plan.base ? remote.get(plan.base.name) : undefined;
  if (base && plan.steps[0].from !== undefined) {
    checkIncrementalFlags(base.name, readSendFlags(base.name, base.metadata), flags);
  }
  const newest = plan.steps[plan.steps.length - 1].snapshot.name;
  const extend = lock && base && plan.steps[0].from !== undefined
    ? ancestorsToExtend(chains, base.name, lock.retention, new Date())
    : [];
  if (options.dryRun) {
    for (const step of plan.steps) {
      options.out(describe(config, store, step, sendFrom(step), flags));
    }
    if (lock) options.out(lockPlanLine(lock.retention, extend.length));
    const commands = [
      ...holdArgvLines(config, store.bucket, plan.base?.name, newest),
      ...bookmarkArgvLines(bookmarks, store.bucket, config.s3Prefix, newest),
    ];
    for (const argv of commands) options.out(formatArgv(argv));
    options.onPlan?.({
      steps: plan.steps.map((step) => ({
        snapshot: step.snapshot.name,
        type: step.from ? "incremental" : "full",
        ...(step.from ? { parent: step.from.name } : {}),
        key: keyFor(config.s3Prefix, step.snapshot.name),
        send: zfs.sendArgv(step.snapshot.name, sendFrom(step), flags),
        compressor: config.compressor,
        encrypted: (config.ageRecipients?.length ?? 0) > 0,
      })),
      ...(lock
        ? {
          lock: {
            mode: lock.retention.mode,
            until: lock.retention.until.toISOString(),
            ancestorsToExtend: extend.length,
          },
        }
        : {}),
      commands: commands.map((argv) => [...argv]),
    });
    return { records: [], newestCreated: plan.target.creation };
  }
  if (base && plan.steps[0].from !== undefined) await checkBase(config, store, base, options);
  if (extend.length > 0) {
    // Before the new objects: a run that stops midway never leaves a child locked longer.
    const locking = { attempts, signal: options.signal };
    const requests = await extendAncestors(store, config, extend, locking);
    options.err(
      `object lock: extended the retention of ${extend.length} ancestor(s) to ` +
        `${lock!.retention.until.toISOString()} (${requests} PutObjectRetention request(s))`,
    );
  }
  const records: BackupRecord[] = [];
  for (const step of plan.steps) {
    options.signal?.throwIfAborted();
    records.push(
      await backupOne(config, store, step, sendFrom(step), flags, options, lock?.retention),
    );
  }
  await moveHold(config, store.bucket, plan.base?.name, newest, options.err);
  await moveBookmark(bookmarks, store.bucket, config.s3Prefix, newest, options.err);
  return { records, newestCreated: plan.target.creation };
}

function describe(
  config: Config,
  store: S3Store,
  step: BackupStep,
  sendFrom: string | undefined,
  flags: string[],
): string {
  const send = formatArgv(zfs.sendArgv(step.snapshot.name, sendFrom, flags));
  const comp = compressCommand(config.compressor);
  const key = keyFor(config.s3Prefix, step.snapshot.name);
  const kind = step.from ? `incremental from ${step.from.snapshot}` : "full";
  const age = config.ageRecipients?.length
    ? ` | (in-process age) ${config.ageRecipients.map((r) => `-r ${r.text}`).join(" ")}`
    : "";
  return `${step.snapshot.name} (${kind}): ${send}${
    comp ? ` | ${formatArgv(comp)}` : ""
  }${age} | upload s3://${store.bucket}/${key}`;
}

async function backupOne(
  config: Config,
  store: S3Store,
  step: BackupStep,
  sendFrom: string | undefined,
  flags: string[],
  options: BackupOptions,
  retention?: Retention,
): Promise<BackupRecord> {
  const { snapshot, from } = step;
  const key = keyFor(config.s3Prefix, snapshot.name);
  // An absurd estimate (OpenZFS has printed 18446744073614344448) counts as none.
  const estimated = usableEstimate(await zfs.estimateSendSize(snapshot.name, sendFrom, flags));
  const metadata: Record<string, string> = {
    [META_KEYS.guid]: snapshot.guid,
    [META_KEYS.created]: String(snapshot.creation),
    "z3-version": VERSION,
  };
  if (from) {
    metadata[META_KEYS.parent] = from.name;
    metadata[META_KEYS.parentGuid] = from.guid;
  } else {
    metadata[META_KEYS.isFull] = "true";
  }
  if (config.compressor !== "none") metadata[META_KEYS.compressor] = config.compressor;
  if (estimated !== undefined) metadata[META_KEYS.size] = String(estimated);
  const recorded = formatSendFlags(flags);
  if (recorded !== undefined) metadata[SEND_FLAGS_META] = recorded;
  const recipients = config.ageRecipients ?? [];
  if (recipients.length > 0) {
    metadata[AGE_META.encryption] = "age";
    metadata[AGE_META.recipients] = recipients.map((r) => r.text).join(",");
  }
  const attempts = config.maxRetries + 1;
  const schedule = planSchedule({ partSize: config.chunkSize, estimated });
  const started: PendingRecord = {
    metadata: { ...metadata, ...scheduleToMetadata(schedule) },
    storageClass: config.storageClass,
  };
  const recordKey = pendingRecordKey(config.s3Prefix, snapshot.name);
  const pendingRecord = {
    write: () => writePendingRecord(store, recordKey, started, attempts, options.signal, retention),
    remove: () => store.delete(recordKey),
  };
  const resume = await findPending(store, key, { started, recordKey, attempts }, options);
  const attempt = async (resume?: Resume) => {
    const kind = from
      ? `incremental from ${sendFrom?.includes("#") ? sendFrom : from.snapshot}`
      : "full";
    options.err(`${snapshot.name}: sending ${kind}`);
    const sender = zfs.send(snapshot.name, sendFrom, { signal: options.signal, flags });
    // Progress counts the send stream, the one `estimated` is about (before compression).
    const progress = options.progress ? new Progress(snapshot.name, estimated) : undefined;
    const sent = progress ? counted(sender.stdout!, progress) : sender.stdout!;
    const packed = compress(config.compressor, sent, options.signal);
    try {
      // A fresh file key and nonce each time: an interrupted encrypted upload starts over.
      const body = recipients.length > 0 ? encryptStream(packed.stream, recipients) : packed.stream;
      const result = await uploadStream(store, key, body, {
        schedule,
        concurrency: config.concurrency,
        attempts,
        metadata,
        storageClass: config.storageClass,
        lock: retention,
        signal: options.signal,
        resume,
        pendingRecord,
        leftPendingHint: "the next z3 backup resumes it, z3 cleanup aborts it",
        beforeComplete: async () => {
          await sender.done;
          await packed.done;
        },
      });
      return result;
    } catch (err) {
      progress?.stop();
      sender.kill(); // no-op when it already exited; stops it when the upload failed first
      throw err;
    }
  };
  let result;
  const startedAt = performance.now();
  try {
    result = await attempt(resume);
  } catch (err) {
    if (!(err instanceof ResumeMismatchError)) throw err;
    options.err(`${snapshot.name}: the interrupted upload holds other bytes; starting over`);
    result = await attempt(undefined);
  }
  const record: CheckRecord = {
    etag: result.etag,
    size: result.bytes,
    guid: snapshot.guid,
    full: from === undefined,
    ...(from ? { parent: from.name, parentGuid: from.guid } : {}),
    parts: result.partMd5s,
  };
  const locking = { attempts, signal: options.signal };
  if (retention) await lockObject(store, key, retention, locking);
  try {
    // writeCheck retries (MAX_RETRIES) on its own.
    await writeCheck(store, config.s3Prefix, snapshot.name, record, attempts, { lock: retention });
  } catch (err) {
    options.signal?.throwIfAborted();
    // The object is whole and verified: deleting it would lose a good backup. Restore refuses it
    // until its record exists; verify --repair writes the record from its checked bytes.
    throw new S3Error(
      `Cannot write the check record of ${quote(snapshot.name)}: ${describeError(err)}; its ` +
        `object ${quote(key)} is complete and verified and stays in the bucket; run ` +
        `\`z3 verify --repair\` to write the record (restore refuses the object until then)`,
      { cause: err },
    );
  }
  if (retention) {
    await lockObject(store, checkKey(config.s3Prefix, snapshot.name), retention, locking);
  }
  if (!from && recipients.length > 0) {
    options.err(`${snapshot.name}: properties not stored: with AGE_RECIPIENTS they stay off S3`);
  } else if (!from) {
    await storeProperties(store, config.s3Prefix, requireDataset(config), snapshot.name, attempts);
    // The properties sidecar is locked like its full (not extended with the chain: restore needs
    // it only for --properties).
    if (retention) {
      await lockObject(store, propertiesKey(config.s3Prefix, snapshot.name), retention, locking);
    }
  }
  return {
    snapshot: snapshot.name,
    parent: from?.name,
    type: from ? "incremental" : "full",
    key,
    bytes: result.bytes,
    parts: result.parts,
    resumedParts: result.resumedParts,
    etag: result.etag,
    seconds: (performance.now() - startedAt) / 1000,
  };
}

/**
 * The pending multipart upload of exactly `key` to resume: the newest one left by an earlier run
 * that died before it could complete or abort, and only when its pending record (what it was
 * started with: metadata, part schedule, storage class) equals this run's. Every other pending
 * upload of the key is aborted, and one line says how many: a timed-out CreateMultipartUpload
 * that the server carried out later leaves such extras.
 */
async function findPending(
  store: S3Store,
  key: string,
  run: { started: PendingRecord; recordKey: string; attempts: number },
  options: BackupOptions,
): Promise<Resume | undefined> {
  const { signal } = options;
  const retry = { attempts: run.attempts, signal };
  const pending = (await withRetry(
    () => Array.fromAsync(store.listMultipartUploads(key, signal)),
    retry,
  )).filter((u) => u.key === key);
  if (pending.length === 0) return undefined;
  const recorded = await readPendingRecord(store, run.recordKey, run.attempts, signal);
  const matches = recorded !== undefined && samePendingRecord(recorded, run.started);
  pending.sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0));
  const adopted = matches ? pending.pop() : undefined;
  for (const u of pending) {
    await withRetry(() => store.abortMultipart(key, u.uploadId, signal), retry);
  }
  if (pending.length > 0) {
    const why = adopted
      ? "older than the one resumed"
      : recorded
      ? "started with other metadata (GUID, part schedule, compressor or storage class)"
      : "no record of what they were started with";
    options.err(`${key}: aborted ${pending.length} pending upload(s) of earlier runs (${why})`);
  }
  if (!adopted) return undefined;
  const parts = await withRetry(() => store.listParts(key, adopted.uploadId, signal), retry);
  options.err(
    `${key}: resuming an interrupted upload (${parts.size} part(s) already in the bucket)`,
  );
  return { uploadId: adopted.uploadId, parts };
}

/**
 * The object a backup builds on must still be what its backup verified: its check record is
 * compared with it (ETag, size, GUID, full or parent), as restore will. A run that died between
 * completing an object and writing its record leaves none: then the record is written again from
 * the object's checked bytes (`rerecord.ts`). Objects of the original z3 have no record.
 */
async function checkBase(
  config: Config,
  store: S3Store,
  base: RemoteSnapshot,
  options: BackupOptions,
) {
  try {
    await inspectObject(store, base.key, config, options.signal);
  } catch (err) {
    if (!(err instanceof MissingRecordError)) throw err;
    options.err(
      `${base.name}: its check record is missing (a run died right after uploading it?): checking its bytes`,
    );
    await rerecord(config, store, base, { signal: options.signal, action: "back up on" });
  }
}
