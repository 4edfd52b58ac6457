/**
 * pput against its peers (`aws s3 cp -`, `rclone rcat`), uploading the same incompressible file
 * from stdin to the local Ceph radosgw test server. See `bench/README.md`.
 *
 * Run from the repository root: `deno task bench [--size 1G] [--runs 2] ...` (`--help`).
 *
 * Every tool runs under `/usr/bin/time -f '%e %U %S %M'`, so client CPU is the user+sys time of
 * that tool's process tree only; `%M` is the peak RSS of its largest process. Runs of the tools
 * are interleaved (run 1 of every tool, then run 2 ...) so that drift on a shared machine hits
 * them alike. Credentials reach the tools only through their environment, never argv, and the
 * secret is never printed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DeleteBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { S3Store } from "../lib/backend/s3.ts";
import { parseSize } from "../lib/config/size.ts";
import { OVERHEAD_MIB } from "../lib/transfer/upload.ts";
import { type CpuClock, cpuClock, readCpu } from "./machine_cpu.ts";
import { type Mode, MODES, wholePath } from "./whole_path.ts";
import { chainBench } from "./chain_bench.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SERVER_SCRIPT = `${ROOT}/tests/bed/s3_server.sh`;
const RESULTS = `${ROOT}/bench/results/latest.md`;
const TIME = "/usr/bin/time";
const AWS = "/usr/bin/aws";
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const DEFAULT_VARIANT = "--concurrency 8 --chunk-size 32M";

const HELP = `Usage: deno task bench [options]
pput: uploads one incompressible file from stdin with pput, aws s3 cp - and rclone rcat to the
local Ceph test server (tests/bed/s3_server.sh), and reports wall time, throughput, client CPU per
GiB, server CPU per GiB and peak RSS.
whole: z3 backup and z3 restore end to end on a throwaway zfs-fuse pool, against their floors
(zfs send into a pipe, pput of the object from a file, zfs receive from a file, z3 get to
/dev/null) and aws s3 cp - | zfs receive, with COMPRESSOR=none, zstd and zstd + age
(bench/whole_path.ts). Needs root.
Writes one report of both to bench/results/latest.md.

Options:
  --size SIZE        test file size [default: 1G]
  --runs N           runs per tool, interleaved [default: 2]
  --tools LIST       comma-separated subset of pput,awscli,rclone [default: all three]
  --variant ARGS     extra pput row run once with these flags (repeatable)
                     [default: "${DEFAULT_VARIANT}"]
  --no-variants      no extra pput rows
  --pause SECONDS    pause before each upload, to let the server settle [default: 3]
  --dir PATH         where the test file lives (reused when its size matches)
                     [default: $TMPDIR or /var/tmp, + /z3-pput-bench]
  --only LIST        a subset of pput,whole,chain (chain: bench/chain_bench.ts, pure)
                     [default: pput,whole]
  --whole-runs N     runs of every whole-path row, interleaved [default: 1]
  --modes LIST       whole-path modes, a subset of ${MODES.join(",")} [default: all]
  -h, --help         this help
`;

// ---------------------------------------------------------------------------------------------
// small helpers

function log(msg: string): void {
  console.error(`bench: ${msg}`);
}

let SECRET = "";

/** Removes the secret from text that may be printed. */
function redact(text: string): string {
  return SECRET ? text.replaceAll(SECRET, "***") : text;
}

function tail(text: string, lines = 6): string {
  return redact(text.trim().split("\n").slice(-lines).join("\n"));
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** Full path of a command on PATH, or undefined. */
async function which(cmd: string): Promise<string | undefined> {
  if (cmd.startsWith("/")) return (await exists(cmd)) ? cmd : undefined;
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", 'command -v "$1"', "sh", cmd],
    stdout: "piped",
    stderr: "null",
  }).output();
  const path = new TextDecoder().decode(out.stdout).trim();
  return out.success && path.startsWith("/") ? path : undefined;
}

async function run(
  cmd: string,
  args: string[],
  options: { env?: Record<string, string> } = {},
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, {
    args,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { ok: out.success, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "–";
}

// ---------------------------------------------------------------------------------------------
// setup: server, peers, test file

interface ServerEnv {
  endpoint: string;
  keyId: string;
  secret: string;
  region: string;
}

async function startServer(): Promise<ServerEnv> {
  log("starting (or reusing) the S3 test server");
  const start = await run("bash", [SERVER_SCRIPT, "start"]);
  if (!start.ok) throw new Error(`cannot start the S3 test server:\n${tail(start.stderr)}`);
  const env = await run("bash", [SERVER_SCRIPT, "env"]);
  if (!env.ok) throw new Error(`cannot read the S3 test server's settings:\n${tail(env.stderr)}`);
  const vars: Record<string, string> = {};
  for (const line of env.stdout.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) vars[m[1]] = m[2].replace(/^(['"])(.*)\1$/, "$2");
  }
  for (const k of ["S3_ENDPOINT", "S3_KEY_ID", "S3_SECRET"]) {
    if (!vars[k]) throw new Error(`the S3 test server's env lacks ${k}`);
  }
  SECRET = vars.S3_SECRET;
  return {
    endpoint: vars.S3_ENDPOINT,
    keyId: vars.S3_KEY_ID,
    secret: vars.S3_SECRET,
    region: vars.S3_REGION || "us-east-1",
  };
}

/** Path of `bin`, installing Debian package `pkg` when missing and root; undefined if neither. */
async function ensurePackage(bin: string, pkg: string, notes: string[]): Promise<string> {
  const found = await which(bin);
  if (found) return found;
  if (Deno.uid() !== 0) {
    notes.push(`${pkg}: not installed and not root, skipped`);
    return "";
  }
  log(`installing ${pkg}`);
  const env = { ...Deno.env.toObject(), DEBIAN_FRONTEND: "noninteractive" };
  const install = ["-o", "DPkg::Lock::Timeout=600", "install", "-y", pkg];
  let res = await run("apt-get", install, { env });
  if (!res.ok) {
    await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update"], { env });
    res = await run("apt-get", install, { env });
  }
  const path = await which(bin);
  if (!path) notes.push(`${pkg}: cannot be installed, skipped (${tail(res.stderr, 1)})`);
  return path ?? "";
}

async function ensureTestFile(dir: string, size: number): Promise<string> {
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/data-${size}.bin`;
  try {
    if ((await Deno.stat(path)).size === size) {
      log(`reusing ${path}`);
      return path;
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  log(`writing ${(size / MiB).toFixed(0)} MiB of random data to ${path}`);
  const tmp = `${path}.part`;
  const src = await Deno.open("/dev/urandom");
  const dst = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const buf = new Uint8Array(MiB);
    let left = size;
    while (left > 0) {
      const n = await src.read(buf.subarray(0, Math.min(left, buf.length)));
      if (!n) throw new Error("short read from /dev/urandom");
      let off = 0;
      while (off < n) off += await dst.write(buf.subarray(off, n));
      left -= n;
    }
  } finally {
    src.close();
    dst.close();
  }
  await Deno.rename(tmp, path);
  return path;
}

// ---------------------------------------------------------------------------------------------
// server CPU (the daemons the test-bed script started, by their PID files)

let clock: CpuClock = { ticks: 100, cores: 1 };

/** CPU seconds the Ceph daemons have used so far, or NaN when unknown. */
async function serverCpu(): Promise<number> {
  return (await readCpu(clock)).ceph;
}

// ---------------------------------------------------------------------------------------------
// measuring one upload

interface Tool {
  /** Row label. */
  name: string;
  kind: "pput" | "awscli" | "rclone";
  runs: number;
  argv(key: string): string[];
  env: Record<string, string>;
  /** pput's flags, for its memory bound. */
  pputFlags?: string[];
}

interface Sample {
  tool: string;
  run: number;
  ok: boolean;
  error?: string;
  wall: number;
  user: number;
  sys: number;
  rssKiB: number;
  server: number;
}

/** Runs `argv` under /usr/bin/time with stdin from `input` (or /dev/null). */
async function timed(
  argv: string[],
  env: Record<string, string>,
  input: string,
  timeFile: string,
): Promise<{ code: number; stdout: string; stderr: string; t: number[] }> {
  const out = await new Deno.Command("/bin/sh", {
    args: [
      "-c",
      'f=$1; shift; exec "$@" < "$f"',
      "sh",
      input,
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
    stdout: "piped",
    stderr: "piped",
  }).output();
  const lines = (await Deno.readTextFile(timeFile)).trim().split("\n");
  const t = lines[lines.length - 1].split(" ").map(Number);
  if (t.length !== 4 || t.some((x) => !Number.isFinite(x))) {
    throw new Error(`cannot parse ${TIME} output: ${lines.join(" / ")}`);
  }
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr), t };
}

async function uploadOnce(
  tool: Tool,
  run: number,
  key: string,
  file: string,
  size: number,
  store: S3Store,
  timeFile: string,
): Promise<Sample> {
  const cpu0 = await serverCpu();
  const r = await timed(tool.argv(key), tool.env, file, timeFile);
  const cpu1 = await serverCpu();
  const [wall, user, sys, rssKiB] = r.t;
  const sample: Sample = { tool: tool.name, run, ok: false, wall, user, sys, rssKiB, server: 0 };
  sample.server = cpu1 - cpu0;
  if (r.code !== 0) {
    sample.error = `exit ${r.code}: ${tail(r.stderr)}`;
    return sample;
  }
  const head = await store.head(key);
  if (!head) sample.error = "no object after upload";
  else if (head.size !== size) sample.error = `object holds ${head.size} bytes, not ${size}`;
  if (sample.error) return sample;
  if (tool.kind === "pput") {
    let json: { status?: string; bytes?: number; etag?: string } | undefined;
    try {
      json = JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
    } catch {
      // reported below
    }
    if (json?.status !== "success" || json.bytes !== size) {
      sample.error = `unexpected output: ${tail(r.stdout, 2)}`;
      return sample;
    }
    if (head?.etag !== json.etag) {
      sample.error = `ETag ${head?.etag} differs from pput's ${json.etag}`;
      return sample;
    }
  }
  sample.ok = true;
  return sample;
}

// ---------------------------------------------------------------------------------------------
// the report

interface Row {
  tool: Tool;
  ok: Sample[];
  failed: number;
  mbps: number;
  wall: number;
  cpuPerGiB: number;
  serverPerGiB: number;
  rssMiB: number;
}

function summarize(tool: Tool, samples: Sample[], size: number): Row {
  const ok = samples.filter((s) => s.tool === tool.name && s.ok);
  const gib = size / GiB;
  return {
    tool,
    ok,
    failed: samples.filter((s) => s.tool === tool.name && !s.ok).length,
    mbps: median(ok.map((s) => size / 1e6 / s.wall)),
    wall: median(ok.map((s) => s.wall)),
    cpuPerGiB: median(ok.map((s) => (s.user + s.sys) / gib)),
    serverPerGiB: median(ok.map((s) => s.server / gib)),
    rssMiB: ok.length ? Math.max(...ok.map((s) => s.rssKiB / 1024)) : NaN,
  };
}

/** pput's stated buffer bound: (concurrency + 2) x part size. */
function pputBuffers(flags: string[]): number {
  let concurrency = 4;
  let part = 8 * MiB;
  for (let i = 0; i < flags.length; i++) {
    const [name, inline] = flags[i].split("=", 2);
    const value = inline ?? flags[i + 1];
    if (name === "--concurrency") concurrency = Number(value);
    if (name === "--chunk-size") part = parseSize(value);
  }
  return (concurrency + 2) * part;
}

/** Start-up cost of the runtimes, measured with nothing to upload. */
interface Baselines {
  /** Peak RSS of `deno run` of an empty script. */
  emptyMiB: number;
  /** Peak RSS of `deno run -A pput.ts --help`: the runtime with pput's code loaded. */
  helpMiB: number;
  /** CPU seconds of `pput --help`. */
  helpCpu: number;
  /** CPU seconds of `aws --version`. */
  awsCpu: number;
}

function check(ok: boolean): string {
  return ok ? "**met**" : "**missed**";
}

function report(
  rows: Row[],
  samples: Sample[],
  info: { size: number; date: string; machine: string; versions: string[]; notes: string[] },
  baselines: Baselines,
): string {
  const out: string[] = [];
  out.push(`# pput benchmark, ${info.date}`, "");
  out.push(
    `${(info.size / MiB).toFixed(0)} MiB of random data from a file on stdin to Ceph radosgw on ` +
      `127.0.0.1 (same machine). Machine: ${info.machine}.`,
  );
  out.push(`Versions: ${info.versions.join("; ")}.`, "");
  out.push(
    "| tool | runs | median wall s | median MB/s | median client CPU s/GiB | peak RSS MiB | " +
      "median server CPU s/GiB |",
  );
  out.push("|---|---|---|---|---|---|---|");
  for (const r of rows) {
    const runs = r.failed ? `${r.ok.length} (+${r.failed} failed)` : `${r.ok.length}`;
    out.push(
      `| ${r.tool.name} | ${runs} | ${fmt(r.wall, 2)} | ${fmt(r.mbps)} | ${
        fmt(r.cpuPerGiB, 2)
      } | ` +
        `${fmt(r.rssMiB)} | ${fmt(r.serverPerGiB, 2)} |`,
    );
  }
  out.push("");
  out.push(
    "MB = 10^6 bytes, MiB = 2^20, GiB = 2^30. Client CPU = user + sys of the tool's process tree " +
      "(`/usr/bin/time`); peak RSS = `%M`, the largest single process; server CPU = radosgw + " +
      "ceph-osd + ceph-mon during the upload (it shares the client's cores).",
    "",
  );
  out.push(
    `Deno runtime baseline (peak RSS, median of 3): \`deno run\` of an empty script ` +
      `${fmt(baselines.emptyMiB)} MiB; \`deno run -A pput.ts --help\` (runtime + pput's code, ` +
      `AWS SDK included) ${fmt(baselines.helpMiB)} MiB. Start-up CPU (included in every ` +
      `run's CPU): \`pput --help\` ${fmt(baselines.helpCpu, 2)} s, \`aws --version\` ` +
      `${fmt(baselines.awsCpu, 2)} s.`,
    "",
  );

  const ours = rows.find((r) => r.tool.name === "pput");
  const peers = rows.filter((r) => r.tool.kind !== "pput" && r.ok.length > 0);
  const aws = rows.find((r) => r.tool.kind === "awscli" && r.ok.length > 0);
  out.push("## Targets", "");
  if (ours && ours.ok.length > 0) {
    if (aws) {
      const ratio = ours.cpuPerGiB / aws.cpuPerGiB;
      out.push(
        `- Client CPU per GiB at most half of \`aws s3 cp -\`: pput ${fmt(ours.cpuPerGiB, 2)} s ` +
          `vs awscli ${fmt(aws.cpuPerGiB, 2)} s, ratio ${fmt(ratio, 2)} (target ≤ 0.50): ` +
          `${check(ratio <= 0.5)}`,
      );
    } else out.push("- Client CPU vs awscli: awscli did not run");
    if (peers.length) {
      const best = peers.reduce((a, b) => (b.mbps > a.mbps ? b : a));
      const ratio = ours.mbps / best.mbps;
      out.push(
        `- Throughput at least the best peer's: pput ${fmt(ours.mbps)} MB/s vs ` +
          `${best.tool.name} ${fmt(best.mbps)} MB/s, ratio ${fmt(ratio, 2)} (target ≥ 1.00): ` +
          `${check(ratio >= 1)}`,
      );
    } else out.push("- Throughput vs peers: no peer ran");
  } else out.push("- pput did not complete a run");
  for (const r of rows.filter((r) => r.tool.kind === "pput" && r.ok.length > 0)) {
    const buffers = pputBuffers(r.tool.pputFlags ?? []) / MiB;
    const bound = buffers + OVERHEAD_MIB;
    out.push(
      `- Peak RSS of ${r.tool.name} within the bound \`pput --help\` states, (concurrency + 2) × ` +
        `part size = ${fmt(buffers, 0)} MiB + ${OVERHEAD_MIB} MiB = ${fmt(bound)} MiB: ` +
        `${fmt(r.rssMiB)} MiB, ${check(r.rssMiB <= bound)} ` +
        `(${fmt(r.rssMiB - buffers)} MiB beyond the buffers; the runtime with pput's code loaded ` +
        `is ${fmt(baselines.helpMiB)} MiB)`,
    );
  }
  out.push("");
  if (info.notes.length) {
    out.push("## Notes", "", ...info.notes.map((n) => `- ${n}`), "");
  }
  out.push("## Every run", "");
  out.push("| tool | run | ok | wall s | MB/s | user s | sys s | RSS MiB | server CPU s |");
  out.push("|---|---|---|---|---|---|---|---|---|");
  for (const s of samples) {
    out.push(
      `| ${s.tool} | ${s.run} | ${s.ok ? "yes" : "no"} | ${fmt(s.wall, 2)} | ` +
        `${fmt(info.size / 1e6 / s.wall)} | ${fmt(s.user, 2)} | ${fmt(s.sys, 2)} | ` +
        `${fmt(s.rssKiB / 1024)} | ${fmt(s.server, 2)} |`,
    );
  }
  const errors = samples.filter((s) => !s.ok);
  if (errors.length) {
    out.push("", "## Failures", "");
    for (const s of errors) {
      out.push(`- ${s.tool} run ${s.run}: ${s.error?.replaceAll("\n", " / ")}`);
    }
  }
  return out.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// main

async function versionOf(argv: string[], env: Record<string, string>): Promise<string> {
  try {
    const r = await run(argv[0], argv.slice(1), { env });
    return (r.stdout || r.stderr).trim().split("\n")[0];
  } catch {
    return "unknown";
  }
}

async function machine(): Promise<string> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const cores = navigator.hardwareConcurrency;
  const memKiB = Number(/^MemTotal:\s*(\d+)/m.exec(await Deno.readTextFile("/proc/meminfo"))?.[1]);
  return `${cores} cores (${model}), ${(memKiB / 2 ** 20).toFixed(0)} GiB RAM, ` +
    `client and server on the same cores`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      size: { type: "string", default: "1G" },
      runs: { type: "string", default: "2" },
      tools: { type: "string", default: "pput,awscli,rclone" },
      variant: { type: "string", multiple: true, default: [DEFAULT_VARIANT] },
      "no-variants": { type: "boolean", default: false },
      pause: { type: "string", default: "3" },
      dir: { type: "string" },
      only: { type: "string", default: "pput,whole" },
      "whole-runs": { type: "string", default: "1" },
      modes: { type: "string", default: MODES.join(",") },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(HELP.trimEnd());
    return 0;
  }
  const size = parseSize(values.size);
  const runs = Number(values.runs);
  const pause = Number(values.pause);
  if (size < 1 || !Number.isInteger(runs) || runs < 1 || !(pause >= 0)) {
    throw new Error("--size, --runs and --pause must be positive numbers");
  }
  const sections = new Set(values.only.split(",").map((t) => t.trim()));
  const wholeRuns = Number(values["whole-runs"]);
  const modes = values.modes.split(",").map((m) => m.trim()) as Mode[];
  if (
    [...sections].some((x) => x !== "pput" && x !== "whole" && x !== "chain") ||
    !Number.isInteger(wholeRuns) || wholeRuns < 1 ||
    modes.some((m) => !(MODES as readonly string[]).includes(m))
  ) {
    throw new Error(
      `--only takes pput,whole,chain; --whole-runs a positive integer; --modes ${MODES.join(",")}`,
    );
  }
  const wanted = new Set(values.tools.split(",").map((t) => t.trim()));
  for (const t of wanted) {
    if (!["pput", "awscli", "rclone"].includes(t)) throw new Error(`unknown tool "${t}"`);
  }
  const variants = values["no-variants"] ? [] : values.variant.filter((v) => v.trim());
  const dir = values.dir ?? `${Deno.env.get("TMPDIR") || "/var/tmp"}/z3-pput-bench`;
  const notes: string[] = [];
  const date = new Date().toISOString().slice(0, 10);

  const pputSection = async (): Promise<{ exit: number; text: string }> => {
    // 1. server and bucket
    const server = await startServer();
    clock = await cpuClock();
    if (Number.isNaN(await serverCpu())) notes.push("server PIDs not found: no server CPU");
    const bucket = `z3-bench-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
    const store = new S3Store({
      bucket,
      endpoint: server.endpoint,
      region: server.region,
      keyId: server.keyId,
      secret: server.secret,
    });
    await store.createBucket();
    log(`bucket ${bucket}`);
    const keys = new Set<string>();
    let exit = 0;
    try {
      // 2. tools
      if (!(await ensurePackage(TIME, "time", notes))) throw new Error(`${TIME} is needed`);
      const awsPath = wanted.has("awscli") ? await ensurePackage(AWS, "awscli", notes) : "";
      const rclonePath = wanted.has("rclone") ? await ensurePackage("rclone", "rclone", notes) : "";

      // 3. test file (read once so every tool starts from the page cache)
      const file = await ensureTestFile(dir, size);
      await run("/bin/sh", ["-c", 'cat "$1" > /dev/null', "sh", file]);
      const timeFile = `${dir}/time.out`;
      const awsConfig = `${dir}/aws.config`;
      await Deno.writeTextFile(
        awsConfig,
        `[default]\nregion = ${server.region}\ns3 =\n  addressing_style = path\n`,
      );
      const rcloneConfig = `${dir}/rclone.conf`;
      await Deno.writeTextFile(rcloneConfig, "");

      const base: Record<string, string> = {
        PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: Deno.env.get("HOME") ?? "/root",
        LANG: "C.UTF-8",
        NO_COLOR: "1",
      };
      for (const k of ["DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"]) {
        const v = Deno.env.get(k);
        if (v) base[k] = v;
      }
      const deno = Deno.execPath();
      const pputEnv = {
        ...base,
        BUCKET: bucket,
        HOST: server.endpoint,
        S3_KEY_ID: server.keyId,
        S3_SECRET: server.secret,
        S3_REGION: server.region,
      };
      const pput = (name: string, flags: string[], n: number): Tool => ({
        name,
        kind: "pput",
        runs: n,
        pputFlags: flags,
        argv: (key) => [deno, "run", "-A", `${ROOT}/pput.ts`, ...flags, key],
        env: pputEnv,
      });
      const tools: Tool[] = [];
      if (wanted.has("pput")) tools.push(pput("pput", [], runs));
      if (awsPath) {
        tools.push({
          name: "aws s3 cp -",
          kind: "awscli",
          runs,
          argv: (key) => [
            awsPath,
            "s3",
            "cp",
            "--no-progress",
            "--endpoint-url",
            server.endpoint,
            "-",
            `s3://${bucket}/${key}`,
          ],
          env: {
            ...base,
            AWS_ACCESS_KEY_ID: server.keyId,
            AWS_SECRET_ACCESS_KEY: server.secret,
            AWS_DEFAULT_REGION: server.region,
            AWS_CONFIG_FILE: awsConfig,
            AWS_SHARED_CREDENTIALS_FILE: `${dir}/no-such-credentials`,
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_PAGER: "",
          },
        });
      }
      if (rclonePath) {
        tools.push({
          name: "rclone rcat",
          kind: "rclone",
          runs,
          argv: (key) => [rclonePath, "rcat", `z3bench:${bucket}/${key}`],
          env: {
            ...base, // no AWS_CA_BUNDLE: rclone 1.60 refuses to start with it set
            RCLONE_CONFIG: rcloneConfig,
            RCLONE_CONFIG_Z3BENCH_TYPE: "s3",
            RCLONE_CONFIG_Z3BENCH_PROVIDER: "Ceph",
            RCLONE_CONFIG_Z3BENCH_ENV_AUTH: "false",
            RCLONE_CONFIG_Z3BENCH_ACCESS_KEY_ID: server.keyId,
            RCLONE_CONFIG_Z3BENCH_SECRET_ACCESS_KEY: server.secret,
            RCLONE_CONFIG_Z3BENCH_REGION: server.region,
            RCLONE_CONFIG_Z3BENCH_ENDPOINT: server.endpoint,
            RCLONE_CONFIG_Z3BENCH_FORCE_PATH_STYLE: "true",
          },
        });
      }
      if (wanted.has("pput")) {
        for (const v of variants) tools.push(pput(`pput ${v}`, v.trim().split(/\s+/), 1));
      }

      // baselines (also warms Deno's module cache before the first pput run)
      const startup = async (argv: string[]) => {
        const rss: number[] = [];
        const cpu: number[] = [];
        for (let i = 0; i < 3; i++) {
          const t = (await timed(argv, base, "/dev/null", timeFile)).t;
          rss.push(t[3] / 1024);
          cpu.push(t[1] + t[2]);
        }
        return { rssMiB: median(rss), cpu: median(cpu) };
      };
      const empty = `${dir}/empty.ts`;
      await Deno.writeTextFile(empty, "");
      const emptyRun = await startup([deno, "run", empty]);
      const helpRun = await startup([deno, "run", "-A", `${ROOT}/pput.ts`, "--help"]);
      const baselines: Baselines = {
        emptyMiB: emptyRun.rssMiB,
        helpMiB: helpRun.rssMiB,
        helpCpu: helpRun.cpu,
        awsCpu: awsPath ? (await startup([awsPath, "--version"])).cpu : NaN,
      };
      log(
        `runtime baseline RSS: empty script ${fmt(baselines.emptyMiB)} MiB, ` +
          `pput --help ${fmt(baselines.helpMiB)} MiB`,
      );

      const versions = [
        `deno ${Deno.version.deno}`,
        ...(awsPath ? [await versionOf([awsPath, "--version"], base)] : []),
        ...(rclonePath ? [await versionOf([rclonePath, "version"], base)] : []),
        (await versionOf(["radosgw", "--version"], base)).replace(/\s*\(.*$/, ""),
      ];

      // 4. uploads, interleaved
      const samples: Sample[] = [];
      const maxRuns = Math.max(...tools.map((t) => t.runs));
      for (let i = 1; i <= maxRuns; i++) {
        for (const tool of tools) {
          if (i > tool.runs) continue;
          const key = `bench/${tool.name.replace(/[^a-z0-9]+/gi, "-")}/run-${i}`;
          keys.add(key);
          if (pause > 0) await new Promise((r) => setTimeout(r, pause * 1000));
          log(`${tool.name}, run ${i}`);
          const s = await uploadOnce(tool, i, key, file, size, store, timeFile);
          samples.push(s);
          if (s.ok) {
            log(
              `  ${fmt(s.wall, 2)} s, ${fmt(size / 1e6 / s.wall)} MB/s, CPU ` +
                `${fmt(s.user + s.sys, 2)} s, RSS ${fmt(s.rssKiB / 1024)} MiB`,
            );
          } else {
            log(`  FAILED: ${s.error}`);
            exit = 1;
          }
          await store.delete(key);
        }
      }

      // 5. report
      const rows = tools.map((t) => summarize(t, samples, size));
      return {
        exit,
        text: report(
          rows,
          samples,
          { size, date, machine: await machine(), versions, notes },
          baselines,
        ),
      };
    } finally {
      // 6. clean up: our objects, anything left in the bucket, pending uploads, the bucket
      await cleanup(store, keys, server, bucket);
    }
  };
  const parts: string[] = [];
  let exit = 0;
  if (sections.has("pput")) {
    const r = await pputSection();
    parts.push(r.text);
    exit = r.exit;
  }
  if (sections.has("whole")) {
    log(`whole path: ${values.size}, ${wholeRuns} run(s), modes ${modes.join(", ")}`);
    const awsPath = await ensurePackage(AWS, "awscli", []);
    if (!awsPath) throw new Error(`${AWS} is needed for the peer pipeline`);
    parts.push(
      `## Whole path: backup and restore against their floors (${date})\n\n` +
        await wholePath({ size, runs: wholeRuns, modes, aws: awsPath, log }),
    );
  }
  if (sections.has("chain")) parts.push(chainBench(log));
  const text = parts.join("\n\n") + "\n";
  await Deno.mkdir(`${ROOT}/bench/results`, { recursive: true });
  await Deno.writeTextFile(RESULTS, text);
  console.log(text);
  log(`written to ${RESULTS}`);
  return exit;
}

async function cleanup(
  store: S3Store,
  keys: Set<string>,
  server: ServerEnv,
  bucket: string,
): Promise<void> {
  try {
    for (const key of keys) await store.delete(key);
    for await (const o of store.list("")) await store.delete(o.key);
    for await (const u of store.listMultipartUploads("")) {
      await store.abortMultipart(u.key, u.uploadId);
    }
    const client = new S3Client({
      endpoint: server.endpoint,
      region: server.region,
      forcePathStyle: true,
      credentials: { accessKeyId: server.keyId, secretAccessKey: server.secret },
      maxAttempts: 2,
    });
    try {
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    } finally {
      client.destroy();
    }
  } catch (err) {
    log(`cleanup incomplete: ${redact((err as Error).message)}`);
  } finally {
    store.close();
  }
}

try {
  Deno.exit(await main());
} catch (err) {
  log(redact((err as Error).message ?? String(err)));
  Deno.exit(1);
}
