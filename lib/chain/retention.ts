/**
 * Pure: which objects in the bucket a retention policy keeps, and in what order to delete the
 * rest. The grandfather-father-son scheme of restic's `forget` (and sanoid): keep the newest N
 * snapshots, and the newest snapshot in each of the most recent N hours, days, ISO weeks, months
 * and years (UTC) that have snapshots.
 *
 * Two rules come from the chains: an object a kept snapshot needs to be restored (every
 * ancestor down to its full) is never deleted, and objects of a broken chain are never touched
 * nor counted, since a human must look at them first. No I/O; callers list the bucket.
 *
 * @module
 */

import { timeOf, timeOrder } from "./order.ts";
import type { Chains } from "./walk.ts";
import { UsageError } from "../base/errors.ts";
import type { RemoteSnapshot } from "./types.ts";

/** How many snapshots to keep of each kind; an absent or zero count keeps none of that kind. */
export interface RetentionPolicy {
  /** Keep the newest N snapshots. */
  last?: number;
  /** Keep the newest snapshot of each of the most recent N hours that have snapshots. */
  hourly?: number;
  /** Keep the newest snapshot of each of the most recent N days (UTC) that have snapshots. */
  daily?: number;
  /** Keep the newest snapshot of each of the most recent N ISO weeks that have snapshots. */
  weekly?: number;
  /** Keep the newest snapshot of each of the most recent N months that have snapshots. */
  monthly?: number;
  /** Keep the newest snapshot of each of the most recent N years that have snapshots. */
  yearly?: number;
}

/** Setting names of the policy's counts, as in the config file and the environment. */
export const KEEP_KEYS = {
  last: "KEEP_LAST",
  hourly: "KEEP_HOURLY",
  daily: "KEEP_DAILY",
  weekly: "KEEP_WEEKLY",
  monthly: "KEEP_MONTHLY",
  yearly: "KEEP_YEARLY",
} as const satisfies Record<keyof RetentionPolicy, string>;

const KINDS = ["last", "hourly", "daily", "weekly", "monthly", "yearly"] as const;

/**
 * Throws `Cannot <what>: the policy keeps nothing; …` ({@linkcode UsageError}) when every count
 * of `policy` is absent or zero.
 */
export function requirePolicy(policy: RetentionPolicy, what = "prune"): void {
  if (!KINDS.some((kind) => (policy[kind] ?? 0) > 0)) {
    throw new UsageError(KEEPS_NOTHING.replace("Cannot prune", `Cannot ${what}`));
  }
}

/**
 * Reads the `KEEP_*` settings from `values` (setting name → raw text). Absent or blank settings
 * are left out; the others must be whole numbers ≥ 0. `where(key)` names the setting's source
 * in errors (`--keep-daily`, `$KEEP_DAILY`, `/etc/z3_backup/z3_backup.conf:12`). A policy that
 * keeps nothing is not an error here: {@linkcode planPrune} refuses it.
 *
 * @throws {UsageError} `Cannot parse KEEP_DAILY "x" from <where>: expected a whole number`
 */
export function parsePolicy(
  values: Record<string, string | undefined>,
  where: (key: string) => string = () => "the configuration",
): RetentionPolicy {
  const policy: RetentionPolicy = {};
  for (const kind of KINDS) {
    const key = KEEP_KEYS[kind];
    const raw = values[key];
    if (raw === undefined || raw.trim() === "") continue;
    const text = raw.trim();
    const n = Number(text);
    if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(n)) {
      throw new UsageError(
        `Cannot parse ${key} "${raw}" from ${where(key)}: expected a whole number`,
      );
    }
    policy[kind] = n;
  }
  return policy;
}

/** Why a snapshot is kept. */
export type KeepReason =
  | "last"
  | "hourly"
  | "daily"
  | "weekly"
  | "monthly"
  | "yearly"
  | "needed by a kept snapshot"
  | "unhealthy chain (left alone)"
  /** Object Lock: the server would refuse the delete (see `repository/prune_versions.ts`). */
  | `locked until ${string}`
  | `lock unreadable${string}`;

/** The verdict on one object. */
export interface PruneDecision {
  /** The object. */
  snapshot: RemoteSnapshot;
  /** True when the object stays; the same as `reasons.length > 0`. */
  keep: boolean;
  /** Every reason it stays, policy kinds first; empty when it is to be deleted. */
  reasons: KeepReason[];
}

/** What a prune keeps and deletes. */
export interface PrunePlan {
  /** One decision per object, oldest first. */
  decisions: PruneDecision[];
  /**
   * The objects to delete, newest first and every child before its parent, so that a prune
   * stopped part-way leaves only whole chains behind. No kept object needs any of them.
   */
  deletes: RemoteSnapshot[];
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Period of `ms` for each bucket kind, as a number that only grows with time: hours and days
 * since the epoch, ISO weeks (Monday to Sunday, UTC) since the one holding 1970-01-01 (a
 * Thursday), months and years. Every ISO week lies in one such period, across year ends too.
 */
const PERIODS: Record<Exclude<keyof RetentionPolicy, "last">, (ms: number) => number> = {
  hourly: (ms) => Math.floor(ms / HOUR),
  daily: (ms) => Math.floor(ms / DAY),
  weekly: (ms) => Math.floor((Math.floor(ms / DAY) + 3) / 7),
  monthly: (ms) => {
    const d = new Date(ms);
    return d.getUTCFullYear() * 12 + d.getUTCMonth();
  },
  yearly: (ms) => new Date(ms).getUTCFullYear(),
};

interface Entry {
  snapshot: RemoteSnapshot;
  time: number | undefined;
  reasons: KeepReason[];
}

const KEEPS_NOTHING = "Cannot prune: the policy keeps nothing; set KEEP_LAST or another KEEP_*";

/**
 * Decides which objects of one dataset `policy` keeps. Snapshots are ordered by
 * {@linkcode timeOrder} (unknown times as newest; one second's snapshots by chain position).
 * `last` keeps the newest N; each bucket kind keeps the newest snapshot in each of the most recent
 * N periods that have a snapshot, as restic's `forget` does (a day without snapshots does not use
 * up a slot). Objects whose health is not `ok` are kept and counted by no rule. Every ancestor of
 * a kept snapshot (through the links {@linkcode Chains.ancestors} follows), down to its full, is
 * kept as "needed by a kept snapshot". The sort makes O(n log n) comparisons; a tie within one
 * second walks each tied object's chain once (`sameSecondOrder` in `order.ts`), which adds up to
 * O(n·d) for chains d deep.
 *
 * `now` is accepted for rules relative to the present (a future `KEEP_WITHIN`); the
 * grandfather-father-son rules count periods that have snapshots and do not read it.
 *
 * `held` (Object Lock) names objects that must stay whatever the policy says, with the reason:
 * they count for no rule, but their ancestors are pinned like those of a kept snapshot.
 *
 * @throws {UsageError} when the policy keeps no snapshot: every count absent or zero, or none
 * of the healthy snapshots selected (bucket kinds select only snapshots with a known time).
 */
export function planPrune(
  chains: Chains,
  policy: RetentionPolicy,
  _now: Date,
  held: ReadonlyMap<string, KeepReason> = new Map(),
): PrunePlan {
  requirePolicy(policy);
  const entries = entriesOldestFirst(chains);
  const candidates = healthyNewestFirst(chains, entries);
  for (const kind of KINDS) applyRule(candidates, kind, policy[kind] ?? 0);
  const selected = candidates.filter((entry) => entry.reasons.length > 0);
  if (candidates.length > 0 && selected.length === 0) {
    throw new UsageError(
      `${KEEPS_NOTHING} (of ${candidates.length} snapshot(s), none records a creation or ` +
        `upload time for the hourly to yearly counts)`,
    );
  }
  pinAncestors(chains, entries, [...selected, ...addHeld(entries, held, selected)]);
  const decisions = entries.map((entry) => ({
    snapshot: entry.snapshot,
    keep: entry.reasons.length > 0,
    reasons: entry.reasons,
  }));
  const doomed = entries.filter((entry) => entry.reasons.length === 0);
  return { decisions, deletes: deleteOrder(chains, doomed) };
}

/** Every object of `chains` with its time and no reason yet, in {@linkcode timeOrder}. */
function entriesOldestFirst(chains: Chains): Entry[] {
  const entries: Entry[] = [...chains.remote.values()].map((snapshot) => ({
    snapshot,
    time: timeOf(snapshot),
    reasons: [],
  }));
  const order = timeOrder(chains);
  return entries.sort((a, b) => order(a.snapshot, b.snapshot));
}

/**
 * The candidates the policy counts: the healthy entries, newest first. The others are marked
 * "unhealthy chain (left alone)".
 */
function healthyNewestFirst(chains: Chains, entries: Entry[]): Entry[] {
  const candidates: Entry[] = [];
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i];
    if (chains.health(entry.snapshot.name) === "ok") candidates.push(entry);
    else entry.reasons.push("unhealthy chain (left alone)");
  }
  return candidates;
}

/** Adds `kind` to the reasons of the `count` candidates (newest first) that rule keeps. */
function applyRule(candidates: Entry[], kind: typeof KINDS[number], count: number): void {
  if (count <= 0) return;
  if (kind === "last") {
    for (const entry of candidates.slice(0, count)) entry.reasons.push("last");
    return;
  }
  const periodOf = PERIODS[kind];
  let kept = 0;
  let previous: number | undefined;
  for (const entry of candidates) {
    if (kept >= count) break;
    if (entry.time === undefined) continue;
    const period = periodOf(entry.time);
    if (period === previous) continue;
    previous = period;
    entry.reasons.push(kind);
    kept++;
  }
}

/** Adds each held object's reason; returns the held entries no rule selected. */
function addHeld(
  entries: Entry[],
  held: ReadonlyMap<string, KeepReason>,
  selected: Entry[],
): Entry[] {
  const counted = new Set(selected);
  const more: Entry[] = [];
  for (const entry of entries) {
    const reason = held.get(entry.snapshot.name);
    if (reason === undefined) continue;
    entry.reasons.push(reason);
    if (!counted.has(entry)) more.push(entry);
  }
  return more;
}

/**
 * Marks every ancestor of `kept` "needed by a kept snapshot". An ancestor already pinned had its
 * own ancestors pinned then: the walk stops there, so each object is visited once.
 */
function pinAncestors(chains: Chains, entries: Entry[], kept: Entry[]): void {
  const byName = new Map<string, Entry>();
  for (const entry of entries) byName.set(entry.snapshot.name, entry);
  const pinned = new Set<string>();
  for (const entry of kept) {
    for (const ancestor of chains.ancestors(entry.snapshot.name)) {
      if (ancestor === entry.snapshot) continue;
      if (pinned.has(ancestor.name)) break;
      pinned.add(ancestor.name);
      const parent = byName.get(ancestor.name)!;
      if (!parent.reasons.includes("needed by a kept snapshot")) {
        parent.reasons.push("needed by a kept snapshot");
      }
    }
  }
}

/**
 * Orders `doomed` (oldest first) newest first, except that a child always comes before its
 * parent even when their recorded times disagree: a post-order walk over children, started
 * from each object newest first. A child is an object whose link ({@linkcode Chains.link}, by
 * name and GUID) leads to the parent. Linear after the sort.
 */
function deleteOrder(chains: Chains, doomed: Entry[]): RemoteSnapshot[] {
  const children = new Map<string, RemoteSnapshot[]>();
  const names = new Set(doomed.map((entry) => entry.snapshot.name));
  for (const { snapshot } of doomed) {
    const link = chains.link(snapshot);
    if (link.kind !== "parent" || !names.has(link.parent.name)) continue;
    const parent = link.parent.name;
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [snapshot]);
    else list.push(snapshot);
  }
  const out: RemoteSnapshot[] = [];
  const visited = new Set<string>();
  for (let i = doomed.length - 1; i >= 0; i--) {
    const root = doomed[i].snapshot;
    if (visited.has(root.name)) continue;
    visited.add(root.name);
    const stack: { snapshot: RemoteSnapshot; next: number }[] = [{ snapshot: root, next: 0 }];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const kids = children.get(top.snapshot.name) ?? [];
      // Newest child first: `kids` is in oldest-first order.
      let pushed = false;
      while (top.next < kids.length) {
        const kid = kids[kids.length - 1 - top.next++];
        if (visited.has(kid.name)) continue;
        visited.add(kid.name);
        stack.push({ snapshot: kid, next: 0 });
        pushed = true;
        break;
      }
      if (!pushed) {
        stack.pop();
        out.push(top.snapshot);
      }
    }
  }
  return out;
}
