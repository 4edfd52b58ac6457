/**
 * `z3 check`: is the dataset's newest backup healthy and recent enough? Reads the bucket only
 * (the listing, each object's metadata and its check record, as `z3 status` does: no ZFS, no
 * object bytes). One result per dataset: `BROKEN` when any object of the dataset matching
 * `SNAPSHOT_PREFIX` has a chain `status` would not show as `ok`; else `STALE` when no healthy
 * object is younger than the maximum age, or there is none; else `OK`. An object's age is
 * counted from its LastModified (when it was uploaded), not from the snapshot's creation.
 *
 * @module
 */

import type { Health } from "../chain/walk.ts";
import { Chains } from "../chain/walk.ts";
import { trustRemote } from "../repository/trusted_records.ts";
import type { Config } from "../config/config.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import { EXIT } from "../base/errors.ts";
import { printable } from "../chain/names.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import type { S3Store } from "../backend/s3.ts";
import { formatAge, parseDuration } from "../cli/durations.ts";
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";

/** `--max-age` when none is given: a daily backup that is a couple of hours late is not stale. */
export const DEFAULT_CHECK_MAX_AGE = "26h";

/** What `check` says of a dataset. */
export type CheckState = "OK" | "STALE" | "BROKEN";

/** One object, as the decision needs it. */
export interface CheckInput {
  /** Full name, `dataset@snap`. */
  name: string;
  health: Health;
  /** When it was uploaded (LastModified); undefined when the bucket did not say. */
  uploaded?: Date;
  /** Why its chain is broken (`Chains.why`); `""` when it is not. */
  why: string;
}

/** The verdict on one dataset. */
export interface CheckResult {
  dataset: string;
  state: CheckState;
  /** The newest healthy object (by upload time), when there is one. */
  newest?: string;
  /** Its upload time, ISO 8601 UTC. */
  uploaded?: string;
  /** Seconds since it was uploaded (never negative). */
  ageSeconds?: number;
  /** The maximum age checked against, in seconds. */
  maxAgeSeconds: number;
  /** One line: why the state is what it is. */
  detail: string;
}

/**
 * Pure: the verdict on `dataset` from its objects, the time now and the maximum age (see the
 * module doc). A broken chain outweighs a stale one.
 */
export function decideCheck(
  dataset: string,
  objects: readonly CheckInput[],
  options: { now: Date; maxAgeMs: number },
): CheckResult {
  const maxAgeSeconds = Math.floor(options.maxAgeMs / 1000);
  let newest: CheckInput | undefined;
  for (const o of objects) {
    if (o.health !== "ok" || o.uploaded === undefined) continue;
    if (newest === undefined || o.uploaded.getTime() > newest.uploaded!.getTime()) newest = o;
  }
  const base: CheckResult = { dataset, state: "OK", maxAgeSeconds, detail: "" };
  let ageMs: number | undefined;
  if (newest !== undefined) {
    ageMs = Math.max(0, options.now.getTime() - newest.uploaded!.getTime());
    base.newest = newest.name;
    base.uploaded = newest.uploaded!.toISOString();
    base.ageSeconds = Math.floor(ageMs / 1000);
  }
  const broken = objects.filter((o) => o.health !== "ok").sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0
  );
  if (broken.length > 0) {
    return {
      ...base,
      state: "BROKEN",
      detail: `${broken.length} object(s) of a broken chain, first ${
        broken[0].why || broken[0].health
      }`,
    };
  }
  if (newest === undefined) {
    return { ...base, state: "STALE", detail: "no healthy backup in the bucket" };
  }
  if (ageMs! > options.maxAgeMs) {
    return {
      ...base,
      state: "STALE",
      detail: `newest ${newest.name} is older than ${formatAge(options.maxAgeMs)}`,
    };
  }
  return { ...base, detail: `newest ${newest.name}` };
}

/** Exit status for results: 5 when any is broken, else 9 when any is stale, else 0. */
export function checkExitCode(results: readonly CheckResult[]): number {
  if (results.some((r) => r.state === "BROKEN")) return EXIT.chain;
  if (results.some((r) => r.state === "STALE")) return EXIT.stale;
  return EXIT.ok;
}

/** One line of `z3 check`: STATE, dataset, age of the newest backup (`-`: none), detail; tabs. */
export function formatCheck(r: CheckResult): string {
  const age = r.ageSeconds === undefined ? "-" : formatAge(r.ageSeconds * 1000);
  return [r.state, r.dataset, age, r.detail].map(printable).join("\t");
}

/** Runs `z3 check` for the configured dataset. */
export async function check(
  config: Config,
  store: S3Store,
  options: { maxAgeMs: number; now?: Date; signal?: AbortSignal },
): Promise<CheckResult[]> {
  const dataset = requireDataset(config);
  const attempts = config.maxRetries + 1;
  const { signal } = options;
  const all = await loadRemote(store, config.s3Prefix, dataset, { signal, attempts });
  const flaws = await trustRemote(store, config, all, { signal });
  const chains = new Chains(all, flaws);
  const objects = [...all.values()]
    .filter((s) => s.snapshot.startsWith(config.snapshotPrefix))
    .map((s) => ({
      name: s.name,
      health: chains.health(s.name)!,
      uploaded: s.lastModified,
      why: chains.why(s.name),
    }));
  return [
    decideCheck(dataset, objects, { now: options.now ?? new Date(), maxAgeMs: options.maxAgeMs }),
  ];
}

/**
 * `z3 check` for `main.ts`: one line per dataset (see {@linkcode formatCheck}), or with `--json`
 * one document `{"datasets": [...]}`; exits as {@linkcode checkExitCode} says when every dataset
 * ran.
 */
export const checkCli: CliCommand = { many: true, start: startCheck };

function startCheck(context: CliContext): CliRun {
  const { values } = context;
  const maxAgeMs = parseDuration(
    (values["max-age"] as string | undefined) ?? DEFAULT_CHECK_MAX_AGE,
  );
  const all: CheckResult[] = [];
  return {
    async runDataset(config, store) {
      const results = await check(config, store, { maxAgeMs, signal: context.signal });
      context.json.add(results);
      all.push(...results);
      if (!values.json) results.forEach((r) => context.out(formatCheck(r)));
      return results.map((r) => r.state.toLowerCase()).join();
    },
    jsonDocument: (items) => ({ datasets: items }),
    exitCode: () => checkExitCode(all),
  };
}
