/**
 * The hold on the base: after a backup, z3 holds the newest snapshot it uploaded (`zfs hold`
 * with a tag of its own, one per bucket and prefix) and releases the snapshot the run started
 * from, so that a snapshot tool (sanoid, zfs-auto-snapshot) cannot destroy the snapshot the next
 * incremental must be sent from. zfs-fuse has `hold` and `release` but no working `zfs holds`,
 * so z3 never lists hold tags: `status` names the snapshot z3 holds by its own knowledge (the
 * newest snapshot that is both local and in the bucket) with its `userrefs` count, and every
 * other snapshot whose `userrefs` is above 0.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { type StatusRow } from "../chain/status_rows.ts";
import type { Config } from "../config/config.ts";
import * as zfs from "./zfs.ts";
import { normalizePrefix } from "../config/prefix.ts";

/** z3's hold tag for `bucket` and `prefix`: `z3:` + 12 hex digits of their SHA-256. */
export function holdTag(bucket: string, prefix: string): string {
  const digest = createHash("sha256").update(`${bucket}\0${normalizePrefix(prefix)}`).digest(
    "hex",
  );
  return `z3:${digest.slice(0, 12)}`;
}

/**
 * After a successful backup up to `newest`: holds it and releases `previous` (the base the run
 * started from), in that order, so a failed hold leaves the old one in place. With `HOLD=false`
 * only the release runs, so that turning holds off frees the last one. Idempotent: a hold that
 * is already there, or a release of one that is not, is success.
 */
export async function moveHold(
  config: Config,
  bucket: string,
  previous: string | undefined,
  newest: string,
  err: (line: string) => void,
): Promise<void> {
  const tag = holdTag(bucket, config.s3Prefix);
  if (config.hold) {
    await zfs.hold(tag, newest);
    err(`${newest}: held (zfs hold ${tag}) as the base of the next backup`);
  }
  if (previous !== undefined && (previous !== newest || !config.hold)) {
    await zfs.release(tag, previous);
  }
}

/** The argv lines `backup --dry-run` prints for the hold a real run would move. */
export function holdArgvLines(
  config: Config,
  bucket: string,
  previous: string | undefined,
  newest: string,
): string[][] {
  const tag = holdTag(bucket, config.s3Prefix);
  const lines: string[][] = [];
  if (config.hold) lines.push(zfs.holdArgv(tag, newest));
  if (previous !== undefined && (previous !== newest || !config.hold)) {
    lines.push(zfs.releaseArgv(tag, previous));
  }
  return lines;
}

/**
 * One line for `status`: the snapshot z3's hold should be on (the newest row that is both local
 * and in the bucket) with its `userrefs`, which counts every tool's holds, not only z3's; then
 * every other snapshot of the dataset with a hold (`heldSnapshots`), since one may be a hold of
 * z3's that was never released.
 */
export async function holdStatus(
  config: Config,
  bucket: string,
  dataset: string,
  rows: StatusRow[],
): Promise<string> {
  const base = rows.findLast((r) => r.localState === "ok" && r.type !== "missing");
  const held = await zfs.heldSnapshots(dataset);
  return describeHolds({
    tag: holdTag(bucket, config.s3Prefix),
    hold: config.hold,
    base: base && `${dataset}@${base.name}`,
    held,
  });
}

/** What {@linkcode describeHolds} reports on. */
export interface HoldFacts {
  /** z3's tag for this bucket and prefix. */
  tag: string;
  /** `HOLD`. */
  hold: boolean;
  /** The snapshot z3's hold should be on; undefined when none is both local and in the bucket. */
  base?: string;
  /** Every snapshot of the dataset with `userrefs` above 0, and the count. */
  held: ReadonlyMap<string, number>;
}

/** The `status` hold line from `facts`: the base's hold, then every other held snapshot. */
export function describeHolds(facts: HoldFacts): string {
  const { tag, base, held } = facts;
  const refs = base === undefined ? 0 : held.get(base) ?? 0;
  const first = !facts.hold
    ? `hold: off (HOLD=false; tag ${tag})`
    : base === undefined
    ? `hold: none (no snapshot is both local and in the bucket; tag ${tag})`
    : refs > 0
    ? `hold: ${base} (tag ${tag}; userrefs ${refs})`
    : `hold: none on ${base}, the newest snapshot in the bucket (userrefs 0; tag ${tag}): ` +
      `the next backup holds it`;
  const others = [...held].filter(([name]) => facts.hold === false || name !== base);
  if (others.length === 0) return first;
  const list = others.map(([name, n]) => `${name} (userrefs ${n})`).join(", ");
  return `${first}; also held: ${list}: if a hold is z3's (tag ${tag}) and not on the base, ` +
    `an earlier run left it: \`zfs release ${tag} SNAPSHOT\` lets it go`;
}
