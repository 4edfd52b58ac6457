/**
 * Measures z3's compressors on a real `zfs send` stream of this machine, to choose the default
 * (issue #4). See the "Compressors" section of `bench/README.md`.
 *
 * Run from the repository root (as root, for zfs-fuse and apt-get):
 * `deno run --allow-all bench/compress_bench.ts [--size 512M] [--runs 3]` (`--help`).
 *
 * It makes a throwaway zfs-fuse pool (tests/bed/zfs_bed.ts), fills one dataset with a stated mix
 * of text-like, random and zero-filled files, snapshots it, measures `zfs send` into /dev/null and
 * saves the stream once to a temporary file. Then, for every compressor of `lib/pipeline/compress.ts`:
 *
 * - **CLI alone**: the exact argv of `compressCommand(name)`, stdin from the stream file, stdout to
 *   /dev/null, under `/usr/bin/time` (user+sys of the compressor only);
 * - **via lib**: a child `deno run` of this script that calls `compress(name, file.readable)` and
 *   writes the result to /dev/null, under `/usr/bin/time` (so CPU includes Deno's pumping and,
 *   for `gzip`, the in-process CompressionStream);
 * - **decompress**: the same with `decompress(name, ...)` (what a restore runs; the gzip family is
 *   gunzipped in-process) on the compressed file, which is made once, untimed, beforehand; its
 *   size gives the ratio, and its round trip must give the stream back byte for byte;
 * - **zfs send | via lib**: `zfs send SNAP |` the same child reading /dev/stdin: straight from
 *   the pool, the compressor and Deno competing with the zfs-fuse daemon for the same cores, as
 *   in a real backup (less the upload).
 *
 * Every timed output goes to /dev/null; the stream file is read once beforehand so that it sits
 * in the page cache. The estimate of a backup's rate is min(zfs send | via lib, upload × ratio):
 * the upload moves compressed bytes.
 *
 * The pool is destroyed and the temporary files removed at the end, whatever happens.
 *
 * @module
 */

import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { parseArgs } from "node:util";
import { constants as zlibConstants, createZstdCompress, createZstdDecompress } from "node:zlib";
import { compress, compressCommand, COMPRESSORS, decompress } from "../lib/pipeline/compress.ts";
import { parseSize } from "../lib/config/size.ts";
import { createPool, ensureZfs, type TestPool, zfsFlavour } from "../tests/bed/zfs_bed.ts";

const TIME = "/usr/bin/time";
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const MB = 1e6;

/** Fractions of the data set, by kind. Text is split between log lines and JSON records. */
const MIX = { logs: 0.25, json: 0.15, random: 0.4, zeros: 0.2 } as const;

const HELP = `Usage: deno run --allow-all bench/compress_bench.ts [options]
Fills a throwaway zfs-fuse pool with mixed data, saves its zfs send stream and measures every z3
compressor on it (MB/s, CPU, ratio, decompression). Needs root (zfs-fuse, apt-get for missing
compressors). Writes bench/results/compress-latest.md.

Options:
  --size SIZE          data written to the dataset [default: 512M]
  --runs N             runs per measurement; the median is reported [default: 3]
  --upload-mbps N      upload rate of compressed bytes used for the estimate [default: 170]
  --dir PATH           where the stream and outputs go [default: $TMPDIR or /var/tmp]
  --only LIST          comma-separated subset of ${COMPRESSORS.join(",")},zstd-node
                       (zstd-node: zstd -1 in-process with node:zlib, not yet a z3 compressor)
  -h, --help           this help
`;

// ---------------------------------------------------------------------------------------------
// small helpers

function log(msg: string): void {
  console.error(`compress-bench: ${msg}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(x: number | undefined, digits = 1): string {
  return x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(digits);
}

async function which(cmd: string): Promise<boolean> {
  const out = await new Deno.Command("sh", {
    args: ["-c", 'command -v "$1"', "sh", cmd],
    stdout: "piped",
    stderr: "null",
  }).output();
  return out.success && new TextDecoder().decode(out.stdout).trim() !== "";
}

async function capture(argv: string[]): Promise<string> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`${argv.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Installs `pkg` with apt-get when `bin` is missing and we are root; false if still missing. */
async function ensurePackage(bin: string, pkg: string, notes: string[]): Promise<boolean> {
  if (await which(bin)) return true;
  if (Deno.uid?.() !== 0) {
    notes.push(`${bin} is missing and we are not root to install ${pkg}: skipped`);
    return false;
  }
  log(`installing ${pkg} with apt-get`);
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      `apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${pkg} >/dev/null`,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success || !(await which(bin))) {
    notes.push(`could not install ${pkg}: ${new TextDecoder().decode(out.stderr).trim()}`);
    return false;
  }
  notes.push(`installed ${pkg} with apt-get`);
  return true;
}

interface Timed {
  wall: number;
  cpu: number;
  rssKiB: number;
}

/** Runs argv under `/usr/bin/time`; wall from our clock, CPU = user + sys of the tree. */
async function timed(argv: string[]): Promise<Timed> {
  const t0 = performance.now();
  const out = await new Deno.Command(TIME, {
    args: ["-f", "%e %U %S %M", ...argv],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const wall = (performance.now() - t0) / 1000;
  const err = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) throw new Error(`${argv.join(" ")} failed: ${err.split("\n").slice(-4)}`);
  const f = err.split("\n").at(-1)!.split(" ").map(Number);
  return { wall, cpu: f[1] + f[2], rssKiB: f[3] };
}

/** `sh` running argv with stdin from `input` and stdout to `output` (exec: time sees argv). */
function redirected(argv: string[], input: string, output: string): string[] {
  return ["sh", "-c", 'i=$1 o=$2; shift 2; exec "$@" <"$i" >"$o"', "sh", input, output, ...argv];
}

async function sameFiles(a: string, b: string): Promise<boolean> {
  const out = await new Deno.Command("cmp", { args: ["-s", a, b] }).output();
  return out.success;
}

async function fileSize(path: string): Promise<number> {
  return (await Deno.stat(path)).size;
}

// ---------------------------------------------------------------------------------------------
// data

/** xorshift128: fast, seeded, good enough to be incompressible. */
class Rng {
  #s = new Uint32Array(4);
  constructor(seed: number) {
    this.#s.set([seed | 1, 0x9e3779b9, 0x243f6a88, 0xb7e15162]);
    for (let i = 0; i < 16; i++) this.next();
  }
  next(): number {
    const s = this.#s;
    let t = s[3];
    t ^= t << 11;
    t ^= t >>> 8;
    s[3] = s[2];
    s[2] = s[1];
    s[1] = s[0];
    t ^= s[0] ^ (s[0] >>> 19);
    s[0] = t;
    return t >>> 0;
  }
  int(n: number): number {
    return this.next() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  hex(digits: number): string {
    let s = "";
    while (s.length < digits) s += this.next().toString(16).padStart(8, "0");
    return s.slice(0, digits);
  }
  fill(buf: Uint8Array): void {
    const w = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2);
    for (let i = 0; i < w.length; i++) w[i] = this.next();
  }
}

const LEVELS = ["INFO", "INFO", "INFO", "INFO", "DEBUG", "DEBUG", "WARN", "ERROR"] as const;
const SERVICES = ["api", "worker", "scheduler", "auth", "billing", "search"] as const;
const MESSAGES = [
  "GET /api/v1/items/{n} completed",
  "POST /api/v1/orders accepted",
  "cache miss for key user:{n}:profile",
  "job {n} finished",
  "retrying upstream request (attempt {n})",
  "connection from 10.0.{n}.17 closed",
  "slow query on table events took longer than expected",
  "token refreshed for session {n}",
  "queue depth {n}",
  "PUT /api/v1/users/{n}/settings completed",
] as const;
const FIRST = ["Ada", "Grace", "Linus", "Ken", "Barbara", "Edsger", "Margaret", "Dennis"] as const;
const LAST = ["Lovelace", "Hopper", "Torvalds", "Thompson", "Liskov", "Dijkstra", "Hamilton"];
const CITIES = ["Berlin", "Lyon", "Porto", "Oslo", "Turin", "Ghent", "Brno", "Tartu"] as const;
const TAGS = ["new", "vip", "trial", "churned", "beta", "staff", "partner", "eu", "us"] as const;

function logText(rng: Rng, bytes: number, clock: { t: number }): string {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    clock.t += rng.int(250);
    const msg = rng.pick(MESSAGES).replace("{n}", String(rng.int(100000)));
    const line = `${new Date(clock.t).toISOString()} ${rng.pick(LEVELS).padEnd(5)} [${
      rng.pick(SERVICES)
    }-${rng.int(8)}] ${msg} request_id=${rng.hex(16)} user=${rng.int(50000)} dur=${
      (rng.int(200000) / 100).toFixed(2)
    }ms bytes=${rng.int(1 << 20)}\n`;
    parts.push(line);
    n += line.length;
  }
  return parts.join("");
}

function jsonText(rng: Rng, bytes: number, counter: { id: number }): string {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const id = ++counter.id;
    const first = rng.pick(FIRST);
    const last = rng.pick(LAST);
    const created = new Date(1.6e12 + rng.int(2 ** 31) * 50).toISOString();
    const line = JSON.stringify({
      id,
      uuid: `${rng.hex(8)}-${rng.hex(4)}-4${rng.hex(3)}-a${rng.hex(3)}-${rng.hex(12)}`,
      name: `${first} ${last}`,
      email: `${first.toLowerCase()}.${last.toLowerCase()}${rng.int(1000)}@example.com`,
      created,
      active: rng.int(4) !== 0,
      score: Number((rng.next() / 2 ** 32).toFixed(4)),
      tags: [rng.pick(TAGS), rng.pick(TAGS)],
      address: { city: rng.pick(CITIES), zip: String(10000 + rng.int(89999)) },
      orders: rng.int(200),
    }) + "\n";
    parts.push(line);
    n += line.length;
  }
  return parts.join("");
}

async function writeAll(file: Deno.FsFile, buf: Uint8Array): Promise<void> {
  for (let off = 0; off < buf.length;) off += await file.write(buf.subarray(off));
}

/** Writes the mix into `dir`; returns bytes written per kind. */
async function fillDataset(dir: string, total: number): Promise<Record<string, number>> {
  const rng = new Rng(0x5eed);
  const enc = new TextEncoder();
  const clock = { t: Date.UTC(2026, 10, 1) };
  const counter = { id: 0 };
  const written: Record<string, number> = { logs: 0, json: 0, random: 0, zeros: 0 };
  const chunk = new Uint8Array(4 * MiB);
  const zeros = new Uint8Array(4 * MiB);
  for (const kind of ["logs", "json", "random", "zeros"] as const) {
    await Deno.mkdir(`${dir}/${kind}`, { recursive: true });
    const want = Math.round(total * MIX[kind]);
    for (let i = 0; written[kind] < want; i++) {
      // File sizes vary: 2-16 MiB for text, 8-40 MiB for random, 16-64 MiB for zeros.
      const [lo, hi] = kind === "random" ? [8, 40] : kind === "zeros" ? [16, 64] : [2, 16];
      const size = Math.min(want - written[kind], (lo + rng.int(hi - lo + 1)) * MiB);
      const ext = { logs: "log", json: "jsonl", random: "bin", zeros: "img" }[kind];
      const file = await Deno.open(`${dir}/${kind}/f${String(i).padStart(4, "0")}.${ext}`, {
        write: true,
        create: true,
        truncate: true,
      });
      try {
        for (let done = 0; done < size;) {
          const n = Math.min(chunk.length, size - done);
          let buf: Uint8Array;
          if (kind === "random") {
            rng.fill(chunk);
            buf = chunk.subarray(0, n);
          } else if (kind === "zeros") {
            buf = zeros.subarray(0, n);
          } else {
            const text = kind === "logs" ? logText(rng, n, clock) : jsonText(rng, n, counter);
            buf = enc.encode(text).subarray(0, n);
          }
          await writeAll(file, buf);
          done += buf.length;
        }
      } finally {
        file.close();
      }
      written[kind] += size;
    }
    log(`wrote ${(written[kind] / MiB).toFixed(0)} MiB of ${kind}`);
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// child mode: one compress or decompress through lib/pipeline/compress.ts, file to file

/**
 * Not a z3 compressor (yet): zstd level 1 in-process with Deno's `node:zlib`. It writes standard
 * zstd frames, so `zstd -d` reads them (checked below); measured as a candidate for a default that
 * needs no command.
 */
const NODE_ZSTD = "zstd-node";

function nodeZstd(mode: string, source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const t = mode === "compress"
    ? createZstdCompress({ params: { [zlibConstants.ZSTD_c_compressionLevel]: 1 } })
    : createZstdDecompress();
  return Readable.toWeb(
    Readable.fromWeb(source as NodeReadableStream<Uint8Array>).pipe(t),
  ) as unknown as ReadableStream<Uint8Array>;
}

async function childMain(mode: string, name: string, input: string, output: string) {
  const src = await Deno.open(input);
  const dst = await Deno.open(output, { write: true, create: true, truncate: true });
  if (name === NODE_ZSTD) return await nodeZstd(mode, src.readable).pipeTo(dst.writable);
  const piped = mode === "compress" ? compress(name, src.readable) : decompress(name, src.readable);
  await piped.stream.pipeTo(dst.writable); // closes dst
  await piped.done;
}

function viaLib(mode: string, name: string, input: string, output: string): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--no-config",
    import.meta.filename!,
    "--child",
    mode,
    name,
    input,
    output,
  ];
}

// ---------------------------------------------------------------------------------------------
// main

interface Row {
  name: string;
  argv: string;
  cliMBps?: number;
  cliCpuPerGiB?: number;
  libMBps: number;
  libCpuPerGiB: number;
  ratio: number;
  sendPipeMBps: number;
  decMBps: number;
  estMBps: number;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      child: { type: "string" },
      size: { type: "string", default: "512M" },
      runs: { type: "string", default: "3" },
      "upload-mbps": { type: "string", default: "170" },
      dir: { type: "string" },
      only: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.child) {
    return await childMain(values.child, ...positionals as [string, string, string]);
  }
  if (values.help) return void console.log(HELP);

  const size = parseSize(values.size!);
  const runs = Math.max(1, Number(values.runs));
  const upload = Number(values["upload-mbps"]);
  const names = (values.only?.split(",") ?? [...COMPRESSORS, NODE_ZSTD]).filter((n) =>
    [...COMPRESSORS, NODE_ZSTD].includes(n)
  );
  const notes: string[] = [];

  const why = await ensureZfs();
  if (why) throw new Error(`no ZFS here: ${why}`);
  if (!(await ensurePackage(TIME, "time", notes))) throw new Error("/usr/bin/time is needed");
  const available = new Map<string, boolean>();
  for (const n of names) {
    const argv = compressCommand(n);
    const bin = argv && n !== "gzip" ? argv[0] : undefined;
    available.set(n, bin ? await ensurePackage(bin, bin, notes) : true);
  }

  const base = `${
    values.dir ?? Deno.env.get("TMPDIR") ?? "/var/tmp"
  }/z3-compress-bench-${Deno.pid}`;
  await Deno.mkdir(base, { recursive: true });
  const streamFile = `${base}/stream.zfs`;
  const poolMiB = Math.max(2048, Math.ceil((size / MiB) * 1.3) + 256);
  let pool: TestPool | undefined;
  try {
    log(`creating a ${poolMiB} MiB ${zfsFlavour} pool`);
    pool = await createPool(poolMiB);
    const mnt = await pool.createDataset("data");
    await capture(["zfs", "set", "compression=off", `${pool.name}/data`]);
    log(`filling ${pool.name}/data with ${(size / MiB).toFixed(0)} MiB`);
    const t0 = performance.now();
    const written = await fillDataset(mnt, size);
    log(`filled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    await pool.snapshot("data", "bench");
    const snap = `${pool.name}/data@bench`;

    // zfs send: into /dev/null (runs times), then once into the stream file.
    const sendNull: number[] = [];
    const sendCpu: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t = await timed(["sh", "-c", 'exec zfs send "$1" >/dev/null', "sh", snap]);
      sendNull.push(t.wall);
      sendCpu.push(t.cpu);
    }
    const tf = await timed(["sh", "-c", 'exec zfs send "$1" >"$2"', "sh", snap, streamFile]);
    const streamBytes = await fileSize(streamFile);
    const sendMBps = streamBytes / MB / median(sendNull);
    log(
      `zfs send: ${fmt(streamBytes / MiB, 0)} MiB stream, ${fmt(sendMBps)} MB/s into /dev/null, ${
        fmt(streamBytes / MB / tf.wall)
      } MB/s into a file`,
    );
    await timed(redirected(["cat"], streamFile, "/dev/null")); // into the page cache

    // Warm Deno's module cache for the child.
    const tiny = `${base}/tiny`;
    await Deno.writeFile(tiny, new Uint8Array(1024));
    await timed(viaLib("compress", "none", tiny, `${tiny}.out`));
    const starts: number[] = [];
    for (let i = 0; i < 3; i++) {
      starts.push((await timed(viaLib("compress", "none", tiny, `${tiny}.out`))).wall);
    }
    const startup = median(starts);

    // Once, untimed: compress through lib to a file (for the ratio and the decompression runs)
    // and check that decompressing it gives the stream back byte for byte.
    const active = names.filter((n) => available.get(n));
    const comp = (n: string) => `${base}/out.${n}`;
    const compressedSize = new Map<string, number>();
    const back = `${base}/out.restored`;
    for (const n of active) {
      log(`${n}: compressing once to a file and checking the round trip`);
      await timed(viaLib("compress", n, streamFile, comp(n)));
      compressedSize.set(n, await fileSize(comp(n)));
      await timed(viaLib("decompress", n, comp(n), back));
      if (!(await sameFiles(streamFile, back))) {
        throw new Error(`${n}: the decompressed stream differs from the original`);
      }
      await Deno.remove(back);
      if (n === NODE_ZSTD && available.get("zstd")) {
        // Interchangeable with z3's `zstd`: its decompress step (the CLI) reads these frames.
        await timed(viaLib("decompress", "zstd", comp(n), back));
        const same = await sameFiles(streamFile, back);
        await Deno.remove(back);
        if (!same) throw new Error(`${n}: zstd -d does not give the stream back`);
        notes.push(`${NODE_ZSTD}'s output decompresses with z3's \`zstd\` (the CLI) byte for byte`);
      }
    }

    // Timed runs, interleaved; every output goes to /dev/null so that no disk write is timed.
    const m = new Map<string, Record<string, number[]>>();
    for (let r = 0; r < runs; r++) {
      for (const n of active) {
        log(`run ${r + 1}/${runs}: ${n}`);
        const acc = m.get(n) ?? {};
        m.set(n, acc);
        const add = (k: string, v: number) => (acc[k] ??= []).push(v);
        const argv = compressCommand(n);
        if (argv && n !== "gzip") {
          const c = await timed(redirected(argv, streamFile, "/dev/null"));
          add("cliWall", c.wall);
          add("cliCpu", c.cpu);
        }
        const l = await timed(viaLib("compress", n, streamFile, "/dev/null"));
        add("libWall", l.wall);
        add("libCpu", l.cpu);
        add("decWall", (await timed(viaLib("decompress", n, comp(n), "/dev/null"))).wall);
        // The real backup path: zfs send's stdout pumped by Deno through the compressor.
        const pipe = ["sh", "-c", 'snap=$1; shift; zfs send "$snap" | "$@"', "sh", snap];
        add(
          "pipeWall",
          (await timed([...pipe, ...viaLib("compress", n, "/dev/stdin", "/dev/null")])).wall,
        );
      }
    }

    const rows: Row[] = active.map((n) => {
      const a = m.get(n)!;
      const gib = streamBytes / GiB;
      const ratio = streamBytes / compressedSize.get(n)!;
      const libMBps = streamBytes / MB / median(a.libWall);
      const sendPipeMBps = streamBytes / MB / median(a.pipeWall);
      return {
        name: n,
        argv: n === "gzip"
          ? "CompressionStream('gzip') in Deno"
          : n === NODE_ZSTD
          ? "node:zlib createZstdCompress, level 1"
          : n === "none"
          ? "—"
          : compressCommand(n)!.join(" "),
        cliMBps: a.cliWall ? streamBytes / MB / median(a.cliWall) : undefined,
        cliCpuPerGiB: a.cliCpu ? median(a.cliCpu) / gib : undefined,
        libMBps,
        libCpuPerGiB: median(a.libCpu) / gib,
        ratio,
        sendPipeMBps,
        decMBps: streamBytes / MB / median(a.decWall),
        // Upload moves compressed bytes at `upload` MB/s: stream bytes go at upload × ratio.
        estMBps: Math.min(sendPipeMBps, upload * ratio),
      };
    });

    // Debian priority of the zstd package: is it there on a default install?
    let zstdPriority = "unknown";
    try {
      zstdPriority =
        /^Priority:\s*(\S+)/m.exec(await capture(["apt-cache", "show", "zstd"]))?.[1] ??
          "unknown";
    } catch {
      // not Debian
    }

    const best = rows.reduce((a, b) => (b.estMBps > a.estMBps * 1.05 ? b : a));
    const none = rows.find((r) => r.name === "none");
    const cpuInfo = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)
      ?.[1] ?? "?";
    const mixLine = Object.entries(written).map(([k, v]) =>
      `${k} ${(v / MiB).toFixed(0)} MiB (${Math.round((v / size) * 100)} %)`
    ).join(", ");

    const header = [
      "compressor",
      "command",
      "CLI alone MB/s",
      "CLI CPU s/GiB",
      "via lib MB/s",
      "via lib CPU s/GiB",
      "ratio",
      "zfs send \\| via lib MB/s",
      "decompress MB/s",
      `est. backup MB/s at ${upload} MB/s upload`,
    ];
    const table = [
      header,
      ...rows.map((r) => [
        `\`${r.name}\``,
        r.argv === "—" ? "—" : `\`${r.argv}\``,
        fmt(r.cliMBps),
        fmt(r.cliCpuPerGiB, 2),
        fmt(r.libMBps),
        fmt(r.libCpuPerGiB, 2),
        fmt(r.ratio, 2),
        fmt(r.sendPipeMBps),
        fmt(r.decMBps),
        `**${fmt(r.estMBps, 0)}**`,
      ]),
    ];
    const widths = header.map((_, i) => Math.max(...table.map((row) => row[i].length)));
    const line = (row: string[]) => `| ${row.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
    const md = [
      line(table[0]),
      `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
      ...table.slice(1).map(line),
    ].join("\n");

    const report = [
      `Machine: ${navigator.hardwareConcurrency} × ${cpuInfo}, Deno ${Deno.version.deno}, ${zfsFlavour}.`,
      `Data set: ${(size / MiB).toFixed(0)} MiB written: ${mixLine}; log lines and JSON records`,
      "with varying numbers and ids, xorshift pseudo-random bytes, zero-filled files; pool",
      "compression off.",
      `Stream: ${fmt(streamBytes / MiB, 0)} MiB; \`zfs send\` into /dev/null ${
        fmt(sendMBps)
      } MB/s (median of ${runs}; CPU of the \`zfs\` command itself ${
        fmt(median(sendCpu) / (streamBytes / GiB), 2)
      } s/GiB, the daemon's not counted).`,
      `"Via lib" rows include the start of a \`deno run\` child, ${
        fmt(startup, 2)
      } s (1 KiB input).`,
      "MB/s are 10^6 bytes of the uncompressed stream per wall second (median); CPU s/GiB is",
      'user+sys per GiB of stream (`/usr/bin/time`); "via lib" is a `deno run` child calling',
      "`compress()` of lib/pipeline/compress.ts (file in, /dev/null out), so it includes Deno's pumping;",
      '"zfs send | via lib" is the same child fed by `zfs send` from the pool; decompress is',
      "`decompress()` of lib/pipeline/compress.ts; ratio = stream / compressed bytes; est. backup =",
      `min(zfs send | via lib, ${upload} × ratio).`,
      "",
      md,
      "",
      `Recommendation: **${best.name}** — estimated ${fmt(best.estMBps, 0)} MB/s of stream (ratio ${
        fmt(best.ratio, 2)
      }) against ${fmt(none?.estMBps, 0)} MB/s without compression. Debian priority of the zstd ` +
      `package: ${zstdPriority}.`,
      ...(notes.length ? ["", ...notes.map((n) => `- ${n}`)] : []),
    ].join("\n");
    console.log(report);
    const results = new URL("./results/compress-latest.md", import.meta.url).pathname;
    await Deno.mkdir(new URL("./results/", import.meta.url).pathname, { recursive: true });
    await Deno.writeTextFile(results, report + "\n");
    log(`wrote ${results}`);
  } finally {
    if (pool) {
      log(`destroying ${pool.name}`);
      await pool.destroy().catch((err) => log(`cannot destroy ${pool!.name}: ${err}`));
    }
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
