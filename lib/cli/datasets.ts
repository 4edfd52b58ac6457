/**
 * Which datasets a command runs over: `FILESYSTEM` (comma-separated; `--filesystem` may be given
 * several times), each with every filesystem and volume below it when its `RECURSIVE` is on
 * (one `zfs list -r` call for all of them), or, for `status --all`, every dataset the bucket
 * holds objects of, from listings alone: under `S3_PREFIX`, and under the bucket and prefix of
 * each `[fs:DATASET]` section, each dataset counted where its own settings look.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { connect } from "./connect.ts";
import { UsageError } from "../base/errors.ts";
import { validateDataset } from "../chain/names.ts";
import { withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";
import { listTree } from "../zfs/zfs.ts";
import { normalizePrefix } from "../config/prefix.ts";

/**
 * The datasets named in `FILESYSTEM`, validated, in order, each once (commas cannot occur in
 * ZFS names; empty entries such as a trailing comma are skipped).
 */
export function parseDatasetList(text: string | undefined): string[] {
  const names = [...new Set((text ?? "").split(",").map((n) => n.trim()).filter((n) => n))];
  if (names.length === 0) {
    throw new UsageError(
      "Cannot choose a dataset: FILESYSTEM is not set (--filesystem, $FILESYSTEM or the config file)",
    );
  }
  for (const name of names) validateDataset(name);
  return names;
}

/**
 * `roots` with, after each one whose `recursive(root)` is true, every filesystem and volume
 * below it (zfs's order), each dataset once. A recursive root that does not exist stays in the
 * list alone, so that its own command fails with zfs's answer and the others still run.
 */
export async function expandDatasets(
  roots: readonly string[],
  recursive: (root: string) => boolean,
): Promise<string[]> {
  const deep = roots.filter(recursive);
  const tree = deep.length > 0 ? await listTree(deep) : new Map<string, string[]>();
  const out = new Set<string>();
  for (const root of roots) {
    out.add(root);
    for (const name of tree.get(root) ?? []) out.add(name);
  }
  return [...out];
}

/**
 * Pure: the datasets of the keys listed under `prefix` (`prefix + dataset@snap`), sorted, each
 * once. Keys that name no valid dataset (stray objects) are skipped.
 */
export function datasetsOfKeys(prefix: string, keys: Iterable<string>): string[] {
  const head = normalizePrefix(prefix);
  const found = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(head)) continue;
    const rest = key.slice(head.length);
    const at = rest.indexOf("@");
    if (at <= 0) continue;
    const dataset = rest.slice(0, at);
    try {
      validateDataset(dataset);
    } catch {
      continue;
    }
    found.add(dataset);
  }
  return [...found].sort();
}

/** Every dataset with objects under `prefix` in the bucket (`status --all`), from one listing. */
export async function bucketDatasets(
  store: S3Store,
  prefix: string,
  options: { signal?: AbortSignal; attempts?: number } = {},
): Promise<string[]> {
  const listed = await withRetry(
    () => Array.fromAsync(store.list(normalizePrefix(prefix), options.signal)),
    { attempts: options.attempts, signal: options.signal },
  );
  return datasetsOfKeys(prefix, listed.map((o) => o.key));
}

/** Options of {@linkcode selectDatasets}. */
export interface SelectOptions {
  /** `status --all`: the bucket's datasets instead of FILESYSTEM's. @default {false} */
  all?: boolean;
  /**
   * One dataset's settings (its `[fs:DATASET]` section included), for its RECURSIVE; with no
   * dataset, the settings of none (`[main]`, environment and flags), for `--all`.
   */
  configFor: (dataset?: string) => Promise<Config>;
  signal?: AbortSignal;
}

/**
 * The datasets a command runs over (see module doc). Each root's own RECURSIVE decides whether
 * it is expanded; a root whose settings fail to load is not, and its own run reports the error.
 */
export async function selectDatasets(config: Config, options: SelectOptions): Promise<string[]> {
  if (options.all) return await allBucketDatasets(config, options);
  const roots = parseDatasetList(config.filesystem);
  const deep = new Set<string>();
  for (const root of roots) {
    if ((await options.configFor(root).catch(() => config)).recursive) deep.add(root);
  }
  return await expandDatasets(roots, (root) => deep.has(root));
}

/** Where a dataset's objects are, as its settings say: endpoint, bucket and key prefix. */
function placeOf(config: Config): string {
  return JSON.stringify([config.endpoint ?? "", config.bucket ?? "", config.s3Prefix]);
}

/**
 * `status --all`: every dataset with objects under the run's bucket and `S3_PREFIX`, or under
 * another place an `[fs:DATASET]` section names (one listing per place). A dataset found in a
 * place its own settings do not point to is left out: `status` of it would read another place,
 * so the row would be wrong. One whose settings fail to load is kept, so its run says why.
 */
async function allBucketDatasets(config: Config, options: SelectOptions): Promise<string[]> {
  const places = new Map<string, Config>([[placeOf(config), config]]);
  // FILESYSTEM may pick a section of its own: [main]'s place is listed too.
  for (const dataset of [undefined, ...config.sectionDatasets]) {
    const own = await options.configFor(dataset).catch(() => undefined);
    if (own && !places.has(placeOf(own))) places.set(placeOf(own), own);
  }
  const found = new Set<string>();
  for (const [place, c] of places) {
    const store = connect(c);
    try {
      const listed = await bucketDatasets(store, c.s3Prefix, {
        signal: options.signal,
        attempts: c.maxRetries + 1,
      });
      for (const dataset of listed) {
        const own = await options.configFor(dataset).catch(() => undefined);
        if (!own || placeOf(own) === place) found.add(dataset);
      }
    } finally {
      store.close();
    }
  }
  return [...found].sort();
}
