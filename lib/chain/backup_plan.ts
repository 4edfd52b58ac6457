/**
 * Pure: what a backup uploads. The local snapshots (oldest first) and the bucket's chains → the
 * sends to run, each a full or an incremental from the one before; refuses a broken or diverged
 * chain, and a full whose key already holds an object.
 *
 * @module
 */

import { type Chains, quote } from "./walk.ts";
import { ChainError, UsageError } from "../base/errors.ts";
import type { LocalSnapshot, RemoteSnapshot } from "./types.ts";

/** One `zfs send` to upload: a full when `from` is undefined, else incremental from `from`. */
export interface BackupStep {
  /** The snapshot to send. */
  snapshot: LocalSnapshot;
  /** The incremental source; undefined for a full stream. */
  from?: LocalSnapshot;
}

/** What a backup will upload, oldest first. */
export interface BackupPlan {
  /** Sends to run in order; empty when the bucket is up to date. */
  steps: BackupStep[];
  /**
   * Newest snapshot already in the bucket at or below the target, whose hold the run releases:
   * an incremental plan builds on it, a `--full` plan does not. Undefined when none.
   */
  base?: LocalSnapshot;
  /** The snapshot the backup brings the bucket up to. */
  target: LocalSnapshot;
}

/** Options for {@linkcode planBackup}. */
export interface PlanBackupOptions {
  /** Send one full stream of the target, whatever the bucket holds. @default {false} */
  full?: boolean;
  /** Short name of the snapshot to back up. @default {the latest local snapshot} */
  target?: string;
  /** Start a new full instead of the incremental that would make N + 1 in a row. @default {0: never} */
  fullEvery?: number;
}

const START_OVER = "run `z3 backup --full` to start a new chain";

/** What to do when the bucket holds another history: never `--full`, which would overwrite it. */
function keepHistory(name: string): string {
  return `use a new S3_PREFIX for this history, or delete the bucket's ${quote(name)} and ` +
    `the objects that depend on it (each with its check record) on purpose first`;
}

/** Throws unless every snapshot on both sides with a recorded GUID has the same GUID. */
function checkGuids(
  target: LocalSnapshot,
  local: LocalSnapshot[],
  remote: ReadonlyMap<string, RemoteSnapshot>,
): void {
  for (const snap of local) {
    const stored = remote.get(snap.name)?.guid;
    if (stored === undefined || stored === snap.guid) continue;
    throw new ChainError(
      `Cannot back up ${quote(target.name)}: the local and bucket histories diverged at ` +
        `${quote(snap.name)} (guid: local ${snap.guid} vs bucket ${stored}); the dataset was ` +
        `probably recreated or rolled back; ${keepHistory(snap.name)}`,
    );
  }
}

/**
 * Refuses a `--full` of `target` onto a key that already holds an object, whatever its GUID:
 * z3 never writes over an object. Another snapshot's object (other GUID) is another history;
 * the same snapshot's object may be the base other objects build on.
 */
function refuseOverwrite(target: LocalSnapshot, chains: Chains): void {
  const object = chains.remote.get(target.name);
  if (object === undefined) return;
  const needs = [...chains.descendants([target.name])].sort();
  const dependents = needs.length === 0
    ? "no other object depends on it"
    : `${needs.length} object(s) depend on it: ${needs.map(quote).join(", ")}`;
  const stored = object.guid;
  if (stored !== undefined && stored !== target.guid) {
    throw new ChainError(
      `Cannot back up ${quote(target.name)} as a full: the bucket's object of that name is ` +
        `another snapshot (guid: local ${target.guid} vs bucket ${stored}) and writing over it ` +
        `would destroy that history (${dependents}); ${keepHistory(target.name)}`,
    );
  }
  const kind = object.isFull ? "a full" : `an incremental from ${quote(object.parent ?? "?")}`;
  throw new ChainError(
    `Cannot back up ${quote(target.name)} as a full: the bucket already holds it (${kind}; ` +
      `${dependents}) and z3 never writes over an object; take a new snapshot and back that ` +
      `up with --full, or use a new S3_PREFIX for a new chain`,
  );
}

/**
 * Plans a backup of `options.target` (default: the latest of `local`, which is oldest first and
 * already filtered by snapshot prefix). Every local snapshot after the newest one already in the
 * bucket (the base) is sent, each as an incremental from the one before, except that a new full
 * starts wherever `fullEvery` incrementals in a row would be exceeded. With no base, the oldest
 * local snapshot goes first as a full, so the bucket gets every restore point the host has.
 * `full` sends one full of the target and nothing else, and releases the hold on the newest
 * snapshot already in the bucket (its `base`: a full is sent from none). Refuses a broken or
 * diverged chain, and a full whose key already holds an object.
 */
export function planBackup(
  local: LocalSnapshot[],
  chains: Chains,
  options: PlanBackupOptions = {},
): BackupPlan {
  const remote = chains.remote;
  let index = local.length - 1;
  if (options.target !== undefined) {
    const wanted = options.target;
    index = local.findIndex((s) => s.snapshot === wanted || s.name === wanted);
    if (index < 0) {
      throw new UsageError(`Cannot back up ${quote(wanted)}: no such local snapshot`);
    }
  } else if (index < 0) {
    throw new UsageError(
      `Cannot back up: no local snapshots; check FILESYSTEM and SNAPSHOT_PREFIX`,
    );
  }
  const target = local[index];
  let baseIndex = index;
  while (baseIndex >= 0 && !remote.has(local[baseIndex].name)) baseIndex--;
  const base = baseIndex < 0 ? undefined : local[baseIndex];
  if (options.full) {
    refuseOverwrite(target, chains);
    // The base is not sent from: it is named so that its hold is released.
    const steps = [{ snapshot: target }];
    return base === undefined ? { steps, target } : { steps, base, target };
  }
  // A diverged history first: it explains a broken link too.
  checkGuids(target, local, remote);
  if (base !== undefined) {
    const baseHealth = chains.health(base.name);
    if (baseHealth !== "ok") {
      throw new ChainError(
        `Cannot back up ${quote(target.name)}: ${quote(base.name)} in the bucket is broken ` +
          `(${chains.why(base.name)}); ${START_OVER}`,
      );
    }
  }
  const fullEvery = options.fullEvery ?? 0;
  // Incrementals in a row below the next step.
  let run = base === undefined ? 0 : chains.depth(base.name);
  const steps: BackupStep[] = [];
  for (let i = baseIndex + 1; i <= index; i++) {
    if (i === 0 || (fullEvery > 0 && run + 1 > fullEvery)) {
      steps.push({ snapshot: local[i] });
      run = 0;
    } else {
      steps.push({ snapshot: local[i], from: local[i - 1] });
      run++;
    }
  }
  return base === undefined ? { steps, target } : { steps, base, target };
}
