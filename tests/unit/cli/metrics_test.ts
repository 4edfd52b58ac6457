import assert from "node:assert/strict";
import {
  escapeLabel,
  formatMetrics,
  MAX_METRICS_BYTES,
  parseMetrics,
  recordMetrics,
  updateMetrics,
  writeMetricsFile,
} from "../../../lib/cli/metrics.ts";

const END = new Date("2026-12-01T03:00:00.000Z");
const success = {
  ok: true as const,
  end: END,
  durationMs: 12_500,
  bytes: 4096,
  newestCreated: 1_796_000_000,
};

Deno.test("updateMetrics() writes HELP, TYPE and one labelled line per metric on a success", () => {
  assert.deepEqual(
    updateMetrics("", "tank/my data", success),
    [
      "# HELP z3_backup_last_success_timestamp_seconds When the last successful z3 backup of the dataset ended (Unix time)",
      "# TYPE z3_backup_last_success_timestamp_seconds gauge",
      'z3_backup_last_success_timestamp_seconds{dataset="tank/my data"} 1796094000',
      "# HELP z3_backup_last_run_success 1 when the last z3 backup of the dataset succeeded, else 0",
      "# TYPE z3_backup_last_run_success gauge",
      'z3_backup_last_run_success{dataset="tank/my data"} 1',
      "# HELP z3_backup_last_bytes Bytes the last successful z3 backup of the dataset uploaded",
      "# TYPE z3_backup_last_bytes gauge",
      'z3_backup_last_bytes{dataset="tank/my data"} 4096',
      "# HELP z3_backup_last_duration_seconds How long the last z3 backup of the dataset ran",
      "# TYPE z3_backup_last_duration_seconds gauge",
      'z3_backup_last_duration_seconds{dataset="tank/my data"} 12.5',
      "# HELP z3_backup_newest_snapshot_timestamp_seconds Creation time (Unix) of the snapshot the last successful z3 backup brought the bucket up to",
      "# TYPE z3_backup_newest_snapshot_timestamp_seconds gauge",
      'z3_backup_newest_snapshot_timestamp_seconds{dataset="tank/my data"} 1796000000',
      "",
    ].join("\n"),
  );
});

Deno.test("updateMetrics() keeps other datasets' lines, grouped under one HELP per metric", () => {
  const a = updateMetrics("", "tank/a", success);
  const both = updateMetrics(a, "tank/b", { ...success, bytes: 7 });
  const parsed = parseMetrics(both);
  assert.deepEqual(parsed.get("tank/a")?.z3_backup_last_bytes, 4096);
  assert.deepEqual(parsed.get("tank/b")?.z3_backup_last_bytes, 7);
  assert.deepEqual(both.match(/^# HELP z3_backup_last_bytes /gm)?.length, 1);
  assert.deepEqual(both.match(/^# TYPE /gm)?.length, 5);
  // Rerunning a replaces its lines, b's stay.
  const again = parseMetrics(updateMetrics(both, "tank/a", { ...success, bytes: 1 }));
  assert.deepEqual(again.get("tank/a")?.z3_backup_last_bytes, 1);
  assert.deepEqual(again.get("tank/b")?.z3_backup_last_bytes, 7);
});

Deno.test("updateMetrics() on a failure sets last_run_success 0 and keeps the last success", () => {
  const before = updateMetrics("", "tank/a", success);
  const after = parseMetrics(updateMetrics(before, "tank/a", { ok: false, durationMs: 2000 }));
  assert.deepEqual(after.get("tank/a"), {
    z3_backup_last_success_timestamp_seconds: END.getTime() / 1000,
    z3_backup_last_run_success: 0,
    z3_backup_last_bytes: 4096,
    z3_backup_last_duration_seconds: 2,
    z3_backup_newest_snapshot_timestamp_seconds: 1_796_000_000,
  });
  // A first run that fails has no success to show.
  const first = updateMetrics("", "tank/n", { ok: false, durationMs: 1000 });
  assert.doesNotMatch(first, /last_success_timestamp/);
  assert.match(first, /^z3_backup_last_run_success\{dataset="tank\/n"\} 0$/m);
});

Deno.test("escapeLabel() escapes backslash, quote and newline, and parseMetrics() reads them back", () => {
  const odd = 'tank/a"b\\c\nd';
  assert.deepEqual(escapeLabel(odd), 'tank/a\\"b\\\\c\\nd');
  const text = formatMetrics(new Map([[odd, { z3_backup_last_bytes: 3 }]]));
  assert.match(text, /^z3_backup_last_bytes\{dataset="tank\/a\\"b\\\\c\\nd"\} 3$/m);
  assert.deepEqual(parseMetrics(text), new Map([[odd, { z3_backup_last_bytes: 3 }]]));
});

Deno.test("parseMetrics() skips lines that are not z3's metrics", () => {
  const text = '# HELP x y\nother_metric{dataset="a"} 1\nz3_backup_last_bytes{dataset="a"} NaN\n' +
    'z3_backup_last_bytes{dataset="b"} 5\ngarbage\n';
  assert.deepEqual(parseMetrics(text), new Map([["b", { z3_backup_last_bytes: 5 }]]));
});

Deno.test("writeMetricsFile() replaces the file by rename and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
  try {
    const path = `${dir}/z3.prom`;
    await writeMetricsFile(path, "tank/a", success);
    const inode = (await Deno.stat(path)).ino;
    await writeMetricsFile(path, "tank/b", success);
    assert.notDeepEqual((await Deno.stat(path)).ino, inode, "a new file renamed over the old");
    assert.deepEqual([...parseMetrics(await Deno.readTextFile(path)).keys()], ["tank/a", "tank/b"]);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["z3.prom"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeMetricsFile() into a missing directory fails and leaves nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
  try {
    await assert.rejects(
      writeMetricsFile(`${dir}/nope/z3.prom`, "tank/a", success),
      Deno.errors.NotFound,
    );
    assert.deepEqual(await Array.fromAsync(Deno.readDir(dir)), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recordMetrics() writes nothing without a path and warns instead of failing", async () => {
  const lines: string[] = [];
  await recordMetrics("tank/a", success, { err: (l) => lines.push(l) });
  assert.equal(lines.length, 0);
  const dir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
  try {
    await recordMetrics("tank/a", success, {
      path: `${dir}/nope/z3.prom`,
      err: (l) => lines.push(l),
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0], /^warning: Cannot write METRICS_FILE ".*\/nope\/z3\.prom": /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recordMetrics() refuses a METRICS_FILE that is a symlink, without reading through it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
  try {
    const path = `${dir}/z3.prom`;
    await Deno.symlink("/dev/zero", path);
    const lines: string[] = [];
    await recordMetrics("tank/a", success, { path, err: (l) => lines.push(l) });
    assert.deepEqual(lines, [
      `warning: Cannot write METRICS_FILE "${path}": it is a symbolic link; ` +
      "z3 writes only a regular file it can replace",
    ]);
    assert.equal(await Deno.readLink(path), "/dev/zero", "the link is left as it was");
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name), ["z3.prom"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeMetricsFile() refuses a file that is not regular or larger than its cap", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
  try {
    await Deno.mkdir(`${dir}/d.prom`);
    await assert.rejects(
      writeMetricsFile(`${dir}/d.prom`, "tank/a", success),
      /it is not a regular file/,
    );
    const big = `${dir}/big.prom`;
    await Deno.writeFile(big, new Uint8Array(MAX_METRICS_BYTES + 1));
    await assert.rejects(
      writeMetricsFile(big, "tank/a", success),
      new RegExp(`it is larger than ${MAX_METRICS_BYTES} bytes`),
    );
    assert.equal((await Deno.stat(big)).size, MAX_METRICS_BYTES + 1, "left as it was");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeMetricsFile() never writes through an existing temporary name, and mode is 0644", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
  try {
    const path = `${dir}/z3.prom`;
    const temp = `${dir}/.z3.prom.taken.tmp`;
    await Deno.writeTextFile(temp, "someone else's\n");
    await assert.rejects(
      writeMetricsFile(path, "tank/a", success, { tempPath: temp }),
      Deno.errors.AlreadyExists,
    );
    assert.equal(await Deno.readTextFile(temp), "someone else's\n");
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
    const umask = Deno.umask(0o077);
    try {
      await writeMetricsFile(path, "tank/a", success);
    } finally {
      Deno.umask(umask);
    }
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o644, "readable by node_exporter");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
