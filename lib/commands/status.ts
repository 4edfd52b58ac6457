/**
 * `z3 status`: local snapshots and the bucket's side by side, with chain health. Besides each
 * object's metadata, status reads the small check record of every object of this z3 (never the
 * objects themselves): an object whose record is missing or disagrees with it (ETag, size, GUID,
 * full or parent) is shown as `record missing` or `record mismatch`, and everything above it as
 * `parent broken`, since restore would refuse them.
 *
 * @module
 */

import { humanBytes } from "../cli/human.ts";
import { type StatusRow, statusRows } from "../chain/status_rows.ts";
import { Chains } from "../chain/walk.ts";
import { trustRemote } from "../repository/trusted_records.ts";
import type { Config } from "../config/config.ts";
import { AGE_META } from "../pipeline/age.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import { printable } from "../chain/names.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import type { S3Store } from "../backend/s3.ts";
import * as zfs from "../zfs/zfs.ts";
import { holdStatus } from "../zfs/holds.ts";
import { lockColumns } from "../chain/object_lock_policy.ts";
import type { LockMode } from "../chain/types.ts";
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";

/**
 * A status row with its dataset, how its object is encrypted (absent: plain) and to which
 * recipients, and its Object Lock retention (absent: none; see `chain/object_lock_policy.ts`).
 */
export interface StatusLine extends StatusRow {
  dataset: string;
  encryption?: "age";
  recipients?: string[];
  /** `GOVERNANCE`, `COMPLIANCE`, or `unreadable` when the bucket's lock headers do not parse. */
  lockMode?: LockMode | "unreadable";
  /** ISO 8601 end of the retention. */
  lockUntil?: string;
}

/** Rows of the status table for the configured dataset and snapshot prefix. */
export async function status(
  config: Config,
  store: S3Store,
  signal?: AbortSignal,
): Promise<StatusLine[]> {
  const dataset = requireDataset(config);
  const prefix = config.snapshotPrefix;
  const local = (await zfs.datasetExists(dataset))
    ? (await zfs.listSnapshots(dataset)).filter((s) => s.snapshot.startsWith(prefix))
    : [];
  const attempts = config.maxRetries + 1;
  const all = await loadRemote(store, config.s3Prefix, dataset, { signal, attempts });
  const flaws = await trustRemote(store, config, all, { signal });
  return statusRows(local, new Chains(all, flaws), prefix).map((plain) => {
    const snap = all.get(`${dataset}@${plain.name}`);
    const row: StatusLine = { dataset, ...plain, ...lockColumns(snap?.lock) };
    const meta = snap?.metadata ?? {};
    if (meta[AGE_META.encryption] !== "age") return row;
    const recipients = (meta[AGE_META.recipients] ?? "").split(",").filter((r) => r !== "");
    return { ...row, encryption: "age", recipients };
  });
}

/** The line under the table that names the snapshot z3's hold is on (see `holds.ts`). */
export function holdLine(config: Config, store: S3Store, rows: StatusRow[]): Promise<string> {
  return holdStatus(config, store.bucket, requireDataset(config), rows);
}

const COLUMNS = ["NAME", "PARENT", "TYPE", "HEALTH", "LOCAL STATE", "SIZE", "CREATED", "UPLOADED"];

/** An ISO 8601 UTC time to the minute, for the table: `2026-12-01T13:41Z`; `""` when absent. */
export function compactTime(iso: string | undefined): string {
  return iso === undefined ? "" : `${iso.slice(0, 16)}Z`;
}

/** The row's cells, with control characters from the bucket escaped (see `printable`). */
function cells(row: StatusLine): string[] {
  return [
    row.name,
    row.parent,
    row.type,
    row.health,
    row.localState,
    humanBytes(row.size, { style: "table" }),
    compactTime(row.created),
    compactTime(row.uploaded),
  ].map(printable);
}

/** Options of the table and parseable forms. */
export interface FormatOptions {
  /** Lead each row with its dataset (a run over several). @default {false} */
  datasets?: boolean;
}

/** `age: age1zvkyg2lq…unujwj, …`: the recipients shortened, for the table. */
function encryptionCell(row: StatusLine): string {
  if (!row.encryption) return "";
  const short = (r: string) => r.length > 20 ? `${r.slice(0, 12)}…${r.slice(-6)}` : r;
  return row.recipients?.length
    ? `${row.encryption}: ${row.recipients.map(short).join(", ")}`
    : row.encryption;
}

/** `GOVERNANCE until 2026-12-08T13:00:00.000Z`, or empty. */
function lockCell(row: StatusLine): string {
  if (!row.lockMode) return "";
  return row.lockUntil ? `${row.lockMode} until ${row.lockUntil}` : row.lockMode;
}

/**
 * The original z3's table, columns separated by ` | ` and padded, with CREATED and UPLOADED (UTC)
 * after SIZE; an ENCRYPTION column is added when any object is encrypted, a LOCK column when any
 * is under Object Lock, and a DATASET column first with `datasets`.
 */
export function formatTable(rows: StatusLine[], options: FormatOptions = {}): string[] {
  const any = rows.some((r) => r.encryption);
  const locks = rows.some((r) => r.lockMode);
  const lead = options.datasets ? ["DATASET"] : [];
  const columns = [
    ...lead,
    ...COLUMNS,
    ...(any ? ["ENCRYPTION"] : []),
    ...(locks ? ["LOCK"] : []),
  ];
  const lines = [
    columns,
    ...rows.map((r) => [
      ...(options.datasets ? [printable(r.dataset)] : []),
      ...cells(r),
      ...(any ? [printable(encryptionCell(r))] : []),
      ...(locks ? [printable(lockCell(r))] : []),
    ]),
  ];
  const widths = columns.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd());
}

/**
 * Tab-separated rows without a header (the original's --parseable), escaped as the table; when
 * any object is encrypted, a seventh field: `age:RECIPIENT,RECIPIENT` or empty; then, when any
 * is under Object Lock, two more: its mode and the end of its retention (or empty). With
 * `datasets`, each row starts with its dataset.
 */
export function formatParseable(rows: StatusLine[], options: FormatOptions = {}): string[] {
  const any = rows.some((r) => r.encryption);
  const locks = rows.some((r) => r.lockMode);
  return rows.map((r) => {
    const fields = [r.name, r.parent, r.type, r.health, r.localState, String(r.size ?? "")];
    if (options.datasets) fields.unshift(r.dataset);
    if (any) fields.push(r.encryption ? `${r.encryption}:${(r.recipients ?? []).join(",")}` : "");
    if (locks) fields.push(r.lockMode ?? "", r.lockUntil ?? "");
    return fields.map(printable).join("\t");
  });
}

/**
 * `z3 status` for `main.ts`: every dataset's rows, printed as one table (or `--parseable`) after
 * the last dataset; the hold lines on stderr after it, so that stdout stays the table alone.
 * With `--json` the rows are the document.
 */
export const statusCli: CliCommand = { many: true, start: startStatus };

function startStatus(context: CliContext): CliRun {
  const { values, many } = context;
  const table: StatusLine[] = [];
  const holds: string[] = [];
  return {
    async runDataset(config, store) {
      const rows = await status(config, store, context.signal);
      context.json.add(rows);
      table.push(...rows);
      if (!values.json && !values.parseable) {
        const line = await holdLine(config, store, rows);
        holds.push(many ? `${printable(config.filesystem!)}: ${line}` : line);
      }
      return "listed";
    },
    finish() {
      if (values.json) return;
      const format = values.parseable ? formatParseable : formatTable;
      format(table, { datasets: many }).forEach((l) => context.out(l));
      holds.forEach((l) => context.err(l));
    },
  };
}
