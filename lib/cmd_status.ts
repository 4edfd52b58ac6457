/**
 * `z3 status`: local snapshots and the bucket's side by side, with chain health.
 *
 * @module
 */

import { chainHealth, humanSize, type StatusRow, statusRows } from "./chain.ts";
import type { Config } from "./config.ts";
import { requireDataset } from "./dataset.ts";
import { loadRemote } from "./remote.ts";
import type { S3Store } from "./s3.ts";
import * as zfs from "./zfs.ts";
import { holdStatus } from "./holds.ts";

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
  const all = await loadRemote(store, config.s3Prefix, dataset, {
    signal,
    attempts: config.maxRetries + 1,
  });
  const health = chainHealth(all); // health over every object: a parent outside the prefix still counts
  const remote = new Map([...all].filter(([, s]) => s.snapshot.startsWith(prefix)));
  return statusRows(local, remote, health);
}

/** The line under the table that names the snapshot z3's hold is on (see `holds.ts`). */
export function holdLine(config: Config, store: S3Store, rows: StatusRow[]): Promise<string> {
  return holdStatus(config, store.bucket, requireDataset(config), rows);
}

const COLUMNS = ["NAME", "PARENT", "TYPE", "HEALTH", "LOCAL STATE", "SIZE"];

function cells(row: StatusRow): string[] {
  return [row.name, row.parent, row.type, row.health, row.localState, humanSize(row.size)];
}

/** The original z3's table: columns separated by ` | `, padded. */
export function formatTable(rows: StatusRow[]): string[] {
  const lines = [COLUMNS, ...rows.map(cells)];
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd());
}

/** Tab-separated rows without a header (the original's --parseable). */
export function formatParseable(rows: StatusRow[]): string[] {
  return rows.map((r) =>
    [r.name, r.parent, r.type, r.health, r.localState, r.size ?? ""].join("\t")
  );
}
