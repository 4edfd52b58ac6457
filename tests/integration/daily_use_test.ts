/**
 * Daily use (issue 15): `--quiet` on every command, one JSON document wherever `--json` is
 * accepted, a closed stdout, `backup --prune` without retention, missing credentials, a bare
 * HOST on a plain-HTTP port, global options before the command, per-command help, and MAX_RATE
 * holding a transfer to its limit.
 */

import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { type CliResult, runZ3, spawnCli, Z3 } from "../bed/cli.ts";
import { PPUT, runPput } from "../bed/cli.ts";
import { failure, ok } from "../bed/expect.ts";
import { pseudoRandom } from "../bed/files.ts";
import { childEnv, freshBucket } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { formatArgv } from "../../lib/exec/process.ts";

const MiB = 1024 * 1024;

/** Deletes every object of the test's bucket (it wrote them all). */
async function emptyBucket(store: S3Store): Promise<void> {
  for await (const o of store.list("")) await store.delete(o.key);
  store.close();
}

async function tempConf(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "z3-daily-", suffix: ".conf" });
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, 0o600);
  return path;
}

/**
 * Runs `script args` through bash with its stdout piped into `true`, which exits at once: z3
 * writes into a pipe nobody reads. Returns z3's own exit status and stderr.
 */
async function withClosedStdout(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  const child = spawnCli(script, args, { env, redirect: "| true; exit ${PIPESTATUS[0]}" });
  await child.closeStdin();
  const r = await child.result;
  return { code: r.code, stderr: r.stderr };
}

/** Exactly one JSON document: the whole text parses. */
function oneJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what}: not one JSON document (${(err as Error).message}): ${text}`);
  }
}

integration("--quiet: every command prints nothing on success, and errors still", async (bed) => {
  const pool = await createPool(256);
  const store = await freshBucket(bed.s3, "quiet");
  try {
    const dir = await pool.createDataset("d");
    await Deno.writeFile(`${dir}/f`, pseudoRandom(100_000));
    await pool.snapshot("d", "s1");
    const fs = `${pool.name}/d`;
    const env = {
      ...childEnv(bed.s3, store.bucket),
      FILESYSTEM: fs,
      KEEP_LAST: "5",
      Z3_LOCK_DIR: await Deno.makeTempDir(),
    };
    const quiet = async (args: string[]) => {
      const r = await runZ3([...args, "--quiet"], env);
      assert.deepEqual(
        { code: r.code, stdout: r.stdout, stderr: r.stderr },
        { code: 0, stdout: "", stderr: "" },
        `z3 ${args.join(" ")} --quiet`,
      );
    };
    await quiet(["backup", "--dry-run"]);
    await quiet(["backup"]);
    await pool.snapshot("d", "s2");
    await quiet(["backup", "--prune"]);
    await quiet(["status"]);
    await quiet(["verify"]);
    await quiet(["prune", "--dry-run"]);
    await quiet(["prune"]);
    await quiet(["cleanup"]);
    await quiet(["check", "--max-age", "1d"]);
    await quiet(["restore", "s2", "--target", `${pool.name}/r`]);
    await quiet(["restore", "s2", "--target", `${pool.name}/r`]); // exists: nothing to do
    const got = await runZ3(["get", `${fs}@s1`, "--quiet"], env);
    assert.deepEqual({ code: got.code, stderr: got.stderr }, { code: 0, stderr: "" });
    assert.ok(got.stdout.length > 0, "get --quiet still writes the object to stdout");
    // A failure under --quiet still says why, on stderr.
    failure(
      await runZ3(["restore", "nope", "--quiet"], env),
      2,
      /^z3: Cannot restore ".*@nope": not in the bucket/,
    );
  } finally {
    await emptyBucket(store);
    await pool.destroy();
  }
});

integration("--json: every command that takes it prints exactly one JSON document", async (bed) => {
  const pool = await createPool(256);
  const store = await freshBucket(bed.s3, "json");
  try {
    const dir = await pool.createDataset("d");
    await Deno.writeFile(`${dir}/f`, pseudoRandom(100_000));
    await pool.snapshot("d", "s1");
    const fs = `${pool.name}/d`;
    const env = {
      ...childEnv(bed.s3, store.bucket),
      FILESYSTEM: fs,
      KEEP_LAST: "5",
      Z3_LOCK_DIR: await Deno.makeTempDir(),
    };
    const json = async (args: string[], code = 0): Promise<unknown> => {
      const r = await runZ3([...args, "--json"], env);
      assert.equal(r.code, code, `z3 ${args.join(" ")} --json: ${r.stderr}`);
      return oneJson(r.stdout, `z3 ${args.join(" ")} --json`);
    };
    const plan = await json(["backup", "--dry-run"]) as {
      dryRun: boolean;
      plan: string[];
      steps: { send: string[] }[];
      commands: string[][];
    };
    assert.equal(plan.dryRun, true);
    assert.match(plan.plan[0], new RegExp(`^${fs}@s1 \\(full\\): zfs send`));
    // The same plan as data: each upload, and the commands the text mode prints last.
    assert.deepEqual(plan.steps.map((s) => ({ ...s, send: undefined })), [{
      snapshot: `${fs}@s1`,
      type: "full",
      key: `z3-backup/${fs}@s1`,
      compressor: "zstd",
      encrypted: false,
      send: undefined,
    }]);
    assert.deepEqual(plan.steps[0].send, ["zfs", "send", `${fs}@s1`]);
    assert.ok(plan.commands.length > 0, "the hold it would take");
    assert.deepEqual(plan.plan.slice(-plan.commands.length), plan.commands.map(formatArgv));
    const records = await json(["backup"]) as { snapshot: string; type: string }[];
    assert.deepEqual(records.map((r) => [r.snapshot, r.type]), [[`${fs}@s1`, "full"]]);
    assert.deepEqual(await json(["backup"]), [], "up to date: an empty list");
    assert.equal((await json(["status"]) as unknown[]).length, 1);
    assert.equal((await json(["verify"]) as { state: string }[])[0].state, "ok");
    assert.equal((await json(["prune", "--dry-run"]) as { action: string }[])[0].action, "keep");
    assert.deepEqual(await json(["cleanup"]), []);
    const uploadId = await store.createMultipart("z3-backup/left-behind");
    const aborted = await json(["cleanup", "--max-age", "0"]) as { uploadId: string }[];
    assert.deepEqual(aborted.map((u) => u.uploadId), [uploadId]);
    assert.equal(
      (await json(["check", "--max-age", "1d"]) as { datasets: unknown[] }).datasets.length,
      1,
    );
    const dry = await json(["restore", "s1", "--target", `${pool.name}/r`, "--dry-run"]) as {
      plan: string[];
      steps: unknown[];
    };
    assert.match(dry.plan[0], /download s3:\/\//);
    assert.deepEqual(dry.steps, [{
      snapshot: `${fs}@s1`,
      key: `z3-backup/${fs}@s1`,
      compressor: "zstd",
      encrypted: false,
      receive: ["zfs", "receive", `${pool.name}/r`],
    }]);
    assert.deepEqual(await json(["restore", "s1", "--target", `${pool.name}/r`]), {
      received: [`${pool.name}/r@s1`],
    });
    // get: stdout carries the bytes, so its JSON summary is stderr.
    const got = await runZ3(["get", `${fs}@s1`, "--json"], env);
    assert.equal(got.code, 0, got.stderr);
    const head = await store.head(`z3-backup/${fs}@s1`);
    assert.deepEqual(oneJson(got.stderr, "get --json on stderr"), {
      key: `z3-backup/${fs}@s1`,
      size: head!.size,
      etag: head!.etag,
    });
    assert.equal(got.stdout.length > 0, true);
  } finally {
    await emptyBucket(store);
    await pool.destroy();
  }
});

integration("a closed stdout ends quietly with the usual exit status", async (bed) => {
  const pool = await createPool(256);
  const store = await freshBucket(bed.s3, "epipe");
  try {
    const dir = await pool.createDataset("d");
    await Deno.writeFile(`${dir}/f`, pseudoRandom(2 * MiB));
    await pool.snapshot("d", "s1");
    const fs = `${pool.name}/d`;
    const env = { ...childEnv(bed.s3, store.bucket), FILESYSTEM: fs, Z3_CONFIG: "/dev/null" };
    ok(await runZ3(["backup", "--compressor", "none"], env));
    for (
      const args of [["--help"], ["status"], ["status", "--json"], ["get", `${fs}@s1`]]
    ) {
      const r = await withClosedStdout(Z3, args, env);
      assert.equal(r.code, 0, `z3 ${args.join(" ")} | true: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /Broken pipe|^z3: /m, `z3 ${args.join(" ")} | true`);
    }
    // A failure keeps its own status.
    const r = await withClosedStdout(Z3, ["restore", "nope"], env);
    assert.equal(r.code, 2, r.stderr);
  } finally {
    await emptyBucket(store);
    await pool.destroy();
  }
});

integration(
  "backup --prune without retention, and --snapshot outside SNAPSHOT_PREFIX, are refused before any upload",
  async (bed) => {
    const pool = await createPool(256);
    const store = await freshBucket(bed.s3, "refuse");
    try {
      await pool.createDataset("d");
      await pool.snapshot("d", "manual-1");
      await pool.snapshot("d", "auto-1");
      const fs = `${pool.name}/d`;
      const env = { ...childEnv(bed.s3, store.bucket), FILESYSTEM: fs };
      failure(
        await runZ3(["backup", "--prune"], env),
        2,
        /^z3: Cannot back up with --prune: the policy keeps nothing; set KEEP_LAST/,
      );
      const conf = await tempConf("[main]\nSNAPSHOT_PREFIX=auto-\n");
      failure(
        await runZ3(["backup", "--snapshot", "manual-1", "--config", conf], env),
        2,
        new RegExp(
          `^z3: Cannot back up "manual-1": SNAPSHOT_PREFIX is "auto-" \\(from ${conf}:2\\) and ` +
            `the name does not start with it`,
        ),
      );
      assert.deepEqual(await Array.fromAsync(store.list("")), [], "nothing was uploaded");
      // An empty SNAPSHOT_PREFIX in the environment overrides the file's.
      const r = await runZ3(["backup", "--snapshot", "manual-1", "--config", conf], {
        ...env,
        SNAPSHOT_PREFIX: "",
      });
      assert.match(ok(r)[0], new RegExp(`^${fs}@manual-1: full, `));
      assert.ok(await store.head(`z3-backup/${fs}@manual-1`));
    } finally {
      await emptyBucket(store);
      await pool.destroy();
    }
  },
);

integration(
  "missing credentials, and a bare HOST on a plain-HTTP port, each fail with one line saying what to set",
  async (bed) => {
    const base = { BUCKET: "z3-no-such-bucket", HOST: bed.s3.S3_ENDPOINT };
    failure(
      await runZ3(["cleanup", "--dry-run"], base),
      4,
      /^z3: Cannot list .*: no credentials: set S3_KEY_ID and S3_SECRET \(or S3_KEY_ID_FILE and S3_SECRET_FILE\)/,
    );
    const secret = bed.s3.S3_SECRET;
    const half = await runZ3(["cleanup", "--dry-run"], { ...base, S3_SECRET: secret });
    failure(half, 2, /set both S3_KEY_ID and S3_SECRET, or neither/);
    assert.ok(!half.stderr.includes(secret), "the secret is never printed");
    const bare = bed.s3.S3_ENDPOINT.replace(/^http:\/\//, "");
    const started = performance.now();
    const tls = await runZ3(["cleanup", "--dry-run"], {
      ...childEnv(bed.s3, "z3-no-such-bucket"),
      HOST: bare,
    });
    failure(
      tls,
      4,
      new RegExp(
        `did not answer in TLS .*: a HOST without a scheme means https; if the server speaks ` +
          `plain HTTP, write HOST=http://${bare}$`,
      ),
    );
    assert.ok(performance.now() - started < 30_000, "not retried: retrying cannot help");
    assert.ok(!tls.stderr.includes(secret));
  },
  { zfs: false },
);

integration(
  "global options before the command, ConfigParser's inline comments, command help and version",
  async (bed) => {
    const store = await freshBucket(bed.s3, "global");
    try {
      const conf = await tempConf(
        [
          "[main]",
          `BUCKET=${store.bucket}`,
          `HOST=${bed.s3.S3_ENDPOINT}`,
          `S3_KEY_ID=${bed.s3.S3_KEY_ID}`,
          `S3_SECRET=${bed.s3.S3_SECRET}`,
          "S3_PREFIX=first/",
          "S3_PREFIX=daily-prefix/   ; the prefix",
          "",
        ].join("\n"),
      );
      const r = await runZ3(["--config", conf, "cleanup", "--dry-run"], { Z3_CONFIG: undefined });
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `^warning: S3_PREFIX is set twice in \\[main\\] of ${conf}, on lines 6 and 7: line 7 is used$`,
          "m",
        ),
      );
      assert.match(r.stderr, /^dry run: 0 pending multipart upload\(s\) under "daily-prefix\/" /m);
      const help = await runZ3(["backup", "--help"]);
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, /^Usage:\n {2}z3 backup /);
      assert.match(help.stdout, /^ {2}backup {4}upload every snapshot/m);
      assert.doesNotMatch(help.stdout, /z3 restore|^ {2}restore /m, "only backup's help");
      assert.match(ok(await runZ3(["version"]))[0], /^z3 \d+\.\d+\.\d+$/);
      assert.match(ok(await runPput(["--version"]))[0], /^pput \d+\.\d+\.\d+$/);
      // pput --quiet: not even the warning about a config file others can read.
      await Deno.chmod(conf, 0o644);
      const put = await runPput(["--quiet", "--config", conf, "quiet-key"], {
        stdin: new Uint8Array(1000),
        env: { Z3_CONFIG: undefined },
      });
      assert.deepEqual([put.code, put.stdout, put.stderr], [0, "", ""]);
      assert.equal((await store.head("quiet-key"))?.size, 1000);
    } finally {
      await emptyBucket(store);
    }
  },
  { zfs: false },
);

/** Feeds `bytes` to `script args` and times it from its first MiB read to its exit. */
async function timedUpload(
  args: string[],
  env: Record<string, string>,
  bytes: Uint8Array,
): Promise<{ result: CliResult; seconds: number }> {
  const child = spawnCli(PPUT, args, { env });
  // The pipe holds 64 KiB: once the first MiB is written, pput is reading.
  await child.write(bytes.subarray(0, MiB));
  const start = performance.now();
  await child.write(bytes.subarray(MiB));
  await child.closeStdin();
  const result = await child.result;
  return { result, seconds: (performance.now() - start) / 1000 };
}

integration("MAX_RATE holds an upload and a download to within 15 % of the limit", async (bed) => {
  const store = await freshBucket(bed.s3, "rate");
  try {
    const env = childEnv(bed.s3, store.bucket);
    // 81 MiB at 10 MiB/s: the 80 MiB after the first take about 8 s.
    const data = pseudoRandom(81 * MiB, 7);
    const limit = 10 * MiB;
    const up = await timedUpload(["rated"], { ...env, MAX_RATE: "10M" }, data);
    assert.equal(up.result.code, 0, up.result.stderr);
    const rate = (data.length - MiB) / up.seconds;
    assert.ok(
      rate >= 0.85 * limit && rate <= 1.15 * limit,
      `upload at ${(rate / MiB).toFixed(2)} MiB/s with MAX_RATE=10M (${up.seconds.toFixed(2)} s)`,
    );
    // The same limit paces downloads: z3 get of the 81 MiB at 10 MiB/s takes at least 7 s
    // (start-up only adds to that).
    const started = performance.now();
    const got = await runZ3(["get", "rated"], { ...env, MAX_RATE: "10M" });
    const seconds = (performance.now() - started) / 1000;
    assert.equal(got.code, 0, got.stderr);
    const downRate = data.length / seconds;
    assert.ok(downRate <= 1.15 * limit, `download at ${(downRate / MiB).toFixed(2)} MiB/s`);
  } finally {
    await emptyBucket(store);
  }
}, { zfs: false });

integration(
  "backup, restore and verify show progress naming the snapshot, on a terminal or with --progress; backup's lines give duration and rate",
  async (bed) => {
    const pool = await createPool(256);
    const store = await freshBucket(bed.s3, "progress");
    try {
      const dir = await pool.createDataset("d");
      await Deno.writeFile(`${dir}/f`, pseudoRandom(3 * MiB));
      await pool.snapshot("d", "s1");
      const fs = `${pool.name}/d`;
      const env = { ...childEnv(bed.s3, store.bucket), FILESYSTEM: fs };
      const backup = await runZ3(["backup", "--progress"], env);
      assert.match(
        ok(backup)[0],
        new RegExp(
          `^${fs}@s1: full, \\d+ bytes in 1 part\\(s\\) in \\d+\\.\\d s, [\\d.]+ (B|KiB|MiB)/s$`,
        ),
      );
      assert.match(backup.stderr, new RegExp(`\\r${fs}@s1: [\\d.]+ (B|KiB|MiB)`));
      const size = (await store.head(`z3-backup/${fs}@s1`))!.size;
      const whole = `\\r${fs}@s1: [\\d.]+ (B|KiB|MiB) of [\\d.]+ (B|KiB|MiB) \\(100%\\), `;
      const restore = await runZ3(
        ["restore", "s1", "--target", `${pool.name}/r`, "--progress"],
        env,
      );
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stderr, new RegExp(whole), `restore of ${size} bytes`);
      const verify = await runZ3(["verify", "--progress"], env);
      assert.equal(verify.code, 0, verify.stderr);
      assert.match(verify.stderr, new RegExp(whole));
      // Into a pipe, unasked: no progress line.
      const piped = await runZ3(["verify"], env);
      assert.equal(piped.code, 0, piped.stderr);
      assert.doesNotMatch(piped.stderr, /\r/);
      // On a terminal (script(1) gives z3 one), by default.
      const tty = await new Deno.Command("script", {
        args: ["-qec", 'exec "$DENO" run --allow-all "$Z3_MAIN" verify', "/dev/null"],
        env: { ...env, DENO: Deno.execPath(), Z3_MAIN: Z3, Z3_CONFIG: "/dev/null" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(tty.stdout);
      assert.equal(tty.code, 0, text);
      assert.match(text, new RegExp(whole));
    } finally {
      await emptyBucket(store);
      await pool.destroy();
    }
  },
);
