/**
 * The whole path of a backup and a restore against its floors and the peer pipeline (issue #16),
 * the `whole` section of `deno task bench` (see `bench/README.md`, "Whole path"). Needs root.
 *
 * On a throwaway zfs-fuse pool on an image file and a fresh bucket of the test gateway, one
 * dataset holds SIZE bytes in 64 MiB files whose 1 MiB blocks alternate between pseudo-random
 * bytes and log-like text (a compressible real send stream: zstd -1 makes about half of it). Its
 * send stream is saved to a file once. Then, per run, interleaved:
 *
 * - floors of the stream: `zfs send` into a pipe; `zfs receive` from the saved file;
 * - per mode (`none`; `zstd`, the default compressor; `zstd+age`, one X25519 recipient):
 *   `z3 backup --full`; `pput` of the object's bytes from a file (the upload alone); `zfs send`
 *   and that pput at once (no data between them: the least time this machine needs for both
 *   halves of a backup); for `zstd` modes `zfs send | zstd [| age] | pput` (the shell's direct
 *   pipes, the ones issue #26 measures z3 against); `z3 get` of the object to /dev/null (the verified
 *   download alone); `z3 get` and `zfs receive` from the file at once; for `zstd` modes
 *   `z3 get | zstd -d | zfs receive`; the peer pipeline `aws s3 cp s3://… - [| age -d]
 *   [| zstd -d] | zfs receive`; `z3 restore SNAP --target`.
 *
 * Every command runs under `/usr/bin/time` (wall, user+sys of its tree, peak RSS of its largest
 * process), after a `sync`; meanwhile the bytes the machine's disks read and wrote are taken
 * from `/proc/diskstats` (every process's, the Ceph OSD's and zfs-fuse's included), and the CPU
 * seconds of the Ceph daemons, of zfs-fuse and of all cores (`machine_cpu.ts`). MB/s is the
 * send stream's bytes (10^6) over wall seconds for every row, also for rows that move
 * compressed bytes, so every ratio is a ratio of times. Every received snapshot must carry the
 * source's GUID, and every z3 restore's tree must equal the source's, file by file (untimed);
 * each is then destroyed; the objects are deleted after each mode; the bucket, the pool, the key
 * and the files go at the end.
 *
 * @module
 */

import { DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3Store } from "../lib/backend/s3.ts";
import { withCleanup } from "../tests/bed/cleanup.ts";
import { pseudoRandom, treeDigest } from "../tests/bed/files.ts";
import { run } from "../tests/bed/run.ts";
import { ensureS3, freshBucket, type S3Env } from "../tests/bed/s3_bed.ts";
import { createPool, ensureZfs } from "../tests/bed/zfs_bed.ts";
import { type CpuClock, cpuClock, type CpuReading, cpuUsed, readCpu } from "./machine_cpu.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const TIME = "/usr/bin/time";
const MiB = 2 ** 20;
const FILE = 64 * MiB;
const DATA = "data";
const SNAP = "bench-1";

/** The modes of a backup, by the settings that differ. */
export const MODES = ["none", "zstd", "zstd+age"] as const;
/** One mode. */
export type Mode = typeof MODES[number];

/** What {@linkcode wholePath} needs. */
export interface WholePathOptions {
  /** Bytes of data in the dataset, a multiple of 1 MiB. */
  size: number;
  /** Runs of every row, interleaved. */
  runs: number;
  /** Modes to run. @default {all of MODES} */
  modes?: Mode[];
  /** The aws command, for the peer pipeline. */
  aws: string;
  /** Progress lines. */
  log: (line: string) => void;
}

/** One timed command. */
interface Sample {
  wall: number;
  cpu: number;
  rssMiB: number;
  /** MiB read from and written to the machine's disks while it ran (every process's). */
  diskRead: number;
  diskWritten: number;
  /** CPU seconds of the Ceph daemons, zfs-fuse and all the machine's cores meanwhile. */
  used: CpuReading;
}

/** MiB read and written so far by the machine's whole disks (/proc/diskstats, /sys/block). */
async function diskMiB(): Promise<[number, number]> {
  const disks = new Set<string>();
  for await (const e of Deno.readDir("/sys/block")) {
    if (!/^(loop|ram|zram)/.test(e.name)) disks.add(e.name);
  }
  let read = 0, written = 0;
  for (const line of (await Deno.readTextFile("/proc/diskstats")).split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && disks.has(f[2])) {
      read += Number(f[5]) * 512;
      written += Number(f[9]) * 512;
    }
  }
  return [read / MiB, written / MiB];
}

/** Rows of the report: a name, then every run. */
type Samples = Map<string, Sample[]>;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One 1 MiB block of log-like text (compresses about 10:1 with zstd -1). */
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

/**
 * Runs `argv` under /usr/bin/time with stdin from `input` and stdout to `output` (both paths),
 * a cleared environment `env`; throws with its stderr's tail when it fails.
 */
async function timed(
  what: string,
  argv: string[],
  env: Record<string, string>,
  timeFile: string,
  redact: (s: string) => string,
  clock: CpuClock,
  io: { input?: string; output?: string } = {},
): Promise<Sample> {
  // What earlier rows left in the page cache is written out first, not during this row.
  await run(["sync"]);
  const disk0 = await diskMiB();
  const cpu0 = await readCpu(clock);
  const out = await new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'i=$1; o=$2; shift 2; exec "$@" < "$i" > "$o"',
      "sh",
      io.input ?? "/dev/null",
      io.output ?? "/dev/null",
      TIME,
      "-f",
      "%e %U %S %M",
      "-o",
      timeFile,
      ...argv,
    ],
    env,
    clearEnv: true,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const cpu1 = await readCpu(clock);
  const disk1 = await diskMiB();
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-4).join(" / ");
    throw new Error(`${what} failed (exit ${out.code}): ${redact(err)}`);
  }
  const lines = (await Deno.readTextFile(timeFile)).trim().split("\n");
  const t = lines[lines.length - 1].split(" ").map(Number);
  if (t.length !== 4 || t.some((x) => !Number.isFinite(x))) {
    throw new Error(`cannot parse ${TIME} output: ${lines.join(" / ")}`);
  }
  return {
    wall: t[0],
    cpu: t[1] + t[2],
    rssMiB: t[3] / 1024,
    diskRead: disk1[0] - disk0[0],
    diskWritten: disk1[1] - disk0[1],
    used: cpuUsed(cpu0, cpu1),
  };
}

/** Each mode's rows, by what they measure; the report lists them in this order. */
function modeRows(m: Mode) {
  return {
    backup: `${m}: z3 backup`,
    pput: `${m}: pput of the object from a file`,
    backupAtOnce: `${m}: zfs send and pput of the object at once`,
    /** Absent for `none`, whose backup pipes nothing between two children. */
    backupDirect: m === "none"
      ? undefined
      : `${m}: zfs send | ${m === "zstd+age" ? "zstd | age" : "zstd"} | pput`,
    get: `${m}: z3 get to /dev/null`,
    restoreAtOnce: `${m}: z3 get and zfs receive from a file at once`,
    /** Absent for `none`, likewise. */
    restoreDirect: m === "none" ? undefined : `${m}: z3 get | zstd -d | zfs receive`,
    peer: `${m}: aws s3 cp - | zfs receive`,
    restore: `${m}: z3 restore`,
  };
}

/** Report rows in order: the floors, then each mode's. */
function rowNames(modes: Mode[]): string[] {
  const rows = ["zfs send into a pipe", "zfs receive from a file"];
  for (const m of modes) {
    rows.push(...Object.values(modeRows(m)).filter((r): r is string => r !== undefined));
  }
  return rows;
}

/**
 * Runs the whole-path benchmark (module doc) and returns its report (Markdown); throws when a
 * command fails or a restored tree differs from the source.
 */
export async function wholePath(options: WholePathOptions): Promise<string> {
  const { size, runs, log } = options;
  const modes = options.modes ?? [...MODES];
  if (size < MiB || size % MiB) throw new Error(`Cannot use size ${size}: not n MiB`);
  const noZfs = await ensureZfs();
  if (noZfs) throw new Error(`Cannot make a pool: ${noZfs}`);
  const s3 = await ensureS3();
  if (typeof s3 === "string") throw new Error(`Cannot reach the test gateway: ${s3}`);
  const redact = (s: string) => s.replaceAll(s3.S3_SECRET, "***");
  const clock = await cpuClock();

  // The source, one restored copy at a time, and slack.
  const pool = await createPool(Math.ceil((size * 2.5) / MiB) + 256);
  const tmp = await Deno.makeTempDir({ prefix: "z3-whole-path-bench-" });
  const samples: Samples = new Map(rowNames(modes).map((r) => [r, []]));
  const objectBytes = new Map<Mode, number>();
  let streamBytes = 0;
  let store: S3Store | undefined;
  await withCleanup([
    async () => {
      if (store) await deleteAll(store);
    },
    () => store?.close(),
    () => store && deleteBucket(s3, store.bucket),
    () => pool.destroy(),
    () => Deno.remove(tmp, { recursive: true }),
  ], async () => {
    store = await freshBucket(s3, "whole-path");
    const bucket = store.bucket;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    const snapshot = `${dataset}@${SNAP}`;
    log(`writing ${size / MiB} MiB to a throwaway pool`);
    await fill(dir, size);
    await pool.snapshot(DATA, SNAP);
    const source = await treeDigest(dir);
    const stream = `${tmp}/stream`;
    const object = `${tmp}/object`;
    const timeFile = `${tmp}/time`;
    const config = `${tmp}/z3.conf`;
    await Deno.writeTextFile(config, "");
    const key = `${tmp}/key.txt`;
    await run(["age-keygen", "-o", key]);
    const recipient = (await Deno.readTextFile(key)).match(/# public key: (age1\S+)/)![1];
    const awsConfig = `${tmp}/aws.config`;
    await Deno.writeTextFile(
      awsConfig,
      `[default]\nregion = ${s3.S3_REGION}\ns3 =\n  addressing_style = path\n`,
    );
    const base: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      LANG: "C.UTF-8",
    };
    for (const k of ["DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
      const v = Deno.env.get(k);
      if (v) base[k] = v;
    }
    const s3Env = {
      BUCKET: bucket,
      HOST: s3.S3_ENDPOINT,
      S3_KEY_ID: s3.S3_KEY_ID,
      S3_SECRET: s3.S3_SECRET,
      S3_REGION: s3.S3_REGION,
    };
    const z3Env = (mode: Mode): Record<string, string> => ({
      ...base,
      ...s3Env,
      Z3_CONFIG: config,
      FILESYSTEM: dataset,
      SNAPSHOT_PREFIX: "bench-",
      COMPRESSOR: mode === "none" ? "none" : "zstd",
      AGE_IDENTITY_FILE: key,
      ...(mode === "zstd+age" ? { AGE_RECIPIENTS: recipient } : {}),
    });
    const awsEnv = {
      ...base,
      AWS_ACCESS_KEY_ID: s3.S3_KEY_ID,
      AWS_SECRET_ACCESS_KEY: s3.S3_SECRET,
      AWS_DEFAULT_REGION: s3.S3_REGION,
      AWS_CONFIG_FILE: awsConfig,
      AWS_SHARED_CREDENTIALS_FILE: `${tmp}/no-such-credentials`,
      AWS_EC2_METADATA_DISABLED: "true",
      AWS_PAGER: "",
    };
    const deno = Deno.execPath();
    const z3 = (...args: string[]) => [deno, "run", "--allow-all", `${ROOT}/main.ts`, ...args];
    const pput = (k: string) => [deno, "run", "--allow-all", `${ROOT}/pput.ts`, k];
    const record = (row: string, s: Sample) => {
      samples.get(row)!.push(s);
      log(`  ${row}: ${s.wall.toFixed(2)} s, ${(streamBytes / 1e6 / s.wall).toFixed(1)} MB/s`);
    };
    const guid = async (snap: string) =>
      (await run(["zfs", "get", "-Hp", "-o", "value", "guid", snap])).trim();
    // A zfs receive checks the stream's own checksums; the snapshot's GUID says it is the
    // source's. z3 restore's trees are also compared file by file.
    const checkRestored = async (target: string, what: string, tree: boolean) => {
      if ((await guid(`${target}@${SNAP}`)) !== (await guid(snapshot))) {
        throw new Error(`the snapshot received by ${what} is not the source's`);
      }
      const mnt = (await run(["zfs", "get", "-H", "-o", "value", "mountpoint", target])).trim();
      if (tree && !sameTree(source, await treeDigest(mnt))) {
        throw new Error(`the tree restored by ${what} differs from the source`);
      }
      await destroyDataset(target);
    };

    await run(["sh", "-c", 'zfs send "$1" > "$2"', "sh", snapshot, stream], {
      timeoutMs: 30 * 60_000,
    });
    streamBytes = (await Deno.stat(stream)).size;
    log(`send stream: ${(streamBytes / MiB).toFixed(1)} MiB`);
    // Warm Deno's module cache, so no row pays for compiling.
    await run(z3("--help"));
    await run(pput("--help"));

    for (let r = 1; r <= runs; r++) {
      log(`run ${r} of ${runs}`);
      record(
        "zfs send into a pipe",
        await timed(
          "zfs send | cat",
          [
            "sh",
            "-c",
            'zfs send "$1" | cat > /dev/null',
            "sh",
            snapshot,
          ],
          base,
          timeFile,
          redact,
          clock,
        ),
      );
      record(
        "zfs receive from a file",
        await timed(
          "zfs receive < file",
          ["zfs", "receive", `${pool.name}/f`],
          base,
          timeFile,
          redact,
          clock,
          {
            input: stream,
          },
        ),
      );
      await checkRestored(`${pool.name}/f`, "zfs receive", false);
      for (const mode of modes) {
        const env = z3Env(mode);
        const rows = modeRows(mode);
        record(
          rows.backup,
          await timed(
            `z3 backup (${mode})`,
            z3("backup", "--full", "--quiet"),
            env,
            timeFile,
            redact,
            clock,
          ),
        );
        let objectKey = "";
        for await (const o of store.list("")) {
          if (o.key.endsWith(`@${SNAP}`)) {
            objectKey = o.key;
            objectBytes.set(mode, o.size);
          }
        }
        if (!objectKey) throw new Error(`z3 backup (${mode}) left no object for ${SNAP}`);
        record(
          rows.get,
          await timed(`z3 get (${mode})`, z3("get", objectKey), env, timeFile, redact, clock),
        );
        // The object's bytes as stored (compressed, encrypted), for the upload alone; without
        // compression or encryption they are the saved stream.
        if (mode !== "none") {
          await timed(
            `aws s3 cp to a file (${mode})`,
            [
              options.aws,
              "s3",
              "cp",
              "--no-progress",
              "--endpoint-url",
              s3.S3_ENDPOINT,
              `s3://${bucket}/${objectKey}`,
              "-",
            ],
            awsEnv,
            timeFile,
            redact,
            clock,
            { output: object },
          );
        }
        record(
          rows.pput,
          await timed(
            `pput (${mode})`,
            pput(`bench/pput-${r}`),
            { ...base, ...s3Env },
            timeFile,
            redact,
            clock,
            { input: mode === "none" ? stream : object },
          ),
        );
        await store.delete(`bench/pput-${r}`);
        // A backup must do both halves: the send and the upload of the object. Run at once with
        // no data passing between them, they give the least time this machine needs for both.
        record(
          rows.backupAtOnce,
          await timed(
            `zfs send and pput at once (${mode})`,
            [
              "sh",
              "-c",
              'zfs send "$1" | cat > /dev/null & p=$!; "$2" run --allow-all "$3/pput.ts" "$4" ' +
              '< "$5" > /dev/null || exit 1; wait "$p"',
              "sh",
              snapshot,
              deno,
              ROOT,
              `bench/pput-${r}`,
              mode === "none" ? stream : object,
            ],
            { ...base, ...s3Env },
            timeFile,
            redact,
            clock,
          ),
        );
        await store.delete(`bench/pput-${r}`);
        if (rows.backupDirect) {
          // What z3 backup would be if zfs send, zstd (and age) were piped to each other
          // directly, which Deno.Command cannot do (bench/README.md).
          const stages = ["zstd -1 -T0 -q -c", ...(mode === "zstd+age" ? ['age -r "$5"'] : [])];
          record(
            rows.backupDirect,
            await timed(
              `zfs send | ... | pput (${mode})`,
              [
                "sh",
                "-c",
                ['zfs send "$1"', ...stages, '"$2" run --allow-all "$3/pput.ts" "$4" > /dev/null']
                  .join(" | "),
                "sh",
                snapshot,
                deno,
                ROOT,
                `bench/pput-${r}`,
                recipient,
              ],
              { ...base, ...s3Env },
              timeFile,
              redact,
              clock,
            ),
          );
          await store.delete(`bench/pput-${r}`);
        }
        // Likewise a restore must do both the download and the receive.
        const atOnce = `${pool.name}/a`;
        record(
          rows.restoreAtOnce,
          await timed(
            `z3 get and zfs receive at once (${mode})`,
            [
              "sh",
              "-c",
              '"$1" run --allow-all "$2/main.ts" get "$3" > /dev/null & p=$!; ' +
              'zfs receive "$4" < "$5" || exit 1; wait "$p"',
              "sh",
              deno,
              ROOT,
              objectKey,
              atOnce,
              stream,
            ],
            env,
            timeFile,
            redact,
            clock,
          ),
        );
        await checkRestored(atOnce, `zfs receive at once with z3 get (${mode})`, false);
        if (rows.restoreDirect) {
          // What z3 restore would be with its decompressor piped straight into zfs receive
          // (z3 get decrypts, as restore does).
          const direct = `${pool.name}/d`;
          record(
            rows.restoreDirect,
            await timed(
              `z3 get | ... | zfs receive (${mode})`,
              [
                "sh",
                "-c",
                [
                  '"$1" run --allow-all "$2/main.ts" get "$3"',
                  "zstd -d -q -c",
                  'zfs receive "$4"',
                ].join(" | "),
                "sh",
                deno,
                ROOT,
                objectKey,
                direct,
              ],
              env,
              timeFile,
              redact,
              clock,
            ),
          );
          await checkRestored(direct, `z3 get | ... | zfs receive (${mode})`, false);
        }
        const peer = `${pool.name}/p`;
        const stages = [
          ...(mode === "zstd+age" ? ['age -d -i "$5"'] : []),
          ...(mode === "none" ? [] : ["zstd -d -q -c"]),
        ];
        record(
          rows.peer,
          await timed(
            `aws s3 cp - | zfs receive (${mode})`,
            [
              "sh",
              "-c",
              [
                'aws s3 cp --no-progress --endpoint-url "$1" "s3://$2/$3" -',
                ...stages,
                'zfs receive "$4"',
              ].join(" | "),
              "sh",
              s3.S3_ENDPOINT,
              bucket,
              objectKey,
              peer,
              key,
            ],
            { ...awsEnv, PATH: `${options.aws.replace(/\/[^/]*$/, "")}:${base.PATH}` },
            timeFile,
            redact,
            clock,
          ),
        );
        await checkRestored(peer, `aws s3 cp - | zfs receive (${mode})`, false);
        const target = `${pool.name}/r`;
        record(
          rows.restore,
          await timed(
            `z3 restore (${mode})`,
            z3("restore", SNAP, "--target", target),
            env,
            timeFile,
            redact,
            clock,
          ),
        );
        await checkRestored(target, `z3 restore (${mode})`, true);
        await deleteAll(store);
      }
    }
  });
  return report(samples, { size, runs, modes, streamBytes, objectBytes, cores: clock.cores });
}

function report(
  samples: Samples,
  o: {
    size: number;
    runs: number;
    modes: Mode[];
    streamBytes: number;
    objectBytes: Map<Mode, number>;
    cores: number;
  },
): string {
  const wall = (row: string) => median(samples.get(row)!.map((s) => s.wall));
  const mbps = (row: string) => o.streamBytes / 1e6 / wall(row);
  const lines = [
    `${o.size / MiB} MiB of data (1 MiB blocks alternating pseudo-random and log text), send ` +
    `stream ${(o.streamBytes / MiB).toFixed(1)} MiB; objects: ` +
    o.modes.map((m) => `${m} ${((o.objectBytes.get(m) ?? 0) / MiB).toFixed(1)} MiB`).join(", ") +
    `. ${o.runs} run(s) of every row, interleaved; medians. MB/s = send-stream bytes / wall. ` +
    `CPU s: the row's own process tree; Ceph (radosgw, OSD, mon) and the zfs-fuse daemon ` +
    `meanwhile; machine = every core's busy seconds meanwhile, and what share of ${o.cores} ` +
    `cores × wall that is.`,
    "",
    "| row | median wall s | MB/s of stream | median CPU s | Ceph / zfs-fuse CPU s | machine CPU s (busy) | peak RSS MiB | disk read / written MiB | every run, MB/s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const [row, ss] of samples) {
    const rss = Math.max(...ss.map((s) => s.rssMiB));
    const disk = `${median(ss.map((s) => s.diskRead)).toFixed(0)} / ` +
      median(ss.map((s) => s.diskWritten)).toFixed(0);
    const every = ss.map((s) => (o.streamBytes / 1e6 / s.wall).toFixed(1)).join(", ");
    const daemons = `${median(ss.map((s) => s.used.ceph)).toFixed(2)} / ` +
      median(ss.map((s) => s.used.zfsFuse)).toFixed(2);
    const machine = median(ss.map((s) => s.used.machine));
    const busy = median(ss.map((s) => s.used.machine / (o.cores * s.wall)));
    lines.push(
      `| ${row.replaceAll("|", "\\|")} | ${wall(row).toFixed(2)} | ${mbps(row).toFixed(1)} | ` +
        `${median(ss.map((s) => s.cpu)).toFixed(2)} | ${daemons} | ` +
        `${machine.toFixed(2)} (${(busy * 100).toFixed(0)} %) | ${rss.toFixed(1)} | ${disk} | ` +
        `${every} |`,
    );
  }
  const ratio = (row: string, ...floors: string[]) => {
    const floor = Math.min(...floors.map(mbps));
    return mbps(row) / floor;
  };
  const mark = (x: number, target: number) =>
    `**${x.toFixed(2)}** ${x >= target ? "met" : "MISSED"}`;
  const plain = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "—");
  lines.push(
    "",
    "Restore. The issue's targets first; then how fast this machine can do a restore's two halves " +
      "at once with no data passing between them (the bound of a pipeline here), and the direct pipe " +
      "z3 cannot build with `Deno.Command`.",
    "",
    "| mode | restore / aws s3 cp - \\| zfs receive (≥ 1.0) | restore / min(zfs receive from a file, z3 get) (≥ 0.9) | both at once / that min | restore / both at once | z3 get \\| … \\| zfs receive / aws s3 cp - \\| … |",
    "| --- | --- | --- | --- | --- | --- |",
  );
  for (const m of o.modes) {
    const { restore, get, restoreAtOnce: atOnce, peer, restoreDirect: direct } = modeRows(m);
    const floors = ["zfs receive from a file", get];
    lines.push(
      `| ${m} | ${mark(ratio(restore, peer), 1.0)} | ${mark(ratio(restore, ...floors), 0.9)} | ` +
        `${plain(ratio(atOnce, ...floors))} | ${plain(ratio(restore, atOnce))} | ` +
        `${direct ? plain(ratio(direct, peer)) : "— (restore is direct)"} |`,
    );
  }
  lines.push(
    "",
    "Backup, likewise.",
    "",
    "| mode | backup / min(zfs send, pput of the object) (≥ 0.9) | both at once / that min | backup / both at once | zfs send \\| … \\| pput / that min |",
    "| --- | --- | --- | --- | --- |",
  );
  for (const m of o.modes) {
    const { backup, pput, backupAtOnce: atOnce, backupDirect: direct } = modeRows(m);
    const floors = ["zfs send into a pipe", pput];
    lines.push(
      `| ${m} | ${mark(ratio(backup, ...floors), 0.9)} | ${plain(ratio(atOnce, ...floors))} | ` +
        `${plain(ratio(backup, atOnce))} | ` +
        `${direct ? plain(ratio(direct, ...floors)) : "— (backup is direct)"} |`,
    );
  }
  lines.push("", ...againstDirectPipes(samples, o.modes));
  return lines.join("\n");
}

/**
 * Issue #26's ratios: z3 against the direct pipes and the peer, each the median of the per-run
 * ratios (run i of one row against run i of the other: they ran in the same round) and their
 * range. A ratio of speeds (the other row's wall over z3's); CPU, z3's over the other's.
 */
function againstDirectPipes(samples: Samples, modes: Mode[]): string[] {
  const perRun = (a: string, b: string, of: (s: Sample) => number, inverse: boolean) => {
    const xs = samples.get(a)!.map((s, i) => {
      const [x, y] = [of(s), of(samples.get(b)![i])];
      return inverse ? y / x : x / y;
    });
    return `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
  };
  const speed = (a: string, b?: string) => b ? perRun(a, b, (s) => s.wall, true) : "—";
  const cpu = (a: string, b?: string) => b ? perRun(a, b, (s) => s.cpu, false) : "—";
  const lines = [
    "Against the direct pipes (issue #26): speed ratios (the other row's wall / z3's, so ≥ 1 is " +
    "z3 as fast or faster) and CPU ratios (z3's tree / the other's), median of the per-run " +
    "ratios (min–max).",
    "",
    "| mode | backup / zfs send \\| … \\| pput | restore / z3 get \\| zstd -d \\| zfs receive | " +
    "restore / aws s3 cp - \\| … \\| zfs receive | restore CPU / direct restore CPU | " +
    "backup CPU / direct backup CPU |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const m of modes) {
    const r = modeRows(m);
    lines.push(
      `| ${m} | ${speed(r.backup, r.backupDirect)} | ${speed(r.restore, r.restoreDirect)} | ` +
        `${speed(r.restore, r.peer)} | ${cpu(r.restore, r.restoreDirect)} | ` +
        `${cpu(r.backup, r.backupDirect)} |`,
    );
  }
  return lines;
}
