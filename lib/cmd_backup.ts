/**
 * `z3 backup`: uploads every local snapshot after the newest one already in the bucket, each as
 * its own object (`zfs send -i PREV CUR`), oldest first; a full when the bucket holds nothing.
 * `zfs send` runs as a child of z3, and its exit status (and the compressor's) is checked before
 * an upload is completed: a send that fails midway never becomes an object.
 *
 * @module
 */

import {
  type BackupStep,
  chainHealth,
  keyFor,
  META_KEYS,
  planBackup,
  type RemoteSnapshot,
} from "./chain.ts";
import type { Config } from "./config.ts";
import { compress, compressCommand } from "./compress.ts";
import { formatArgv } from "./process.ts";
import { planSchedule } from "./part_size.ts";
import { Progress } from "./progress.ts";
import { loadRemote } from "./remote.ts";
import type { S3Store } from "./s3.ts";
import { ResumeMismatchError, uploadStream } from "./upload.ts";
import { type CheckRecord, readCheck, writeCheck } from "./checks.ts";
import { rerecord } from "./rerecord.ts";
import { VERSION } from "./version.ts";
import * as zfs from "./zfs.ts";
import { requireDataset } from "./dataset.ts";
import { parseSnapshot, validateSnapshotName } from "./names.ts";
import { acquireBackupLock } from "./lock.ts";
import { withRetry } from "./retry.ts";
import {
  checkIncrementalFlags,
  formatSendFlags,
  readSendFlags,
  SEND_FLAGS_META,
  sendOptions,
} from "./send_flags.ts";
import { holdArgvLines, moveHold } from "./holds.ts";

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
  /** Where result lines go (stdout). */
  out: (line: string) => void;
  /** Where diagnostics go (stderr). */
  err: (line: string) => void;
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
    if (options.snapshot.includes("@")) parseSnapshot(options.snapshot);
    else validateSnapshotName(options.snapshot);
  }
  // One backup per dataset at a time (see lock.ts); a dry run changes nothing and needs none.
  const lock = options.dryRun ? undefined : acquireBackupLock(dataset);
  try {
    const records = await planAndUpload(config, store, dataset, options);
    if (!options.dryRun) await options.afterSuccess?.();
    return records;
  } finally {
    lock?.release();
  }
}

async function planAndUpload(
  config: Config,
  store: S3Store,
  dataset: string,
  options: BackupOptions,
): Promise<BackupRecord[]> {
  const local = (await zfs.listSnapshots(dataset)).filter((s) =>
    s.snapshot.startsWith(config.snapshotPrefix)
  );
  const remote = await loadRemote(store, config.s3Prefix, dataset, {
    signal: options.signal,
    attempts: config.maxRetries + 1,
  });
  const health = chainHealth(remote);
  let plan = planBackup(local, remote, health, { full: options.full, target: options.snapshot });
  const run = plan.base ? incrementalsBelow(remote, plan.base.name) : 0;
  if (config.fullEvery > 0 && plan.steps.length > 0 && run + plan.steps.length > config.fullEvery) {
    options.err(
      `${run} incrementals since the last full (FULL_EVERY=${config.fullEvery}): sending a new full`,
    );
    plan = planBackup(local, remote, health, { full: true, target: options.snapshot });
  }
  if (plan.steps.length === 0) {
    options.err(`${plan.target.name} is already in the bucket: up to date`);
    return [];
  }
  // Encrypted datasets go raw (-w); an incremental keeps its chain's -w and -L (send_flags.ts).
  const flags = sendOptions(config.sendFlags, (await zfs.getEncryption(dataset)) !== "off");
  const base = plan.base ? remote.get(plan.base.name) : undefined;
  if (base && plan.steps[0].from !== undefined) {
    checkIncrementalFlags(base.name, readSendFlags(base.name, base.metadata), flags);
  }
  const newest = plan.steps[plan.steps.length - 1].snapshot.name;
  if (options.dryRun) {
    for (const step of plan.steps) options.out(describe(config, store, step, flags));
    for (const argv of holdArgvLines(config, store.bucket, plan.base?.name, newest)) {
      options.out(formatArgv(argv));
    }
    return [];
  }
  if (base && !plan.steps.every((s) => s.from === undefined)) {
    await ensureRecorded(config, store, base, options);
  }
  const records: BackupRecord[] = [];
  for (const step of plan.steps) {
    options.signal?.throwIfAborted();
    records.push(await backupOne(config, store, step, flags, options));
  }
  await moveHold(config, store.bucket, plan.base?.name, newest, options.err);
  return records;
}

function describe(config: Config, store: S3Store, step: BackupStep, flags: string[]): string {
  const send = formatArgv(zfs.sendArgv(step.snapshot.name, step.from?.name, flags));
  const comp = compressCommand(config.compressor);
  const key = keyFor(config.s3Prefix, step.snapshot.name);
  const kind = step.from ? `incremental from ${step.from.snapshot}` : "full";
  return `${step.snapshot.name} (${kind}): ${send}${
    comp ? ` | ${formatArgv(comp)}` : ""
  } | upload s3://${store.bucket}/${key}`;
}

async function backupOne(
  config: Config,
  store: S3Store,
  step: BackupStep,
  flags: string[],
  options: BackupOptions,
): Promise<BackupRecord> {
  const { snapshot, from } = step;
  const key = keyFor(config.s3Prefix, snapshot.name);
  const estimated = await zfs.estimateSendSize(snapshot.name, from?.name, flags);
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
  const resume = await findPending(store, key, config.maxRetries + 1, options);
  const attempt = async (resume?: Resume) => {
    options.err(`${snapshot.name}: sending ${from ? `incremental from ${from.snapshot}` : "full"}`);
    const sender = zfs.send(snapshot.name, from?.name, { signal: options.signal, flags });
    const packed = compress(config.compressor, sender.stdout!, options.signal);
    const progress = options.progress ? new Progress(snapshot.snapshot, estimated) : undefined;
    try {
      const result = await uploadStream(store, key, packed.stream, {
        schedule: planSchedule({ partSize: config.chunkSize, estimated }),
        concurrency: config.concurrency,
        attempts: config.maxRetries + 1,
        metadata,
        storageClass: config.storageClass,
        signal: options.signal,
        resume,
        beforeComplete: async () => {
          await sender.done;
          await packed.done;
        },
        onProgress: progress ? (n) => progress.update(n) : undefined,
      });
      progress?.finish(result.bytes);
      return result;
    } catch (err) {
      sender.kill(); // no-op when it already exited; stops it when the upload failed first
      throw err;
    }
  };
  let result;
  try {
    result = await attempt(resume);
  } catch (err) {
    if (!(err instanceof ResumeMismatchError)) throw err;
    options.err(`${snapshot.name}: the interrupted upload holds other bytes; starting over`);
    result = await attempt(undefined);
  }
  try {
    const record: CheckRecord = {
      etag: result.etag,
      size: result.bytes,
      guid: snapshot.guid,
      full: from === undefined,
      ...(from ? { parent: from.name, parentGuid: from.guid } : {}),
      parts: result.partMd5s,
    };
    await writeCheck(store, config.s3Prefix, snapshot.name, record, config.maxRetries + 1);
  } catch (err) {
    // Without its record the object could not be verified later: take it back.
    await store.delete(key).catch(() => {});
    throw err;
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
  };
}

type Resume = { uploadId: string; parts: Map<number, { etag: string; size: number }> };

/**
 * The newest pending multipart upload of exactly `key` (an earlier run that died before it could
 * complete or abort), with its parts; older ones for the same key are aborted.
 */
async function findPending(
  store: S3Store,
  key: string,
  attempts: number,
  options: BackupOptions,
): Promise<Resume | undefined> {
  const retry = { attempts, signal: options.signal };
  const pending = (await withRetry(() => Array.fromAsync(store.listMultipartUploads(key)), retry))
    .filter((u) => u.key === key);
  if (pending.length === 0) return undefined;
  pending.sort((a, b) => (a.initiated?.getTime() ?? 0) - (b.initiated?.getTime() ?? 0));
  const newest = pending.pop()!;
  for (const old of pending) await store.abortMultipart(key, old.uploadId).catch(() => {});
  const parts = await withRetry(() => store.listParts(key, newest.uploadId), retry);
  options.err(
    `${key}: resuming an interrupted upload (${parts.size} part(s) already in the bucket)`,
  );
  return { uploadId: newest.uploadId, parts };
}

/** How many incrementals lie between `name` (included) and its full in the bucket. */
function incrementalsBelow(remote: Map<string, RemoteSnapshot>, name: string): number {
  let count = 0;
  const seen = new Set<string>();
  for (
    let s = remote.get(name);
    s && !s.isFull && !seen.has(s.name);
    s = s.parent ? remote.get(s.parent) : undefined
  ) {
    seen.add(s.name);
    count++;
  }
  return count;
}

/**
 * The object a backup builds on must carry its check record, or a restore would refuse the whole
 * chain. A run that died between completing an object and writing its record leaves exactly that:
 * then the record is written again from the object's checked bytes (`rerecord.ts`). Objects of
 * the original z3 need none.
 */
async function ensureRecorded(
  config: Config,
  store: S3Store,
  base: RemoteSnapshot,
  options: BackupOptions,
) {
  if (base.metadata["z3-version"] === undefined) return;
  if (await readCheck(store, config.s3Prefix, base.name, config.maxRetries + 1)) return;
  options.err(
    `${base.name}: its check record is missing (a run died right after uploading it?): checking its bytes`,
  );
  await rerecord(config, store, base, { signal: options.signal, action: "back up on" });
}
