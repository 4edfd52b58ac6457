/**
 * Pure: the rows of `z3 status`, the pool's snapshots and the bucket's objects merged in creation
 * order, each with its chain health.
 *
 * @module
 */

import type { Chains, Health } from "./walk.ts";
import { shortName } from "./names.ts";
import { sameSecondOrder } from "./order.ts";
import type { LocalSnapshot, RemoteSnapshot } from "./types.ts";

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
 * For each object, the first creation time known down its {@linkcode Chains.ancestors} walk (the
 * pool's, by short name in `localTimes`, or recorded), memoised: each walk stops at an object
 * already answered and answers every object it passed, so all of them cost linear time.
 */
function knownTimes(
  chains: Chains,
  localTimes: ReadonlyMap<string, number>,
): (name: string) => number | undefined {
  const memo = new Map<string, number | undefined>();
  return (name) => {
    if (memo.has(name)) return memo.get(name);
    const path: string[] = [];
    let found: number | undefined;
    for (const s of chains.ancestors(name)) {
      if (memo.has(s.name)) {
        found = memo.get(s.name);
        break;
      }
      found = localTimes.get(s.name) ?? s.created;
      if (found !== undefined) {
        memo.set(s.name, found);
        break;
      }
      path.push(s.name);
    }
    for (const n of path) memo.set(n, found);
    return memo.get(name);
  };
}

/**
 * Where a snapshot only in the bucket falls in creation order, in seconds: its recorded creation
 * (`z3-created`); else, through the chain's parent links, just after its nearest ancestor whose
 * creation is known (`known`, see {@linkcode knownTimes}); else its upload time; undefined when
 * nothing is known.
 */
function bucketTime(
  snap: RemoteSnapshot,
  known: (name: string) => number | undefined,
): number | undefined {
  const t = known(snap.name);
  if (t !== undefined) return t;
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
  const known = knownTimes(chains, localTimes);
  const bucketOnly = [...chains.remote.values()]
    .filter((s) => !localTimes.has(s.name) && s.snapshot.startsWith(snapshotPrefix))
    .map((snap) => ({
      row: remoteRow(snap, chains, "missing", snap.guid),
      time: bucketTime(snap, known),
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
  return mergeRows(chains, localRows, bucketOnly);
}

/** A row with where it falls in creation order. */
interface Placed {
  row: StatusRow;
  time: number | undefined;
  name: string;
}

/**
 * The local rows in order, each preceded by the bucket-only rows (`bucketOnly`, sorted) not yet
 * placed that are its ancestors or older; the rest at the end. A local row's ancestors are walked
 * down to an object an earlier walk passed (whose ancestors are placed already), so every object
 * is walked once.
 */
function mergeRows(chains: Chains, localRows: Placed[], bucketOnly: Placed[]): StatusRow[] {
  const position = new Map(bucketOnly.map((b, i) => [b.name, i]));
  const placed = new Array<boolean>(bucketOnly.length).fill(false);
  const walked = new Set<string>();
  const rows: StatusRow[] = [];
  let next = 0;
  for (const l of localRows) {
    const due: number[] = [];
    for (const a of chains.remote.has(l.name) ? chains.ancestors(l.name) : []) {
      if (walked.has(a.name)) break;
      walked.add(a.name);
      const i = position.get(a.name);
      if (i !== undefined && !placed[i]) due.push(i);
    }
    for (; next < bucketOnly.length; next++) {
      const b = bucketOnly[next];
      if (placed[next]) continue;
      if (b.time === undefined || l.time === undefined || b.time >= l.time) break;
      due.push(next);
    }
    for (const i of due.sort((x, y) => x - y)) {
      if (placed[i]) continue;
      placed[i] = true;
      rows.push(bucketOnly[i].row);
    }
    rows.push(l.row);
  }
  bucketOnly.forEach((b, i) => placed[i] || rows.push(b.row));
  return rows;
}
