/**
 * Bookmarks of the base (OpenZFS feature `bookmarks`): after a backup, z3 bookmarks the newest
 * snapshot it uploaded as `DATASET#z3-<hex>-<snapshot>` (`<hex>` as in the hold tag, one per
 * bucket and prefix) and then destroys its older bookmarks of that tag. When the base snapshot
 * itself is gone locally (a snapshot tool destroyed it) but its bookmark is there, with the GUID
 * the bucket recorded, the next incremental is sent from the bookmark (`zfs send -i DS#bm`).
 * A zfs without bookmarks (zfs-fuse), or a pool without the feature, is said in one line per
 * run; the hold alone keeps the base there.
 *
 * @module
 */

import { holdTag } from "./holds.ts";
import * as zfs from "./zfs.ts";
import type { LocalSnapshot, RemoteSnapshot } from "../chain/types.ts";

/** The prefix of z3's bookmark names for `bucket` and `prefix`: `z3-<12 hex>-`. */
export function bookmarkPrefix(bucket: string, prefix: string): string {
  return `z3-${holdTag(bucket, prefix).slice("z3:".length)}-`;
}

/** z3's bookmark of `snapshot` (`pool/fs@snap`) for `bucket` and `prefix`: `pool/fs#z3-…-snap`. */
export function bookmarkFor(bucket: string, prefix: string, snapshot: string): string {
  const at = snapshot.indexOf("@");
  return `${snapshot.slice(0, at)}#${bookmarkPrefix(bucket, prefix)}${snapshot.slice(at + 1)}`;
}

/**
 * The snapshots to plan with: `local` plus, for each of z3's `bookmarks` (of this bucket and
 * prefix) whose snapshot is gone locally but in the bucket with the bookmark's GUID, that
 * snapshot, all in zfs's order (`createtxg`, {@linkcode zfs.inTxgOrder}; a bookmark keeps its
 * snapshot's); `sendFrom` maps its name to the bookmark to send from.
 */
export function withBookmarkedBases(
  dataset: string,
  local: LocalSnapshot[],
  remote: Map<string, RemoteSnapshot>,
  bookmarks: zfs.LocalBookmark[],
  prefix: string,
): { local: LocalSnapshot[]; sendFrom: Map<string, string> } {
  const sendFrom = new Map<string, string>();
  const have = new Set(local.map((s) => s.name));
  const added: LocalSnapshot[] = [];
  for (const b of bookmarks) {
    if (!b.bookmark.startsWith(prefix)) continue;
    const short = b.bookmark.slice(prefix.length);
    const name = `${dataset}@${short}`;
    if (have.has(name) || remote.get(name)?.guid !== b.guid) continue;
    const { guid, createtxg, creation } = b;
    added.push({ name, snapshot: short, guid, createtxg, creation });
    sendFrom.set(name, b.name);
  }
  if (added.length === 0) return { local, sendFrom };
  return { local: zfs.inTxgOrder([...local, ...added]), sendFrom };
}

/** What {@linkcode moveBookmark} does: the bookmark of `newest`, whether to make it, the old ones. */
function bookmarkPlan(
  bookmarks: zfs.LocalBookmark[],
  bucket: string,
  prefix: string,
  newest: string,
): { wanted: string; make: boolean; stale: string[] } {
  const wanted = bookmarkFor(bucket, prefix, newest);
  const mine = bookmarkPrefix(bucket, prefix);
  return {
    wanted,
    make: !bookmarks.some((b) => b.name === wanted),
    stale: bookmarks.filter((b) => b.bookmark.startsWith(mine) && b.name !== wanted).map((b) =>
      b.name
    ),
  };
}

/**
 * The `zfs bookmark` and `zfs destroy` argvs {@linkcode moveBookmark} would run, for
 * `backup --dry-run`; none where this zfs has no bookmarks (`bookmarks` undefined).
 */
export function bookmarkArgvLines(
  bookmarks: zfs.LocalBookmark[] | undefined,
  bucket: string,
  prefix: string,
  newest: string,
): string[][] {
  if (bookmarks === undefined) return [];
  const plan = bookmarkPlan(bookmarks, bucket, prefix, newest);
  return [
    ...(plan.make ? [zfs.bookmarkArgv(newest, plan.wanted)] : []),
    ...plan.stale.map((b) => zfs.destroyBookmarkArgv(b)),
  ];
}

/**
 * After a successful backup up to `newest`: bookmarks it, then destroys z3's other bookmarks
 * of this tag (`bookmarks`, as listed before the run). `bookmarks` undefined: this zfs has none;
 * that, or a pool without the feature, is said in one line.
 */
export async function moveBookmark(
  bookmarks: zfs.LocalBookmark[] | undefined,
  bucket: string,
  prefix: string,
  newest: string,
  err: (line: string) => void,
): Promise<void> {
  if (bookmarks === undefined) {
    err(
      `${newest}: not bookmarked: this zfs has no bookmarks (zfs-fuse?); the hold alone keeps the base`,
    );
    return;
  }
  const plan = bookmarkPlan(bookmarks, bucket, prefix, newest);
  if (plan.make) {
    if (!await zfs.bookmark(newest, plan.wanted)) {
      err(
        `${newest}: not bookmarked: the pool lacks feature bookmarks; the hold alone keeps the base`,
      );
      return;
    }
    err(`${newest}: bookmarked as ${plan.wanted}`);
  }
  for (const name of plan.stale) await zfs.destroyBookmark(name);
}
