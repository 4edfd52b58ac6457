/**
 * Pure: S3 Object Lock as z3 uses it. The retention a run sets (`OBJECT_LOCK_DAYS`,
 * `OBJECT_LOCK_MODE`, never weaker than the bucket's default rule), the strict reading of the
 * lock headers the (untrusted) bucket sends back, and the one rule that keeps chains whole: an
 * object must stay locked at least as long as every object that builds on it. No I/O.
 *
 * @module
 */

import type { Chains } from "./walk.ts";
import type { BucketLock, LockHeaders, Retention } from "../backend/s3.ts";
import type { RemoteSnapshot } from "./types.ts";
import type { LockMode, LockState } from "./types.ts";

const DAY_MS = 86_400_000;

/** ISO 8601 UTC, as S3 writes it; up to nine fraction digits (Ceph 16 sends nine). */
const ISO_UTC = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z$/;

/**
 * Parses the lock headers strictly: the mode must be `GOVERNANCE` or `COMPLIANCE`, the date a
 * real UTC timestamp (`2026-12-01T13:43:39.112000000Z`), and both present or both absent.
 * Anything else is `unreadable`, never a guess.
 */
export function parseLock(headers: LockHeaders | undefined): LockState {
  const mode = headers?.mode;
  const until = headers?.until;
  if (mode === undefined && until === undefined) return { kind: "none" };
  const show = (v: string | undefined) => v === undefined ? "none" : JSON.stringify(v);
  const bad = (why: string): LockState => ({
    kind: "unreadable",
    detail: `lock mode ${show(mode)}, retain-until ${show(until)}: ${why}`,
  });
  if (mode !== "GOVERNANCE" && mode !== "COMPLIANCE") return bad("not a lock mode");
  const m = until === undefined ? null : ISO_UTC.exec(until);
  if (!m) return bad("not a UTC date");
  const [, y, mo, d, h, mi, s, frac = ""] = m;
  const ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, Number(frac.padEnd(3, "0").slice(0, 3)));
  const date = new Date(ms);
  // Date.UTC rolls 2026-02-30 over into March: a date that does not read back is no date.
  if (
    date.getUTCFullYear() !== +y || date.getUTCMonth() !== +mo - 1 || date.getUTCDate() !== +d ||
    date.getUTCHours() !== +h || date.getUTCMinutes() !== +mi || date.getUTCSeconds() !== +s
  ) return bad("not a UTC date");
  return { kind: "locked", mode, until: date };
}

/** Whether the server would refuse to delete the object at `now`; an unreadable lock counts. */
export function isLocked(state: LockState, now: Date): boolean {
  if (state.kind === "unreadable") return true;
  return state.kind === "locked" && state.until.getTime() > now.getTime();
}

/** The end of the retention, when it parsed. */
export function lockedUntil(state: LockState): Date | undefined {
  return state.kind === "locked" ? state.until : undefined;
}

/** `GOVERNANCE until 2026-12-08T13:00:00.000Z`, `unreadable (…)`, or `none`. */
export function describeLock(state: LockState): string {
  if (state.kind === "none") return "none";
  if (state.kind === "unreadable") return `unreadable (${state.detail})`;
  return `${state.mode} until ${state.until.toISOString()}`;
}

/** A lock as status shows it: `lockMode` and `lockUntil` (ISO 8601); nothing for none. */
export function lockColumns(
  state: LockState | undefined,
): { lockMode?: LockMode | "unreadable"; lockUntil?: string } {
  if (state === undefined || state.kind === "none") return {};
  if (state.kind === "unreadable") return { lockMode: "unreadable" };
  return { lockMode: state.mode, lockUntil: state.until.toISOString() };
}

/**
 * The Object Lock a run gives its new objects: how many days from the moment each object is
 * locked, in which mode, and a line saying how the bucket's default rule changed them. Each
 * object's date comes from {@linkcode retentionAt} when that object is locked, so an object
 * written hours into a run is locked as long, counted from its own creation, as the first.
 */
export interface LockPolicy {
  /** Days from the moment an object is locked. */
  days: number;
  mode: LockMode;
  /** Set when the bucket's default rule made the retention longer or the mode stricter. */
  note?: string;
}

/**
 * The policy of a run: `days` in `mode`, but never weaker than the bucket's default rule (an
 * explicit retention replaces the default one on an object, so z3 would otherwise undo the
 * rule): the longer period and the stricter mode of the two. A year of the rule counts 365
 * days.
 */
export function lockPolicy(days: number, mode: LockMode, rule?: BucketLock["rule"]): LockPolicy {
  const ruleDays = (rule?.days ?? 0) + (rule?.years ?? 0) * 365;
  const ruleMode = rule?.mode === "COMPLIANCE" ? "COMPLIANCE" : "GOVERNANCE";
  const stricter = mode === "COMPLIANCE" || ruleMode === "COMPLIANCE" ? "COMPLIANCE" : mode;
  const effective = ruleDays > 0 ? Math.max(days, ruleDays) : days;
  const finalMode = ruleDays > 0 ? stricter : mode;
  if (ruleDays > 0 && (effective !== days || finalMode !== mode)) {
    return {
      days: effective,
      mode: finalMode,
      note: `object lock: the bucket's default rule (${ruleMode}, ${ruleDays} days) is stricter ` +
        `than OBJECT_LOCK_DAYS=${days} OBJECT_LOCK_MODE=${mode}: using ${finalMode}, ` +
        `${effective} days`,
    };
  }
  return { days: effective, mode: finalMode };
}

/** The retention of an object locked at `now` under `policy`: `policy.days` from `now`. */
export function retentionAt(policy: LockPolicy, now: Date): Retention {
  return { mode: policy.mode, until: new Date(now.getTime() + policy.days * DAY_MS) };
}

/** The retention of an object locked at one moment, and the note of its policy. */
export interface RunRetention {
  retention: Retention;
  /** Set when the bucket's default rule made the retention longer or the mode stricter. */
  note?: string;
}

/**
 * {@linkcode lockPolicy} and {@linkcode retentionAt} together: the retention of an object
 * locked at `options.now`.
 */
export function runRetention(
  days: number,
  mode: LockMode,
  options: { now: Date; rule?: BucketLock["rule"] },
): RunRetention {
  const policy = lockPolicy(days, mode, options.rule);
  const retention = retentionAt(policy, options.now);
  return policy.note === undefined ? { retention } : { retention, note: policy.note };
}

/**
 * The retention to give an object locked as `state` so that it lasts until `until`: `undefined`
 * when it already does; else `until`, keeping the object's own mode while it is locked (a
 * COMPLIANCE lock cannot become GOVERNANCE), else `mode`.
 */
export function extension(
  state: LockState,
  until: Date,
  mode: LockMode,
  now: Date,
): Retention | undefined {
  if (state.kind === "locked" && state.until.getTime() >= until.getTime()) return undefined;
  const keep = state.kind === "locked" && state.until.getTime() > now.getTime();
  return { mode: keep ? state.mode : mode, until };
}

/**
 * Why `state`, a lock that has not ended at `now`, is weaker in mode than `required`
 * (`retention (GOVERNANCE until …) is GOVERNANCE, but …`, for "its " or "its check record's "): a
 * GOVERNANCE lock where COMPLIANCE is required (`OBJECT_LOCK_MODE=compliance`), which a user with
 * `s3:BypassGovernanceRetention` can shorten or remove; `undefined` when the mode holds, or there
 * is no running lock (dates are {@linkcode chainNeeds}'s to judge).
 */
export function modeShortfall(
  state: LockState,
  required: LockMode,
  now: Date,
): string | undefined {
  if (required !== "COMPLIANCE" || state.kind !== "locked" || state.mode === "COMPLIANCE") {
    return undefined;
  }
  if (state.until.getTime() <= now.getTime()) return undefined;
  return `retention (${describeLock(state)}) is GOVERNANCE, but OBJECT_LOCK_MODE is ` +
    `COMPLIANCE: a user with s3:BypassGovernanceRetention can shorten or remove it`;
}

/** The latest retention among an object's descendants, and which one holds it. */
export interface ChainNeed {
  until: Date;
  /** The descendant (`dataset@snap`) locked that long. */
  by: string;
}

/**
 * For every object that something builds on, the latest retention of any object above it in
 * its chain (the objects whose {@linkcode Chains.ancestors} walk passes it): that object needs
 * it until then; at an equal date, the first such object in `chains.remote` names it. Only
 * retentions that have not ended at `now` count (an ended one protects nothing any more).
 * Linear after a sort by depth: each object hands the latest of its own retention and its need
 * to its parent, deepest first. Objects in a loop of links (health `cycle detected`) walk their
 * chain each, as they cannot be ordered by depth.
 */
export function chainNeeds(
  chains: Chains,
  lockOf: (snap: RemoteSnapshot) => LockState,
  now: Date,
): Map<string, ChainNeed> {
  const needs = new Map<string, ChainNeed & { index: number }>();
  const offer = (name: string, need: ChainNeed & { index: number }) => {
    const had = needs.get(name);
    const t = need.until.getTime();
    if (!had || had.until.getTime() < t || (had.until.getTime() === t && had.index > need.index)) {
      needs.set(name, need);
    }
  };
  const own = (snap: RemoteSnapshot, index: number) => {
    const until = lockedUntil(lockOf(snap));
    return until === undefined || until.getTime() <= now.getTime()
      ? undefined
      : { until, by: snap.name, index };
  };
  const sound: { snap: RemoteSnapshot; index: number; depth: number }[] = [];
  let index = 0;
  for (const snap of chains.remote.values()) {
    const i = index++;
    if (chains.health(snap.name) !== "cycle detected") {
      sound.push({ snap, index: i, depth: chains.depth(snap.name) });
      continue;
    }
    const mine = own(snap, i);
    if (mine === undefined) continue;
    for (const ancestor of chains.ancestors(snap.name)) {
      if (ancestor.name !== snap.name) offer(ancestor.name, mine);
    }
  }
  sound.sort((a, b) => b.depth - a.depth);
  for (const { snap, index } of sound) {
    const link = chains.link(snap);
    if (link.kind !== "parent") continue;
    const mine = own(snap, index);
    if (mine !== undefined) offer(link.parent.name, mine);
    const above = needs.get(snap.name);
    if (above !== undefined) offer(link.parent.name, above);
  }
  return new Map([...needs].map(([name, { until, by }]) => [name, { until, by }]));
}
