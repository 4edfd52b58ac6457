import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import { LOCK_DIR } from "../bed/permission_flags.ts";

const DATA = "my data";

/** Another dataset's lines, as an earlier run for it left them. */
const OTHER = [
  "# HELP z3_backup_last_run_success 1 when the last z3 backup of the dataset succeeded, else 0",
  "# TYPE z3_backup_last_run_success gauge",
  'z3_backup_last_run_success{dataset="tank/other"} 1',
  "# HELP z3_backup_last_bytes Bytes the last successful z3 backup of the dataset uploaded",
  "# TYPE z3_backup_last_bytes gauge",
  'z3_backup_last_bytes{dataset="tank/other"} 123',
  "",
].join("\n");

/** The value of `metric` for `dataset` in `text`, read with its own pattern (not lib/cli/metrics.ts). */
function value(text: string, metric: string, dataset: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${metric}{dataset="${dataset}"} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

integration(
  "METRICS_FILE after backups: values, other datasets kept, failure keeps last success",
  async (bed) => {
    const pool = await createPool(256);
    const store = await freshBucket(bed.s3, "metrics");
    const metricsDir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
    await withCleanup([
      () => store.close(),
      () => pool.destroy(),
      () => Deno.remove(metricsDir, { recursive: true }),
    ], async () => {
      const dir = await pool.createDataset(DATA);
      const dataset = `${pool.name}/${DATA}`;
      const path = `${metricsDir}/z3.prom`;
      const env = { ...childEnv(bed.s3, store.bucket), FILESYSTEM: dataset, METRICS_FILE: path };
      await Deno.writeTextFile(path, OTHER);
      for (const [i, snap] of ["s1", "s2"].entries()) {
        await Deno.writeFile(`${dir}/${snap}.bin`, pseudoRandom(256 * 1024, i + 1));
        await pool.snapshot(DATA, snap);
      }

      const before = Date.now();
      const records = JSON.parse(ok(await runZ3(["backup", "--json"], env)).join("\n"));
      const after = Date.now();
      assert.deepEqual(records.length, 2);
      const uploaded = records.reduce((n: number, r: { bytes: number }) => n + r.bytes, 0);
      const text = await Deno.readTextFile(path);
      assert.deepEqual(value(text, "z3_backup_last_run_success", dataset), 1);
      assert.deepEqual(value(text, "z3_backup_last_bytes", dataset), uploaded);
      const success = value(text, "z3_backup_last_success_timestamp_seconds", dataset)!;
      assert.ok(success * 1000 >= before && success * 1000 <= after, `${success} in the run`);
      const duration = value(text, "z3_backup_last_duration_seconds", dataset)!;
      assert.ok(duration > 0 && duration * 1000 <= after - before, `duration ${duration}`);
      const created = Number(
        (await run(["zfs", "get", "-Hp", "-o", "value", "creation", `${dataset}@s2`])).trim(),
      );
      assert.deepEqual(
        value(text, "z3_backup_newest_snapshot_timestamp_seconds", dataset),
        created,
      );
      assert.match(text, /^# TYPE z3_backup_last_bytes gauge$/m);
      assert.deepEqual(text.match(/^# HELP z3_backup_last_bytes /gm)?.length, 1, "one family");
      // The other dataset's lines are kept.
      assert.deepEqual(value(text, "z3_backup_last_bytes", "tank/other"), 123);
      assert.deepEqual(value(text, "z3_backup_last_run_success", "tank/other"), 1);

      // A failed run (the endpoint refuses connections): success 0, the last success kept; the
      // file is a new one renamed over the old, and no temporary file is left.
      const inode = (await Deno.stat(path)).ino;
      await Deno.writeFile(`${dir}/s3.bin`, pseudoRandom(1024, 3));
      await pool.snapshot(DATA, "s3");
      failure(
        await runZ3(["backup"], { ...env, HOST: "http://127.0.0.1:1", MAX_RETRIES: "0" }),
        4,
        /^z3: Cannot list /,
      );
      const failed = await Deno.readTextFile(path);
      assert.deepEqual(value(failed, "z3_backup_last_run_success", dataset), 0);
      assert.deepEqual(value(failed, "z3_backup_last_success_timestamp_seconds", dataset), success);
      assert.deepEqual(value(failed, "z3_backup_last_bytes", dataset), uploaded);
      assert.deepEqual(value(failed, "z3_backup_last_bytes", "tank/other"), 123);
      assert.notDeepEqual((await Deno.stat(path)).ino, inode, "replaced by rename");
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(metricsDir))).map((e) => e.name),
        ["z3.prom"],
      );

      // The next run sends s3; one after it is up to date: success, 0 bytes.
      const [s3] = JSON.parse(ok(await runZ3(["backup", "--json"], env)).join("\n"));
      const next = await Deno.readTextFile(path);
      assert.deepEqual(value(next, "z3_backup_last_run_success", dataset), 1);
      assert.deepEqual(value(next, "z3_backup_last_bytes", dataset), s3.bytes);
      ok(await runZ3(["backup"], env));
      const upToDate = await Deno.readTextFile(path);
      assert.deepEqual(value(upToDate, "z3_backup_last_run_success", dataset), 1);
      assert.deepEqual(value(upToDate, "z3_backup_last_bytes", dataset), 0);
    });
  },
);

integration(
  "METRICS_FILE needs --allow-read and --allow-write of its directory, as the README says",
  async (bed) => {
    const pool = await createPool(256);
    const store = await freshBucket(bed.s3, "metrics-perm");
    const metricsDir = await Deno.makeTempDir({ prefix: "z3-metrics-" });
    await withCleanup([
      () => store.close(),
      () => pool.destroy(),
      () => Deno.remove(metricsDir, { recursive: true }),
    ], async () => {
      const dir = await pool.createDataset(DATA);
      const dataset = `${pool.name}/${DATA}`;
      const path = `${metricsDir}/z3.prom`;
      const env = { ...childEnv(bed.s3, store.bucket), FILESYSTEM: dataset, METRICS_FILE: path };
      // The README's flags, with the bed's endpoint and /dev/null (the bed's Z3_CONFIG) to read.
      const flags = (extra: string) => [
        "--no-prompt",
        `--allow-net=${new URL(bed.s3.S3_ENDPOINT).host}`,
        `--allow-read=/dev/null,${LOCK_DIR}${extra}`,
        `--allow-write=${LOCK_DIR}${extra}`,
        "--allow-env",
        "--allow-sys=osRelease",
        "--allow-run=zfs,zstd",
      ];
      await Deno.writeFile(`${dir}/a.bin`, pseudoRandom(64 * 1024, 1));
      await pool.snapshot(DATA, "s1");
      // Without them the backup stands and one warning names the refused access.
      const denied = await runZ3(["backup"], env, { permissions: flags("") });
      assert.deepEqual(denied.code, 0, denied.stderr);
      assert.match(
        denied.stderr,
        /^warning: Cannot write METRICS_FILE "[^"]+\/z3\.prom": Requires read access to /m,
      );
      assert.deepEqual(await Array.fromAsync(Deno.readDir(metricsDir)), []);

      await Deno.writeFile(`${dir}/b.bin`, pseudoRandom(64 * 1024, 2));
      await pool.snapshot(DATA, "s2");
      ok(await runZ3(["backup"], env, { permissions: flags(`,${metricsDir}`) }));
      assert.deepEqual(
        value(await Deno.readTextFile(path), "z3_backup_last_run_success", dataset),
        1,
      );
    });
  },
);
