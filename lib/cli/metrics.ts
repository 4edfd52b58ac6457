/**
 * `METRICS_FILE`: after each backup, a Prometheus text file for node_exporter's textfile
 * collector. The file is z3's own: one line per dataset and metric, grouped by metric under its
 * `# HELP` and `# TYPE` lines. A run replaces its dataset's lines and keeps the other datasets'
 * (read from the old file); lines it does not recognise are dropped. The new file is written to a
 * temporary file in the same directory (not ending in `.prom`, so the collector skips it) and
 * renamed over the old one, so a reader sees the old file or the new one, never half of one. The
 * old file is read only when it is a regular file, up to {@linkcode MAX_METRICS_BYTES}; the
 * temporary file is created exclusively. The directory must be root's (README).
 *
 * Two backups of different datasets that finish at the same instant may each read the file
 * before the other renames its own: then one of them loses the other's update until that
 * dataset's next run.
 *
 * @module
 */

import { describeError } from "../base/errors.ts";
import { quote } from "../chain/walk.ts";

/** The metrics, in file order, with their help text. */
export const METRICS = {
  z3_backup_last_success_timestamp_seconds:
    "When the last successful z3 backup of the dataset ended (Unix time)",
  z3_backup_last_run_success: "1 when the last z3 backup of the dataset succeeded, else 0",
  z3_backup_last_bytes: "Bytes the last successful z3 backup of the dataset uploaded",
  z3_backup_last_duration_seconds: "How long the last z3 backup of the dataset ran",
  z3_backup_newest_snapshot_timestamp_seconds:
    "Creation time (Unix) of the snapshot the last successful z3 backup brought the bucket up to",
} as const;

/** A metric's name. */
export type MetricName = keyof typeof METRICS;

/** Values of one dataset's metrics, by name; an absent one has no line. */
export type DatasetMetrics = Partial<Record<MetricName, number>>;

/** How one backup run ended, for {@linkcode updateMetrics}. */
export type RunOutcome =
  | {
    ok: true;
    /** When the run ended. */
    end: Date;
    durationMs: number;
    /** Bytes uploaded (0 when up to date). */
    bytes: number;
    /** Creation time of the snapshot the bucket was brought up to, seconds since the epoch. */
    newestCreated: number;
  }
  | { ok: false; durationMs: number };

/** Escapes a label value as the exposition format wants: `\`, `"` and newline. */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
}

const SAMPLE = /^([a-z][a-z0-9_]*)\{dataset="((?:[^"\\]|\\.)*)"\} (\S+)$/;

/** Reads a file this module wrote: dataset → its metrics. Unknown or malformed lines are skipped. */
export function parseMetrics(text: string): Map<string, DatasetMetrics> {
  const out = new Map<string, DatasetMetrics>();
  for (const line of text.split("\n")) {
    const m = SAMPLE.exec(line);
    if (!m || !Object.hasOwn(METRICS, m[1])) continue;
    const value = Number(m[3]);
    if (!Number.isFinite(value)) continue;
    const dataset = unescapeLabel(m[2]);
    const metrics = out.get(dataset) ?? {};
    metrics[m[1] as MetricName] = value;
    out.set(dataset, metrics);
  }
  return out;
}

/** Renders every dataset's metrics (datasets sorted by name), ending in a newline. */
export function formatMetrics(datasets: ReadonlyMap<string, DatasetMetrics>): string {
  const names = [...datasets.keys()].sort();
  const lines: string[] = [];
  for (const [metric, help] of Object.entries(METRICS) as [MetricName, string][]) {
    const samples = names.filter((d) => datasets.get(d)![metric] !== undefined);
    if (samples.length === 0) continue;
    lines.push(`# HELP ${metric} ${help}`, `# TYPE ${metric} gauge`);
    for (const d of samples) {
      lines.push(`${metric}{dataset="${escapeLabel(d)}"} ${datasets.get(d)![metric]}`);
    }
  }
  return lines.map((l) => l + "\n").join("");
}

/**
 * The file's new text: `old` (the previous file's text, `""` when none) with `dataset`'s lines
 * replaced by this run's. A failed run sets `last_run_success` 0 and its duration, and keeps the
 * last success's timestamp, bytes and newest snapshot from `old`.
 */
export function updateMetrics(old: string, dataset: string, run: RunOutcome): string {
  const all = parseMetrics(old);
  const previous = all.get(dataset) ?? {};
  const seconds = run.durationMs / 1000;
  all.set(
    dataset,
    run.ok
      ? {
        z3_backup_last_success_timestamp_seconds: run.end.getTime() / 1000,
        z3_backup_last_run_success: 1,
        z3_backup_last_bytes: run.bytes,
        z3_backup_last_duration_seconds: seconds,
        z3_backup_newest_snapshot_timestamp_seconds: run.newestCreated,
      }
      : { ...previous, z3_backup_last_run_success: 0, z3_backup_last_duration_seconds: seconds },
  );
  return formatMetrics(all);
}

/** The largest metrics file read back: more is refused (z3 writes ~1 KiB a dataset). */
export const MAX_METRICS_BYTES = 4 * 1024 * 1024;

/** Options for {@linkcode writeMetricsFile}. */
export interface WriteMetricsOptions {
  /**
   * The temporary file's path (tests name it to see an existing one refused).
   * @default {`.NAME.PID.RANDOM.tmp` beside `path`}
   */
  tempPath?: string;
}

/**
 * The text of the metrics file at `path`, `""` when there is none. Refused (an `Error` naming
 * why): a symbolic link, anything but a regular file, a file replaced between the check and the
 * open, and a file over {@linkcode MAX_METRICS_BYTES}; at most that many bytes (plus one) are read.
 */
async function readOldMetrics(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
  if (info.isSymlink) {
    throw new Error("it is a symbolic link; z3 writes only a regular file it can replace");
  }
  if (!info.isFile) throw new Error("it is not a regular file");
  using file = await Deno.open(path, { read: true });
  const opened = await file.stat();
  if (!opened.isFile || opened.ino !== info.ino || opened.dev !== info.dev) {
    throw new Error("it was replaced while z3 opened it");
  }
  const buffer = new Uint8Array(MAX_METRICS_BYTES + 1);
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  if (filled > MAX_METRICS_BYTES) throw new Error(`it is larger than ${MAX_METRICS_BYTES} bytes`);
  return new TextDecoder().decode(buffer.subarray(0, filled));
}

/**
 * Updates `path` for `dataset` (see module doc): reads the old file (none is fine; see
 * `readOldMetrics` for what is refused), creates a new temporary file beside it (never an
 * existing one: `createNew`), writes the new text, sets mode 0644 whatever the umask, and renames
 * it over `path`. The temporary file is removed when anything fails after it was created.
 */
export async function writeMetricsFile(
  path: string,
  dataset: string,
  run: RunOutcome,
  options: WriteMetricsOptions = {},
): Promise<void> {
  const old = await readOldMetrics(path);
  const slash = path.lastIndexOf("/");
  const dir = slash < 0 ? "." : path.slice(0, slash) || "/";
  const base = path.slice(slash + 1);
  const temp = options.tempPath ??
    `${dir}/.${base}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
  try {
    try {
      const bytes = new TextEncoder().encode(updateMetrics(old, dataset, run));
      for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    } finally {
      file.close();
    }
    await Deno.chmod(temp, 0o644);
    await Deno.rename(temp, path);
  } catch (err) {
    await Deno.remove(temp).catch(() => {});
    throw err;
  }
}

/**
 * Updates `options.path` (`METRICS_FILE`) for `dataset` with {@linkcode writeMetricsFile}, when it
 * is set; a failure to write it is one warning line on `options.err`, not the run's failure.
 */
export async function recordMetrics(
  dataset: string,
  run: RunOutcome,
  options: { path?: string; err: (line: string) => void },
): Promise<void> {
  if (options.path === undefined) return;
  try {
    await writeMetricsFile(options.path, dataset, run);
  } catch (err) {
    options.err(
      `warning: Cannot write METRICS_FILE ${quote(options.path)}: ${describeError(err)}`,
    );
  }
}
