/**
 * `z3 backup` and `z3 restore --target` with and without age encryption, side by side (issue #13,
 * "Performance"). See the "Backup and restore with age" section of `bench/README.md`.
 *
 * Run from the repository root (as root, for zfs-fuse): `deno task bench --backup [--size 1G]
 * [--runs 3]`, or `deno run --allow-all bench/backup_bench.ts ...`.
 *
 * It makes a throwaway zfs-fuse pool on an image file (tests/bed/zfs_bed.ts) and a fresh bucket
 * on the test gateway (tests/bed/s3_bed.ts), fills one dataset with SIZE bytes in 64 MiB files
 * whose 1 MiB blocks alternate between pseudo-random bytes and repeated log-like text (so zstd
 * has work: about half the stream compresses well), and snapshots it. Then, per run, for plain
 * and then age (COMPRESSOR=zstd both, age with one recipient made by `age-keygen`):
 * `z3 backup --full` (timed, wall of the z3 process), `z3 restore SNAP --target POOL/r` (timed),
 * an untimed check that the restored tree equals the source (treeDigest), then the restored
 * dataset is destroyed and every object written is deleted. MB/s is SIZE (10^6 bytes) over the
 * wall seconds; the ratio age/plain is taken of the medians.
 *
 * The objects, the bucket, the pool and the key are removed at the end, whatever happens.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { parseSize } from "../lib/size.ts";
import type { S3Store } from "../lib/s3.ts";
import { withCleanup } from "../tests/bed/cleanup.ts";
import { runZ3 } from "../tests/bed/cli.ts";
import { pseudoRandom, treeDigest } from "../tests/bed/files.ts";
import { run } from "../tests/bed/run.ts";
import { childEnv, ensureS3, freshBucket, type S3Env } from "../tests/bed/s3_bed.ts";
import { createPool, ensureZfs } from "../tests/bed/zfs_bed.ts";

const MiB = 2 ** 20;
const FILE = 64 * MiB;
const DATA = "data";
const SNAP = "bench-1";

const HELP = `Usage: deno task bench --backup [options]
z3 backup and z3 restore --target of one dataset with and without AGE_RECIPIENTS
(COMPRESSOR=zstd), interleaved, on a throwaway zfs-fuse pool and the test gateway. Needs root.

Options:
  --size SIZE   data in the dataset, a multiple of 1 MiB [default: 1G]
  --runs N      runs of each mode; the median is reported [default: 3]
  -h, --help    this help
`;

function log(msg: string): void {
  console.error(`backup-bench: ${msg}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One 1 MiB block of log-like text (compresses about 10:1 with zstd -1 … -3). */
function textBlock(n: number): Uint8Array {
  const lines: string[] = [];
  let len = 0;
  for (let i = 0; len < MiB; i++) {
    const line = `2026-12-01T12:${String(i % 60).padStart(2, "0")}:00Z host${n % 7} ` +
      `backup[${1000 + (i % 97)}]: sent block ${n * 4096 + i} of dataset tank/data ok\n`;
    lines.push(line);
    len += line.length;
  }
  return new TextEncoder().encode(lines.join("")).subarray(0, MiB);
}

/** Writes `size` bytes into `dir` as 64 MiB files of alternating random and text blocks. */
async function fill(dir: string, size: number): Promise<void> {
  let block = 0;
  for (let f = 0; f * FILE < size; f++) {
    const file = await Deno.open(`${dir}/f${f}.bin`, { write: true, create: true });
    try {
      const end = Math.min(size, (f + 1) * FILE);
      for (let at = f * FILE; at < end; at += MiB, block++) {
        const bytes = block % 2 ? textBlock(block) : pseudoRandom(MiB, block + 1);
        for (let off = 0; off < bytes.length;) off += await file.write(bytes.subarray(off));
      }
    } finally {
      file.close();
    }
  }
}

async function deleteAll(store: S3Store): Promise<void> {
  const keys: string[] = [];
  for await (const o of store.list("")) keys.push(o.key);
  for (const k of keys) await store.delete(k);
}

async function deleteBucket(s3: S3Env, bucket: string): Promise<void> {
  const client = new S3Client({
    endpoint: s3.S3_ENDPOINT,
    region: s3.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.S3_KEY_ID, secretAccessKey: s3.S3_SECRET },
  });
  try {
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
}

async function destroyDataset(name: string): Promise<void> {
  // zfs-fuse may call a freshly received dataset busy for a moment.
  for (let i = 0;; i++) {
    try {
      await run(["zfs", "destroy", "-r", name]);
      return;
    } catch (err) {
      if (i >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function sameTree(a: Map<string, string>, b: Map<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1G" },
      runs: { type: "string", default: "3" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const size = parseSize(values.size!);
  const runs = Number(values.runs);
  if (size < MiB || size % MiB) throw new Error(`Cannot use --size "${values.size}": not n MiB`);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new Error(`Cannot use --runs "${values.runs}": not a positive integer`);
  }
  const noZfs = await ensureZfs();
  if (noZfs) throw new Error(`Cannot make a pool: ${noZfs}`);
  const s3 = await ensureS3();
  if (typeof s3 === "string") throw new Error(`Cannot reach the test gateway: ${s3}`);

  // The source, one restored copy at a time, and slack.
  const pool = await createPool(Math.ceil((size * 2.5) / MiB) + 256);
  const tmp = await Deno.makeTempDir({ prefix: "z3-backup-bench-" });
  let store: S3Store | undefined;
  const times = {
    plain: { backup: [] as number[], restore: [] as number[], object: 0 },
    age: { backup: [] as number[], restore: [] as number[], object: 0 },
  };
  await withCleanup([
    async () => {
      if (store) await deleteAll(store);
    },
    () => store?.close(),
    () => store && deleteBucket(s3, store.bucket),
    () => pool.destroy(),
    () => Deno.remove(tmp, { recursive: true }),
  ], async () => {
    store = await freshBucket(s3, "backup-bench");
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    log(`writing ${size / MiB} MiB to ${dataset}`);
    await fill(dir, size);
    await pool.snapshot(DATA, SNAP);
    const source = await treeDigest(dir);
    const key = `${tmp}/key.txt`;
    await run(["age-keygen", "-o", key]);
    const recipient = (await Deno.readTextFile(key)).match(/# public key: (age1\S+)/)![1];
    const env = {
      ...childEnv(s3, store.bucket),
      FILESYSTEM: dataset,
      SNAPSHOT_PREFIX: "bench-",
      COMPRESSOR: "zstd",
      AGE_IDENTITY_FILE: key,
    };
    const modes = {
      plain: { ...env, AGE_RECIPIENTS: undefined },
      age: { ...env, AGE_RECIPIENTS: recipient },
    };
    for (let r = 1; r <= runs; r++) {
      for (const mode of ["plain", "age"] as const) {
        const target = `${pool.name}/r`;
        let t0 = performance.now();
        const b = await runZ3(["backup", "--full", "--quiet"], modes[mode]);
        const backupS = (performance.now() - t0) / 1000;
        if (b.code !== 0) throw new Error(`z3 backup (${mode}) exit ${b.code}: ${b.stderr}`);
        for await (const o of store.list("")) {
          if (o.key.endsWith(`@${SNAP}`)) times[mode].object = o.size;
        }
        t0 = performance.now();
        const rs = await runZ3(["restore", SNAP, "--target", target], modes[mode]);
        const restoreS = (performance.now() - t0) / 1000;
        if (rs.code !== 0) throw new Error(`z3 restore (${mode}) exit ${rs.code}: ${rs.stderr}`);
        const mnt = (await run(["zfs", "get", "-H", "-o", "value", "mountpoint", target])).trim();
        if (!sameTree(source, await treeDigest(mnt))) {
          throw new Error(`the restored tree (${mode}) differs from the source`);
        }
        times[mode].backup.push(backupS);
        times[mode].restore.push(restoreS);
        log(
          `run ${r} ${mode}: backup ${backupS.toFixed(2)} s, restore ${restoreS.toFixed(2)} s`,
        );
        await destroyDataset(target);
        await deleteAll(store);
      }
    }
  });

  const mbps = (s: number) => size / 1e6 / s;
  const row = (mode: "plain" | "age") => {
    const t = times[mode];
    const b = median(t.backup), rs = median(t.restore);
    return `| ${mode.padEnd(5)} | ${runs} | ${(t.object / MiB).toFixed(1)} | ${b.toFixed(2)} | ` +
      `${mbps(b).toFixed(1)} | ${rs.toFixed(2)} | ${mbps(rs).toFixed(1)} |`;
  };
  const ratio = (k: "backup" | "restore") => median(times.plain[k]) / median(times.age[k]);
  const all = (mode: "plain" | "age", k: "backup" | "restore") =>
    times[mode][k].map((s) => mbps(s).toFixed(1)).join(", ");
  console.log(
    [
      `${size / MiB} MiB of data, COMPRESSOR=zstd, ${runs} runs per mode, interleaved`,
      "",
      "| mode  | runs | object MiB | backup s | backup MB/s | restore s | restore MB/s |",
      "| ----- | ---- | ---------- | -------- | ----------- | --------- | ------------ |",
      row("plain"),
      row("age"),
      "",
      `age/plain (median MB/s): backup ${ratio("backup").toFixed(3)}, ` +
      `restore ${ratio("restore").toFixed(3)}`,
      `every run, MB/s: backup plain ${all("plain", "backup")}; age ${all("age", "backup")}`,
      `restore plain ${all("plain", "restore")}; age ${all("age", "restore")}`,
    ].join("\n"),
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (err) {
    log((err as Error).message ?? String(err));
    Deno.exit(1);
  }
}
