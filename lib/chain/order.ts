/**
 * Pure: the time order of the bucket's snapshots (prune's order, and status's tie-break), from
 * recorded creation times, upload times and, within one second, the chains' links.
 *
 * @module
 */

import type { Chains } from "./walk.ts";
import type { RemoteSnapshot } from "./types.ts";

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
 * Each object's chain position (the bottom of its chain, and its depth) is memoised by
 * {@linkcode Chains}: comparing costs constant time.
 */
export function sameSecondOrder(chains: Chains): (a: RemoteSnapshot, b: RemoteSnapshot) => number {
  const place = (name: string) => ({
    base: chains.bottom(name)?.name ?? name,
    depth: chains.depth(name),
  });
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
