/**
 * Pure: local snapshots + the bucket's objects → backup plans, restore plans, chain health and
 * status rows. No I/O; callers list the pool and the bucket and feed the results in.
 *
 * Reads buckets written by the original Python z3: an object's key is `S3_PREFIX` +
 * `dataset@snap`; its metadata says `isfull=true` (old objects: `is_full`) or names its
 * `parent` as `dataset@snap`, and may carry `compressor` and `size` (an estimate, in bytes).
 * Objects written by this z3 also record `z3-guid`, `z3-parent-guid` and `z3-created`; where
 * present they are checked against the pool's GUIDs, where absent matching is by name alone.
 *
 * @module
 */

import { type Chains, type Health, quote } from "./walk.ts";
import { ChainError, UsageError } from "../base/errors.ts";

export type { Health } from "./walk.ts";
import type { LocalSnapshot } from "./types.ts";
import type { RemoteSnapshot } from "./types.ts";
import { normalizePrefix } from "../config/prefix.ts";

/** Metadata keys this module reads (all lower case, as S3 returns them). */
export const META_KEYS = {
  isFull: "isfull",
  isFullLegacy: "is_full",
  parent: "parent",
  compressor: "compressor",
  size: "size",
  guid: "z3-guid",
  parentGuid: "z3-parent-guid",
  created: "z3-created",
} as const;

/** The object key of `snapshotFullName` (`dataset@snap`) under `prefix`. */
export function keyFor(prefix: string, snapshotFullName: string): string {
  return normalizePrefix(prefix) + snapshotFullName;
}

/** Short name after the first `@`, or the whole name when it has none. */
export function shortName(fullName: string): string {
  const at = fullName.indexOf("@");
  return at < 0 ? fullName : fullName.slice(at + 1);
}

const DECIMAL = /^[0-9]+$/;

function decimal(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed !== undefined && DECIMAL.test(trimmed) ? trimmed : undefined;
}

function safeNumber(value: string | undefined): number | undefined {
  const text = decimal(value);
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function isTrue(value: string | undefined): boolean {
  return value?.trim().toLowerCase() === "true";
}

/** What an object's metadata says about its place in a chain (the part a check record covers). */
export interface Shape {
  /** True for a full stream. */
  isFull: boolean;
  /** For an incremental: its parent, `dataset@snap`, when recorded. */
  parent?: string;
  /** The snapshot's GUID (decimal), when recorded. */
  guid?: string;
  /** For an incremental: its parent's GUID (decimal), when recorded. */
  parentGuid?: string;
}

/** Reads the chain's shape from metadata (keys lower-cased); malformed GUIDs count as absent. */
export function shapeOf(meta: Record<string, string>): Shape {
  const isFull = isTrue(meta[META_KEYS.isFull]) || isTrue(meta[META_KEYS.isFullLegacy]);
  const shape: Shape = { isFull };
  const parent = isFull ? undefined : meta[META_KEYS.parent]?.trim() || undefined;
  if (parent !== undefined) shape.parent = parent;
  const guid = decimal(meta[META_KEYS.guid]);
  if (guid !== undefined) shape.guid = guid;
  const parentGuid = isFull ? undefined : decimal(meta[META_KEYS.parentGuid]);
  if (parentGuid !== undefined) shape.parentGuid = parentGuid;
  return shape;
}

/**
 * Parses one listed object of `dataset`. Returns `undefined` for keys that are not
 * `prefix + dataset@snap` (other datasets, child datasets, stray objects). Malformed optional
 * metadata (`size`, GUIDs, `z3-created`) is treated as absent.
 */
export function parseRemote(
  prefix: string,
  dataset: string,
  key: string,
  metadata: Record<string, string>,
  objectSize: number,
  lastModified?: Date,
): RemoteSnapshot | undefined {
  const head = normalizePrefix(prefix) + dataset + "@";
  if (!key.startsWith(head)) return undefined;
  const snapshot = key.slice(head.length);
  if (snapshot === "" || snapshot.includes("@") || snapshot.includes("/")) return undefined;
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) meta[k.toLowerCase()] = v;
  const remote: RemoteSnapshot = {
    name: `${dataset}@${snapshot}`,
    snapshot,
    key,
    ...shapeOf(meta),
    objectSize,
    metadata: meta,
  };
  const created = safeNumber(meta[META_KEYS.created]);
  if (created !== undefined) remote.created = created;
  const compressor = meta[META_KEYS.compressor]?.trim();
  if (compressor) remote.compressor = compressor;
  const size = safeNumber(meta[META_KEYS.size]);
  if (size !== undefined) remote.size = size;
  if (lastModified !== undefined) remote.lastModified = lastModified;
  return remote;
}

/** Indexes parsed objects by full name, the shape the other functions take. */
export function indexRemote(snapshots: Iterable<RemoteSnapshot>): Map<string, RemoteSnapshot> {
  const map = new Map<string, RemoteSnapshot>();
  for (const snap of snapshots) map.set(snap.name, snap);
  return map;
}

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
  /** Newest snapshot already in the bucket that the plan builds on; undefined when none. */
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

/** Refuses a `--full` of `target` onto a key whose object is another snapshot (other GUID). */
function refuseOverwrite(target: LocalSnapshot, chains: Chains): void {
  const stored = chains.remote.get(target.name)?.guid;
  if (stored === undefined || stored === target.guid) return;
  const needs = [...chains.descendants([target.name])].sort();
  const dependents = needs.length === 0
    ? "no other object depends on it"
    : `${needs.length} object(s) depend on it: ${needs.map(quote).join(", ")}`;
  throw new ChainError(
    `Cannot back up ${quote(target.name)} as a full: the bucket's object of that name is another ` +
      `snapshot (guid: local ${target.guid} vs bucket ${stored}) and writing over it would ` +
      `destroy that history (${dependents}); ${keepHistory(target.name)}`,
  );
}

/**
 * Plans a backup of `options.target` (default: the latest of `local`, which is oldest first and
 * already filtered by snapshot prefix). Every local snapshot after the newest one already in the
 * bucket (the base) is sent, each as an incremental from the one before, except that a new full
 * starts wherever `fullEvery` incrementals in a row would be exceeded. With no base, the oldest
 * local snapshot goes first as a full, so the bucket gets every restore point the host has.
 * `full` sends one full of the target and nothing else. Refuses a broken or diverged chain, and
 * a full that would write over another snapshot's object.
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
  if (options.full) {
    refuseOverwrite(target, chains);
    return { steps: [{ snapshot: target }], target };
  }

  let baseIndex = index;
  while (baseIndex >= 0 && !remote.has(local[baseIndex].name)) baseIndex--;
  const base = baseIndex < 0 ? undefined : local[baseIndex];
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

/** One object to download and `zfs receive`. */
export interface RestoreStep {
  /** The object to restore. */
  remote: RemoteSnapshot;
}

/** What a restore will download, oldest first. */
export interface RestorePlan {
  /** Objects to receive, oldest first; empty when the target already exists locally. */
  steps: RestoreStep[];
  /** Full name (as in the bucket) of the snapshot, present locally, the chain starts from. */
  base?: string;
}

/**
 * Plans the restore of `target` (full name in the bucket). Walks parents from the target until
 * a snapshot that already exists locally (`localGuids`: short name → GUID at the restore
 * target) or a full. Refuses a broken chain before anything is downloaded.
 */
export function planRestore(
  chains: Chains,
  target: string,
  localGuids: Map<string, string>,
): RestorePlan {
  if (!chains.remote.has(target)) {
    throw new UsageError(`Cannot restore ${quote(target)}: not in the bucket`);
  }
  if (chains.health(target) !== "ok") {
    throw new ChainError(
      `Cannot restore ${quote(target)}: its chain in the bucket is broken (${chains.why(target)})`,
    );
  }
  const newestFirst: RemoteSnapshot[] = [];
  let base: string | undefined;
  for (const current of chains.ancestors(target)) {
    const localGuid = localGuids.get(current.snapshot);
    if (localGuid !== undefined) {
      if (current.guid !== undefined && current.guid !== localGuid) {
        throw new ChainError(
          `Cannot restore ${quote(target)}: local snapshot ${quote(current.snapshot)} is not ` +
            `the one in the bucket (guid: local ${localGuid} vs bucket ${current.guid}); destroy ` +
            `it or restore into another dataset`,
        );
      }
      const child = newestFirst.at(-1);
      if (child?.parentGuid !== undefined && child.parentGuid !== localGuid) {
        throw new ChainError(
          `Cannot restore ${quote(target)}: ${quote(child.name)} was sent from another ` +
            `${
              quote(current.snapshot)
            } (guid: local ${localGuid} vs bucket ${child.parentGuid}); ` +
            `destroy the local snapshot or restore into another dataset`,
        );
      }
      base = current.name;
      break;
    }
    newestFirst.push(current);
  }
  const steps = newestFirst.reverse().map((snap) => ({ remote: snap }));
  return base === undefined ? { steps } : { steps, base };
}

/** One line of `z3 status`, as in the original's table. */
export interface StatusRow {
  /** Short snapshot name. */
  name: string;
  /** Short parent name; `""` for a full, `"-"` when not in the bucket. */
  parent: string;
  /** Kind of object, or `missing` when the snapshot is not in the bucket. */
  type: "full" | "incremental" | "missing";
  /** Chain health, `"-"` when not in the bucket. */
  health: Health | "-";
  /** Whether the snapshot exists in the local pool. */
  localState: "ok" | "missing";
  /** Bytes: the recorded stream size estimate, else the object size; undefined if not stored. */
  size?: number;
  /** GUID: the local one, else the one recorded in the bucket. */
  guid?: string;
  /** Why the chain is broken (see {@linkcode Chains.why}); absent when it is not. */
  why?: string;
  /** When ZFS created the snapshot (the pool's, else the recorded `z3-created`), ISO 8601 UTC. */
  created?: string;
  /** When its object was uploaded (LastModified), ISO 8601 UTC; absent when not in the bucket. */
  uploaded?: string;
}

function remoteRow(
  snap: RemoteSnapshot,
  chains: Chains,
  localState: "ok" | "missing",
  guid: string | undefined,
): StatusRow {
  const health = chains.health(snap.name) ?? "-";
  const row: StatusRow = {
    name: snap.snapshot,
    // The short name, unless the parent lies in another dataset (then say which).
    parent: snap.isFull || snap.parent === undefined
      ? ""
      : snap.parent.startsWith(snap.name.slice(0, snap.name.indexOf("@") + 1))
      ? shortName(snap.parent)
      : snap.parent,
    type: snap.isFull ? "full" : "incremental",
    health,
    localState,
    size: snap.size ?? snap.objectSize,
  };
  if (guid !== undefined) row.guid = guid;
  if (health !== "ok" && health !== "-") row.why = chains.why(snap.name);
  if (snap.created !== undefined) row.created = isoSeconds(snap.created);
  if (snap.lastModified !== undefined) row.uploaded = snap.lastModified.toISOString();
  return row;
}

/** Seconds since the epoch as ISO 8601 UTC. */
function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

/**
 * Time of a snapshot in the bucket, in ms since the epoch: its recorded creation (`z3-created`),
 * else when the object was uploaded; undefined when neither is known. Prune's time order;
 * status places a snapshot without `z3-created` by its parent links first (`statusRows`).
 */
export function timeOf(snap: RemoteSnapshot): number | undefined {
  if (snap.created !== undefined) return snap.created * 1000;
  return snap.lastModified?.getTime();
}

/**
 * How two of the bucket's snapshots recorded in the same second are ordered (`z3-created` has
 * 1 s resolution, and two snapshots of one second are common: sanoid's hourly and daily). In one
 * chain (the same full at its base) an ancestor goes before its descendants, a fact of the
 * links; across chains by upload time (z3 uploads in the pool's createtxg order), where known;
 * then by name. A full is not older than an incremental of another chain just for being a full.
 * Each chain position is computed once per order.
 */
export function sameSecondOrder(chains: Chains): (a: RemoteSnapshot, b: RemoteSnapshot) => number {
  const places = new Map<string, { base: string; depth: number }>();
  const place = (name: string) => {
    let known = places.get(name);
    if (known === undefined) {
      let base = name;
      for (const snap of chains.ancestors(name)) base = snap.name;
      places.set(name, known = { base, depth: chains.depth(name) });
    }
    return known;
  };
  return (a, b) => {
    const pa = place(a.name);
    const pb = place(b.name);
    if (pa.base === pb.base && pa.depth !== pb.depth) return pa.depth - pb.depth;
    const la = a.lastModified?.getTime();
    const lb = b.lastModified?.getTime();
    if (la !== undefined && lb !== undefined && la !== lb) return la - lb;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  };
}

/**
 * Prune's time order of the bucket's snapshots, oldest first: by {@linkcode timeOf}, unknown
 * times last; within one second by {@linkcode sameSecondOrder}. Status places bucket-only rows
 * among the pool's by `bucketTime`, with the same tie-break.
 */
export function timeOrder(chains: Chains): (a: RemoteSnapshot, b: RemoteSnapshot) => number {
  const tie = sameSecondOrder(chains);
  return (a, b) => {
    const ta = timeOf(a);
    const tb = timeOf(b);
    if (ta !== undefined && tb !== undefined && ta !== tb) return ta - tb;
    if (ta !== undefined && tb === undefined) return -1;
    if (ta === undefined && tb !== undefined) return 1;
    return tie(a, b);
  };
}

/**
 * Where a snapshot only in the bucket falls in creation order, in seconds: its recorded creation
 * (`z3-created`); else, through the chain's parent links, just after its nearest ancestor whose
 * creation is known (the pool's, by short name in `localTimes`, or recorded); else its upload
 * time; undefined when nothing is known.
 */
function bucketTime(
  snap: RemoteSnapshot,
  chains: Chains,
  localTimes: ReadonlyMap<string, number>,
): number | undefined {
  for (const s of chains.ancestors(snap.name)) {
    const t = localTimes.get(s.name) ?? s.created;
    if (t !== undefined) return t;
  }
  const uploaded = snap.lastModified?.getTime();
  return uploaded === undefined ? undefined : uploaded / 1000;
}

/**
 * Rows for `z3 status`, in creation order: the local snapshots in their (createtxg) order, each
 * with its object if any, and the snapshots only in the bucket whose short name starts with
 * `snapshotPrefix` among them by {@linkcode bucketTime} (at an equal second, an ancestor of the
 * local snapshot goes first); those with no time at all come last, by name. Health is over every
 * object of `chains`: a parent outside the prefix still counts.
 */
export function statusRows(
  local: LocalSnapshot[],
  chains: Chains,
  snapshotPrefix = "",
): StatusRow[] {
  const localTimes = new Map(local.map((s) => [s.name, s.creation]));
  const localRows = local.map((snap) => {
    const stored = chains.remote.get(snap.name);
    const row: StatusRow = stored !== undefined ? remoteRow(stored, chains, "ok", snap.guid) : {
      name: snap.snapshot,
      parent: "-",
      type: "missing",
      health: "-",
      localState: "ok",
      guid: snap.guid,
    };
    row.created = isoSeconds(snap.creation);
    return { row, time: snap.creation as number | undefined, name: snap.name };
  });
  const tie = sameSecondOrder(chains);
  const bucketOnly = [...chains.remote.values()]
    .filter((s) => !localTimes.has(s.name) && s.snapshot.startsWith(snapshotPrefix))
    .map((snap) => ({
      row: remoteRow(snap, chains, "missing", snap.guid),
      time: bucketTime(snap, chains, localTimes),
      name: snap.name,
      snap,
    }))
    .sort((a, b) => {
      if (a.time !== b.time) {
        if (a.time === undefined) return 1;
        if (b.time === undefined) return -1;
        return a.time - b.time;
      }
      return tie(a.snap, b.snap);
    });
  const rows: StatusRow[] = [];
  let left = bucketOnly;
  for (const l of localRows) {
    const ancestors = new Set<string>();
    if (chains.remote.has(l.name)) {
      for (const a of chains.ancestors(l.name)) ancestors.add(a.name);
    }
    const before = (b: typeof bucketOnly[number]) =>
      ancestors.has(b.name) || (b.time !== undefined && l.time !== undefined && b.time < l.time);
    for (const b of left) if (before(b)) rows.push(b.row);
    left = left.filter((b) => !before(b));
    rows.push(l.row);
  }
  for (const b of left) rows.push(b.row);
  return rows;
}

/**
 * Size as the original z3 printed it: mebibytes and up, two decimals at most, trailing zeros
 * dropped (`"12.5 M"`, `"1.23 G"`, `"3 T"`); below 1 MiB in kibibytes (`"97.66 K"`), below
 * 1 KiB in bytes (`"312 B"`), never `"0 M"`; `""` when unknown.
 */
export function humanSize(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const two = (n: number) => n.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
  if (bytes < 1024 ** 2) return `${two(bytes / 1024)} K`;
  const units = ["M", "G", "T"];
  let size = bytes / 1024 ** 2;
  let unit = 0;
  while (size > 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return `${two(size)} ${units[unit]}`;
}
