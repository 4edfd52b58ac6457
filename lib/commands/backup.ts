/**
 * `z3 backup`: uploads every local snapshot after the newest one already in the bucket, each as
 * its own object (`zfs send -i PREV CUR`), oldest first; when the bucket holds none of them, the
 * oldest goes first as a full, so the bucket gets every restore point (see `planBackup`).
 * `zfs send` runs as a child of z3, and its exit status (and the compressor's) is checked before
 * an upload is completed (`send.ts`): a send that fails midway never becomes an object.
 *
 * @module
 */

import { type BackupPlan, type BackupStep, planBackup } from "../chain/backup_plan.ts";
import { keyFor } from "../chain/keys.ts";
import { META_KEYS } from "../chain/metadata.ts";
import { Chains, quote } from "../chain/walk.ts";
import type { Config } from "../config/config.ts";
import { compressCommand } from "../pipeline/compress.ts";
import { AGE_META } from "../pipeline/age.ts";
import { sendToObject, type SentObject } from "../pipeline/send.ts";
import { formatArgv } from "../exec/process.ts";
import { planSchedule, scheduleToMetadata, usableEstimate } from "../transfer/part_size.ts";
import { pendingRecordKey } from "../repository/pending_record.ts";
import {
  adoptPendingUpload,
  pendingRecordHooks,
  type PendingUploadOptions,
} from "../repository/pending_upload.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import { backupRemote, refuseForeign } from "../repository/trusted_records.ts";
import type { S3Store } from "../backend/s3.ts";
import { type PendingRecordHooks, type Resume, ResumeMismatchError } from "../transfer/upload.ts";
import type { PartSchedule } from "../transfer/part_size.ts";
import { checkKey, MissingRecordError } from "../repository/check_records.ts";
import { recordUpload } from "../repository/record_upload.ts";
import { inspectObject } from "../repository/verified_object.ts";
import { UsageError } from "../base/errors.ts";
import { rerecord } from "../repository/rerecord.ts";
import { VERSION } from "../base/version.ts";
import * as zfs from "../zfs/zfs.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import { parseSnapshot, validateSnapshotName } from "../chain/names.ts";
import { acquireBackupLock } from "../zfs/host_lock.ts";
import { recordMetrics } from "../cli/metrics.ts";
import { type LockPolicy, retentionAt } from "../chain/object_lock_policy.ts";
import type { AncestorExtension } from "../repository/object_lock_run.ts";
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
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";
import { humanBytes } from "../cli/human.ts";
import { parsePolicy, requirePolicy } from "../chain/retention.ts";

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
  if (options.snapshot !== undefined) checkSnapshotOption(config, dataset, options.snapshot);
  // One backup per dataset at a time (see host_lock.ts); a dry run changes nothing and needs none.
  const lock = options.dryRun ? undefined : acquireBackupLock(dataset);
  const started = Date.now();
  const metrics = { path: config.metricsFile, err: options.err };
  try {
    const { records, newestCreated } = await planAndUpload(config, store, dataset, options);
    if (!options.dryRun) await options.afterSuccess?.();
    if (!options.dryRun) {
      const bytes = records.reduce((sum, r) => sum + r.bytes, 0);
      const end = new Date();
      const run = { ok: true, end, durationMs: end.getTime() - started, bytes, newestCreated };
      await recordMetrics(dataset, run, metrics);
    }
    return records;
  } catch (err) {
    if (lock) {
      await recordMetrics(dataset, { ok: false, durationMs: Date.now() - started }, metrics);
    }
    throw err;
  } finally {
    lock?.release();
  }
}

/** Refuses a bad `--snapshot` before anything is listed: `snap` or `dataset@snap`. */
function checkSnapshotOption(config: Config, dataset: string, snapshot: string): void {
  const named = snapshot.includes("@") ? parseSnapshot(snapshot) : undefined;
  if (named && named.dataset !== dataset) {
    throw new UsageError(
      `Cannot back up ${quote(snapshot)}: it is not a snapshot of ${quote(dataset)}, ` +
        `the dataset this run backs up`,
    );
  }
  const short = named ? named.snapshot : validateSnapshotName(snapshot);
  if (!short.startsWith(config.snapshotPrefix)) {
    throw new UsageError(
      `Cannot back up ${quote(snapshot)}: SNAPSHOT_PREFIX is ` +
        `${quote(config.snapshotPrefix)} (from ${config.sources.SNAPSHOT_PREFIX}) and the name ` +
        `does not start with it; set SNAPSHOT_PREFIX= (empty) to take any snapshot`,
    );
  }
}

/** What a run found in the pool and the bucket, and the plan it made from them. */
interface Found {
  plan: BackupPlan;
  remote: Map<string, RemoteSnapshot>;
  chains: Chains;
  /** The Object Lock this run gives new objects; absent with OBJECT_LOCK_DAYS=0. */
  lock?: LockPolicy;
  /** The dataset's bookmarks; absent when this zfs has none (zfs-fuse). */
  bookmarks?: zfs.LocalBookmark[];
  /** Where a step's send starts: its base, or the base's bookmark once the base is destroyed. */
  sendFrom: (step: BackupStep) => string | undefined;
}

/** A plan with steps, ready to run or to print. */
interface Run extends Found {
  /** `zfs send` options of every step. */
  flags: string[];
  /** The object the first step builds on; absent when the first step is a full. */
  base?: RemoteSnapshot;
  /** Ancestors whose Object Lock grows to the new objects' before the upload. */
  extend: AncestorExtension[];
  /** The newest snapshot the run uploads. */
  newest: string;
}

/** Plans the run, then prints it (`--dry-run`) or uploads it; up to date is one line. */
async function planAndUpload(
  config: Config,
  store: S3Store,
  dataset: string,
  options: BackupOptions,
): Promise<{ records: BackupRecord[]; newestCreated: number }> {
  const found = await findWork(config, store, dataset, options);
  const newestCreated = found.plan.target.creation;
  if (found.plan.steps.length === 0) {
    options.err(`${found.plan.target.name} is already in the bucket: up to date`);
    return { records: [], newestCreated };
  }
  const run = await prepareRun(config, dataset, found);
  if (options.dryRun) {
    printDryRun(config, store, run, options);
    return { records: [], newestCreated };
  }
  return { records: await uploadRun(config, store, run, options), newestCreated };
}

/** Lists the pool and the bucket and plans the uploads (`planBackup`). */
async function findWork(
  config: Config,
  store: S3Store,
  dataset: string,
  options: BackupOptions,
): Promise<Found> {
  // Object Lock (OBJECT_LOCK_DAYS): a bucket without it is refused before anything else runs.
  const attempts = config.maxRetries + 1;
  const lock = await runLock(config, store, { attempts, signal: options.signal });
  if (lock?.note) options.err(lock.note);
  const listed = await zfs.listSnapshots(dataset);
  const listedRemote = await loadRemote(store, config.s3Prefix, dataset, {
    signal: options.signal,
    attempts: config.maxRetries + 1,
  });
  // With trusted keys, objects without a trusted record are foreign: never built on or over.
  const { remote, foreign } = await backupRemote(store, config, listedRemote, options);
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
  const keyOf = (name: string) => keyFor(config.s3Prefix, name);
  refuseForeign(plan.steps.map((step) => step.snapshot.name), foreign, keyOf);
  return { plan, remote, chains, lock, bookmarks, sendFrom };
}

/** The send flags, the base and the ancestors whose lock grows, for a plan with steps. */
async function prepareRun(config: Config, dataset: string, found: Found): Promise<Run> {
  const { plan, remote, chains, lock } = found;
  // Encrypted datasets go raw (-w); an incremental keeps its chain's -w and -L (send_flags.ts).
  const flags = sendOptions(config.sendFlags, (await zfs.getEncryption(dataset)) !== "off");
  const planned = plan.base ? remote.get(plan.base.name) : undefined;
  const base = planned && plan.steps[0].from !== undefined ? planned : undefined;
  if (base) checkIncrementalFlags(base.name, readSendFlags(base.name, base.metadata), flags);
  const newest = plan.steps[plan.steps.length - 1].snapshot.name;
  const extend = lock && base
    ? ancestorsToExtend(chains, base.name, retentionAt(lock, new Date()), new Date())
    : [];
  return { ...found, flags, base, extend, newest };
}

/** `--dry-run`: one line per upload, the lock and the zfs commands on `out`; the data to `onPlan`. */
function printDryRun(config: Config, store: S3Store, run: Run, options: BackupOptions): void {
  const { plan, lock, flags, extend } = run;
  for (const step of plan.steps) {
    options.out(describe(config, store, step, run.sendFrom(step), flags));
  }
  const retention = lock && retentionAt(lock, new Date());
  if (retention) options.out(lockPlanLine(retention, extend.length));
  const commands = [
    ...holdArgvLines(config, store.bucket, plan.base?.name, run.newest),
    ...bookmarkArgvLines(run.bookmarks, store.bucket, config.s3Prefix, run.newest),
  ];
  for (const argv of commands) options.out(formatArgv(argv));
  options.onPlan?.({
    steps: plan.steps.map((step) => ({
      snapshot: step.snapshot.name,
      type: step.from ? "incremental" : "full",
      ...(step.from ? { parent: step.from.name } : {}),
      key: keyFor(config.s3Prefix, step.snapshot.name),
      send: zfs.sendArgv(step.snapshot.name, run.sendFrom(step), flags),
      compressor: config.compressor,
      encrypted: (config.ageRecipients?.length ?? 0) > 0,
    })),
    ...(retention
      ? {
        lock: {
          mode: retention.mode,
          until: retention.until.toISOString(),
          ancestorsToExtend: extend.length,
        },
      }
      : {}),
    commands: commands.map((argv) => [...argv]),
  });
}

/** The dry-run line of one upload: its send, compressor, age and destination, as one pipe. */
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

/**
 * Runs a plan with steps: checks the base, uploads every step in order, extends the Object Lock
 * of what the newest builds on, then moves the hold and the bookmark to the newest snapshot.
 */
async function uploadRun(
  config: Config,
  store: S3Store,
  run: Run,
  options: BackupOptions,
): Promise<BackupRecord[]> {
  const { plan, lock } = run;
  if (run.base) await checkBase(config, store, run.base, options);
  const records: BackupRecord[] = [];
  for (const step of plan.steps) {
    options.signal?.throwIfAborted();
    const one = { step, sendFrom: run.sendFrom(step), flags: run.flags, lock };
    records.push(await backupOne(config, store, one, options));
  }
  if (lock) await lockChainBelow(config, store, run, records, options);
  await moveHold(config, store.bucket, plan.base?.name, run.newest, options.err);
  await moveBookmark(run.bookmarks, store.bucket, config.s3Prefix, run.newest, options.err);
  return records;
}

/**
 * After the uploads, under OBJECT_LOCK_DAYS: extends the retention of what the newest object
 * builds on (the base's chain in the bucket, then this run's earlier objects, each with its check
 * record) to the retention counted from now, no earlier than any this run's objects got when
 * each was locked. After, not before, the uploads: each new object's date is counted when it is
 * locked, so only now is the newest date known; a run that stops midway leaves its objects
 * locked longer than their ancestors until the next backup extends them (`z3 verify` reports
 * them `unprotected` meanwhile).
 */
async function lockChainBelow(
  config: Config,
  store: S3Store,
  run: Run,
  records: BackupRecord[],
  options: BackupOptions,
): Promise<void> {
  const retention = retentionAt(run.lock!, new Date());
  const locking = { attempts: config.maxRetries + 1, signal: options.signal };
  const extend = run.base
    ? ancestorsToExtend(run.chains, run.base.name, retention, new Date())
    : [];
  let requests = await extendAncestors(store, config, extend, locking);
  const earlier = records.slice(0, -1);
  for (const r of earlier) {
    requests += await lockObject(store, r.key, retention, locking);
    const record = checkKey(config.s3Prefix, r.snapshot);
    requests += await lockObject(store, record, retention, locking);
  }
  const count = extend.length + earlier.length;
  if (count === 0) return;
  options.err(
    `object lock: extended the retention of ${count} ancestor(s) to ` +
      `${retention.until.toISOString()} (${requests} PutObjectRetention request(s))`,
  );
}

/** One step of a run: what to send, from where, and the Object Lock policy of its objects. */
interface OneUpload {
  step: BackupStep;
  /** The base to send from (`dataset@snap` or `dataset#bm`); absent for a full. */
  sendFrom?: string;
  flags: string[];
  /** Each object's retention is counted from when it is locked (`retentionAt`). */
  lock?: LockPolicy;
}

/**
 * Sends and uploads one snapshot (resuming a pending upload of an earlier run when it started
 * with the same record), then writes its check record, its properties (a full), and their locks.
 */
async function backupOne(
  config: Config,
  store: S3Store,
  one: OneUpload,
  options: BackupOptions,
): Promise<BackupRecord> {
  const { snapshot, from } = one.step;
  const key = keyFor(config.s3Prefix, snapshot.name);
  // An absurd estimate (OpenZFS has printed 18446744073614344448) counts as none.
  const estimated = usableEstimate(
    await zfs.estimateSendSize(snapshot.name, one.sendFrom, one.flags),
  );
  const metadata = objectMetadata(config, one, estimated);
  const schedule = planSchedule({ partSize: config.chunkSize, estimated });
  const pending: PendingUploadOptions = {
    started: {
      metadata: { ...metadata, ...scheduleToMetadata(schedule) },
      storageClass: config.storageClass,
    },
    recordKey: pendingRecordKey(config.s3Prefix, snapshot.name),
    attempts: config.maxRetries + 1,
    signal: options.signal,
  };
  const pendingRecord = pendingRecordHooks(store, pending);
  const resume = await adoptPendingUpload(store, key, { ...pending, err: options.err });
  const startedAt = performance.now();
  const upload = { key, estimated, schedule, metadata, pendingRecord };
  const result = await sendResuming(config, store, { ...one, ...upload }, resume, options);
  // Counted from now, when the object exists: its upload may have taken hours.
  const retention = one.lock && retentionAt(one.lock, new Date());
  const withRetention = { ...one, retention };
  const uploaded = {
    snapshot,
    from,
    key,
    result,
    retention,
    metadata: pending.started.metadata,
    // With SIGNING_KEY_FILE stored before the record, which signs its SHA-256; else after it.
    propertiesSha256: from || !config.signingKey
      ? undefined
      : await storeFullProperties(config, store, withRetention, options),
  };
  await recordUpload(store, config, uploaded, options.signal);
  if (!from && !config.signingKey) {
    await storeFullProperties(config, store, withRetention, options);
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

/** The object's user metadata: its snapshot and chain link, how its bytes were made. */
function objectMetadata(
  config: Config,
  one: OneUpload,
  estimated: number | undefined,
): Record<string, string> {
  const { snapshot, from } = one.step;
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
  const recorded = formatSendFlags(one.flags);
  if (recorded !== undefined) metadata[SEND_FLAGS_META] = recorded;
  const recipients = config.ageRecipients ?? [];
  if (recipients.length > 0) {
    metadata[AGE_META.encryption] = "age";
    metadata[AGE_META.recipients] = recipients.map((r) => r.text).join(",");
  }
  return metadata;
}

/** One upload's object: its key, size estimate, part schedule, metadata and pending record. */
interface ObjectUpload extends OneUpload {
  key: string;
  estimated?: number;
  schedule: PartSchedule;
  metadata: Record<string, string>;
  pendingRecord: PendingRecordHooks;
}

/**
 * Sends `upload` into its object (`send.ts`), resuming `resume`; when the regenerated bytes
 * differ from the pending upload's parts, that upload is gone and the send starts over.
 */
async function sendResuming(
  config: Config,
  store: S3Store,
  upload: ObjectUpload,
  resume: Resume | undefined,
  options: BackupOptions,
): Promise<SentObject> {
  const { snapshot, from } = upload.step;
  const attempt = (resume?: Resume) => {
    const kind = from
      ? `incremental from ${upload.sendFrom?.includes("#") ? upload.sendFrom : from.snapshot}`
      : "full";
    options.err(`${snapshot.name}: sending ${kind}`);
    return sendToObject(store, upload.key, {
      snapshot: snapshot.name,
      from: upload.sendFrom,
      flags: upload.flags,
      compressor: config.compressor,
      recipients: config.ageRecipients ?? [],
      estimated: upload.estimated,
      progress: options.progress,
      schedule: upload.schedule,
      concurrency: config.concurrency,
      attempts: config.maxRetries + 1,
      metadata: upload.metadata,
      storageClass: config.storageClass,
      lock: upload.lock && retentionAt(upload.lock, new Date()),
      signal: options.signal,
      resume,
      pendingRecord: upload.pendingRecord,
      leftPendingHint: "the next z3 backup resumes it, z3 cleanup aborts it",
    });
  };
  try {
    return await attempt(resume);
  } catch (err) {
    if (!(err instanceof ResumeMismatchError)) throw err;
    options.err(`${snapshot.name}: the interrupted upload holds other bytes; starting over`);
    return await attempt(undefined);
  }
}

/**
 * A full's dataset properties beside it (`properties.ts`), locked like it; not with age. Returns
 * the SHA-256 of the sidecar stored, if one was.
 */
async function storeFullProperties(
  config: Config,
  store: S3Store,
  one: OneUpload & { retention?: Retention },
  options: BackupOptions,
): Promise<string | undefined> {
  const name = one.step.snapshot.name;
  if ((config.ageRecipients ?? []).length > 0) {
    options.err(`${name}: properties not stored: with AGE_RECIPIENTS they stay off S3`);
    return undefined;
  }
  const attempts = config.maxRetries + 1;
  const sha256 = await storeProperties(
    store,
    config.s3Prefix,
    requireDataset(config),
    name,
    attempts,
  );
  // The properties sidecar is locked like its full (not extended with the chain: restore needs
  // it only for --properties).
  if (one.retention) {
    const locking = { attempts, signal: options.signal };
    await lockObject(store, propertiesKey(config.s3Prefix, name), one.retention, locking);
  }
  return sha256;
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

/** `backup --prune`'s prune, run after a successful backup under its lock (see `prune.ts`). */
export type PruneAfterBackup = (
  config: Config,
  store: S3Store,
  options: { signal: AbortSignal; err: (line: string) => void },
) => Promise<void>;

/**
 * `z3 backup` for `main.ts`: one line per uploaded snapshot (or `--parseable` fields); with
 * `--json` the records are the document, or with `--dry-run` each dataset's plan (one object
 * for one dataset). `pruneAfter` is what `--prune` runs after a successful backup.
 */
export function backupCli(pruneAfter: PruneAfterBackup): CliCommand {
  return { many: true, start: (context) => startBackup(context, pruneAfter) };
}

function startBackup(context: CliContext, pruneAfter: PruneAfterBackup): CliRun {
  const { values, datasets, signal, err } = context;
  const snapshot = values.snapshot as string | undefined;
  if (snapshot?.includes("@") && datasets.length > 1) {
    throw new UsageError(
      `Cannot back up ${JSON.stringify(snapshot)} over ${datasets.length} datasets: name one ` +
        `dataset, or give --snapshot the short name (${
          JSON.stringify(snapshot.slice(snapshot.indexOf("@") + 1))
        }) to back up that snapshot of each`,
    );
  }
  const dryRun = values["dry-run"] === true;
  return {
    async runDataset(config, store) {
      // Refused before anything is uploaded, not after.
      if (values.prune) {
        requirePolicy(parsePolicy(config.keep, (k) => config.sources[k]), "back up with --prune");
      }
      const plan: string[] = [];
      // Up to date, the plan has no steps and no commands.
      let planned: BackupDryRun = { steps: [], commands: [] };
      const records = await backup(config, store, {
        full: values.full === true,
        snapshot,
        dryRun,
        progress: context.progress,
        afterSuccess: values.prune ? () => pruneAfter(config, store, { signal, err }) : undefined,
        signal,
        onPlan: (p) => planned = p,
        out: values.json ? (line) => plan.push(line) : context.out,
        err,
      });
      // --dry-run --json: the plan's lines and data, per dataset.
      context.json.add(
        values.json && dryRun
          ? [{ dataset: config.filesystem, dryRun, plan, ...planned }]
          : records,
      );
      if (!values.json) {
        const format = values.parseable ? backupParseableLine : backupLine;
        for (const r of records) context.out(format(r));
      }
      return dryRun ? "planned" : records.length > 0 ? "backed up" : "up to date";
    },
    jsonDocument: (items) => dryRun && !context.many ? items[0] : items,
  };
}

/** One uploaded snapshot for people: type, parent, size, parts, time and rate. */
export function backupLine(r: BackupRecord): string {
  return `${r.snapshot}: ${r.type}${
    r.parent ? ` from ${r.parent}` : ""
  }, ${r.bytes} bytes in ${r.parts} part(s)${
    r.resumedParts ? ` (${r.resumedParts} resumed)` : ""
  } in ${r.seconds.toFixed(1)} s, ${humanBytes(r.bytes / Math.max(r.seconds, 1e-3))}/s`;
}

/** One uploaded snapshot for `--parseable`: snapshot, type, parent, bytes, key; tabs. */
export function backupParseableLine(r: BackupRecord): string {
  return [r.snapshot, r.type, r.parent ?? "", r.bytes, r.key].join("\t");
}
