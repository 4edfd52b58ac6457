/**
 * Pure: what a restore downloads. The bucket's chains and the target's local snapshots → the
 * objects to receive, oldest first, from a snapshot present locally or from a full; refuses a
 * broken chain or a local snapshot that is not the bucket's before anything is downloaded.
 *
 * @module
 */

import { type Chains, quote } from "./walk.ts";
import { ChainError, UsageError } from "../base/errors.ts";
import type { RemoteSnapshot } from "./types.ts";

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

/** What {@linkcode checkTarget} needs to know of the restore target. */
export interface RestoreTarget {
  /** The target dataset. */
  name: string;
  /** Whether it exists. */
  exists: boolean;
  /** Its snapshots' short names, oldest first. */
  snapshots: string[];
  /** `--force` (`zfs receive -F`): zfs rolls the target back instead of refusing. */
  force: boolean;
}

/**
 * Refuses, before any download, a plan that `zfs receive` would refuse without `-F`: a full
 * onto a dataset that exists, or incrementals onto a target with snapshots newer than the base.
 */
export function checkTarget(snapshot: string, plan: RestorePlan, target: RestoreTarget): void {
  if (plan.steps.length === 0 || target.force || !target.exists) return;
  const what = `Cannot restore ${quote(snapshot)} into ${quote(target.name)}`;
  const instead = "pass --force to let zfs receive -F roll it back (destroying what is newer), " +
    "or restore into another dataset";
  if (plan.base === undefined) {
    throw new ChainError(
      `${what}: it exists and shares no snapshot with the chain, so zfs receive would refuse ` +
        `the full stream; ${instead}`,
    );
  }
  const base = plan.base.slice(plan.base.indexOf("@") + 1);
  const newer = target.snapshots.slice(target.snapshots.indexOf(base) + 1);
  if (newer.length === 0) return;
  throw new ChainError(
    `${what}: it has ${newer.length} snapshot(s) newer than ${quote(base)}, the base of the ` +
      `restore (${newer.map(quote).join(", ")}), so zfs receive would refuse the ` +
      `incremental; ${instead}`,
  );
}
