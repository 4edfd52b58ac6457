/**
 * `z3 prune`: deletes the bucket's objects that the retention policy (KEEP_*) does not keep,
 * never one that a kept snapshot's chain needs, never one of a broken chain, and nothing while
 * any object's metadata disagrees with its check record. Deletes go newest
 * first (children before parents), each object with its check record, so a prune that stops
 * midway leaves only whole chains. In a versioned (Object Lock) bucket, locked objects are
 * kept and expired ones deleted version by version (`repository/prune_versions.ts`).
 *
 * @module
 */

import { Chains } from "../chain/walk.ts";
import { checkKey } from "../repository/check_records.ts";
import { trustRemote } from "../repository/trusted_records.ts";
import { propertiesKey } from "../pipeline/properties.ts";
import type { Config } from "../config/config.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import { IntegrityError } from "../base/errors.ts";
import { printable } from "../chain/names.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import {
  parsePolicy,
  planPrune,
  type PrunePlan,
  type RetentionPolicy,
} from "../chain/retention.ts";
import { acquireBackupLock } from "../zfs/host_lock.ts";
import { withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";
import { deleteVersions, heldByLock } from "../repository/prune_versions.ts";
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";

/** One line of the prune report. */
export interface PruneLine {
  snapshot: string;
  action: "keep" | "delete";
  reasons: string[];
}

/** Options of `z3 prune`. */
export interface PruneOptions {
  dryRun?: boolean;
  /** The caller already holds the dataset's lock (`backup --prune`). */
  locked?: boolean;
  signal?: AbortSignal;
  err: (line: string) => void;
}

/**
 * Plans and (unless dry-run) carries out a prune; returns every decision, oldest first. A real
 * prune takes the dataset's lock before it lists the bucket, so that no backup changes what it
 * plans on (`backup --prune` passes the lock it holds); a dry run takes none.
 */
export async function prune(
  config: Config,
  store: S3Store,
  options: PruneOptions,
): Promise<PruneLine[]> {
  const dataset = requireDataset(config);
  const policy = parsePolicy(config.keep, (key) => config.sources[key] ?? "the configuration");
  const lock = options.dryRun || options.locked
    ? undefined
    : acquireBackupLock(dataset, { verb: "prune" });
  try {
    const { chains, plan } = await planDeletes(config, store, dataset, policy, options.signal);
    const lines = plan.decisions.map((d) => ({
      snapshot: d.snapshot.name,
      action: d.keep ? "keep" as const : "delete" as const,
      reasons: d.reasons,
    }));
    if (options.dryRun) return lines;
    const refused = await deleteAll(config, store, chains, plan.deletes, options);
    for (const line of lines) {
      const why = refused.get(line.snapshot);
      if (why !== undefined && line.action === "delete") {
        Object.assign(line, { action: "keep", reasons: [why] });
      }
    }
    return lines;
  } finally {
    lock?.release();
  }
}

/**
 * Lists the bucket, reads the check records and plans the prune. An object whose record is
 * missing counts as unhealthy (restore refuses it), so it is no kept restore point and is left
 * alone with what builds on it.
 */
async function planDeletes(
  config: Config,
  store: S3Store,
  dataset: string,
  policy: RetentionPolicy,
  signal: AbortSignal | undefined,
): Promise<{ chains: Chains; plan: PrunePlan }> {
  const attempts = config.maxRetries + 1;
  const remote = await loadRemote(store, config.s3Prefix, dataset, { signal, attempts });
  // A prune decides by each object's parent: metadata that disagrees with its check record may
  // point elsewhere than the object's real parent, so nothing is decided while any does.
  // With trusted keys: the fields of signed records, and the objects without one (`trusted_records.ts`).
  const flaws = await trustRemote(store, config, remote, { signal });
  const mismatched = [...flaws.values()].filter((f) => f.health === "record mismatch");
  if (mismatched.length > 0) {
    throw new IntegrityError(
      `Cannot prune "${dataset}": ${mismatched.length} object(s) disagree with their check ` +
        `records, so their chains cannot be trusted (${
          mismatched.map((f) => f.detail).join("; ")
        }); nothing was deleted; run z3 verify`,
    );
  }
  const now = new Date();
  const chains = new Chains(remote, flaws);
  return { chains, plan: planPrune(chains, policy, now, heldByLock(remote, now)) };
}

/**
 * Deletes `deletes` in order; returns the objects kept after all, with why: the server refused
 * to delete them (locked), or something kept builds on them.
 */
async function deleteAll(
  config: Config,
  store: S3Store,
  chains: Chains,
  deletes: PrunePlan["deletes"],
  options: PruneOptions,
): Promise<Map<string, string>> {
  const attempts = config.maxRetries + 1;
  const kept = new Map<string, string>();
  const retry = { attempts, signal: options.signal };
  for (const s of deletes) {
    options.signal?.throwIfAborted();
    if (kept.has(s.name)) continue;
    options.err(`deleting ${printable(s.key)}`);
    // Its check record and (a full's) properties sidecar go with it.
    const sidecars = [checkKey(config.s3Prefix, s.name), propertiesKey(config.s3Prefix, s.name)];
    if (s.versionId === undefined) {
      await withRetry(() => store.delete(s.key), retry);
      for (const key of sidecars) await withRetry(() => store.delete(key), retry);
      continue;
    }
    const gone = await deleteVersions(store, s.key, s.versionId, retry);
    if (gone.refused !== undefined) {
      kept.set(s.name, `delete refused: ${gone.refused}`);
      for (const a of chains.ancestors(s.name)) {
        if (a.name !== s.name) kept.set(a.name, `needed by ${s.name}, whose delete was refused`);
      }
      options.err(`kept ${printable(s.key)}: ${gone.refused}`);
      continue;
    }
    let stuck = gone.stuck;
    for (const key of sidecars) {
      const sidecarGone = await deleteVersions(store, key, undefined, retry);
      stuck += sidecarGone.stuck;
      if (sidecarGone.refused !== undefined) {
        options.err(`kept ${printable(key)}: ${sidecarGone.refused}`);
      }
    }
    if (stuck > 0) {
      options.err(
        `${printable(s.name)}: ${stuck} noncurrent version(s) still locked, left under a ` +
          `delete marker (a lifecycle rule removes them once unlocked)`,
      );
    }
  }
  return kept;
}

/**
 * `backup --prune`'s prune: under the backup's lock, naming each deleted snapshot on `err`
 * (`pruned NAME`).
 */
export async function pruneAfterBackup(
  config: Config,
  store: S3Store,
  options: { signal: AbortSignal; err: (line: string) => void },
): Promise<void> {
  const { signal, err } = options;
  for (const l of await prune(config, store, { locked: true, signal, err })) {
    if (l.action === "delete") err(`pruned ${printable(l.snapshot)}`);
  }
}

/**
 * `z3 prune` for `main.ts`: one line per decision (action, snapshot, reasons; tabs), or the
 * decisions as the `--json` document.
 */
export const pruneCli: CliCommand = { many: true, start: startPrune };

function startPrune(context: CliContext): CliRun {
  const { values } = context;
  const dryRun = values["dry-run"] === true;
  return {
    async runDataset(config, store) {
      const lines = await prune(config, store, {
        dryRun,
        signal: context.signal,
        err: context.err,
      });
      context.json.add(lines);
      if (!values.json) lines.forEach((l) => context.out(pruneLine(l)));
      return dryRun ? "planned" : "pruned";
    },
  };
}

/** One decision of `z3 prune`: action, snapshot, reasons; tab-separated. */
export function pruneLine(l: PruneLine): string {
  return [l.action, l.snapshot, l.reasons.join(", ")].map(printable).join("\t");
}
