/**
 * `z3 status`: local snapshots and the bucket's side by side, with chain health. Besides each
 * object's metadata, status reads the small check record of every object of this z3 (never the
 * objects themselves): an object whose record is missing or disagrees with it (ETag, size, GUID,
 * full or parent) is shown as `record missing` or `record mismatch`, and everything above it as
 * `parent broken`, since restore would refuse them.
 *
 * @module
 */

import { humanSize, type StatusRow, statusRows } from "./chain.ts";
import { Chains } from "./chain_walk.ts";
import { recordFlaws } from "./checks.ts";
import type { Config } from "./config.ts";
import { requireDataset } from "./dataset.ts";
import { printable } from "./names.ts";
import { loadRemote } from "./remote.ts";
import type { S3Store } from "./s3.ts";
import * as zfs from "./zfs.ts";

/** Rows of the status table for the configured dataset and snapshot prefix. */
export async function status(
  config: Config,
  store: S3Store,
  signal?: AbortSignal,
): Promise<StatusRow[]> {
  const dataset = requireDataset(config);
  const prefix = config.snapshotPrefix;
  const local = (await zfs.datasetExists(dataset))
    ? (await zfs.listSnapshots(dataset)).filter((s) => s.snapshot.startsWith(prefix))
    : [];
  const attempts = config.maxRetries + 1;
  const all = await loadRemote(store, config.s3Prefix, dataset, { signal, attempts });
  const flaws = await recordFlaws(store, config.s3Prefix, all, { attempts, signal });
  return statusRows(local, new Chains(all, flaws), prefix);
}

const COLUMNS = ["NAME", "PARENT", "TYPE", "HEALTH", "LOCAL STATE", "SIZE"];

/** The row's cells, with control characters from the bucket escaped (see `printable`). */
function cells(row: StatusRow): string[] {
  return [row.name, row.parent, row.type, row.health, row.localState, humanSize(row.size)].map(
    printable,
  );
}

/** The original z3's table: columns separated by ` | `, padded. */
export function formatTable(rows: StatusRow[]): string[] {
  const lines = [COLUMNS, ...rows.map(cells)];
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd());
}

/** Tab-separated rows without a header (the original's --parseable), escaped as the table. */
export function formatParseable(rows: StatusRow[]): string[] {
  return rows.map((r) =>
    [r.name, r.parent, r.type, r.health, r.localState, String(r.size ?? "")].map(printable).join(
      "\t",
    )
  );
}
