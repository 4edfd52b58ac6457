/**
 * The hold on the base: after a backup, z3 holds the newest snapshot it uploaded (`zfs hold`
 * with a tag of its own, one per bucket and prefix) and releases the snapshot the run started
 * from, so that a snapshot tool (sanoid, zfs-auto-snapshot) cannot destroy the snapshot the next
 * incremental must be sent from. zfs-fuse has `hold` and `release` but no working `zfs holds`,
 * so z3 never lists holds: `status` names the snapshot z3 holds by its own knowledge (the newest
 * snapshot that is both local and in the bucket) and shows its `userrefs` count.
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
 * and in the bucket) with its `userrefs`, which counts every tool's holds, not only z3's.
 */
export async function holdStatus(
  config: Config,
  bucket: string,
  dataset: string,
  rows: StatusRow[],
): Promise<string> {
  const tag = holdTag(bucket, config.s3Prefix);
  const base = rows.findLast((r) => r.localState === "ok" && r.type !== "missing");
  if (!config.hold) return `hold: off (HOLD=false; tag ${tag})`;
  if (!base) return `hold: none (no snapshot is both local and in the bucket; tag ${tag})`;
  const name = `${dataset}@${base.name}`;
  const refs = await zfs.getUserRefs(name);
  return refs > 0
    ? `hold: ${name} (tag ${tag}; userrefs ${refs})`
    : `hold: none on ${name}, the newest snapshot in the bucket (userrefs 0; tag ${tag}): ` +
      `the next backup holds it`;
}
