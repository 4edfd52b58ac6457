/**
 * Issue #7: bad input, table-driven. Every row runs one z3 command against one fixture (a pool
 * whose dataset has snapshots s1..s4, s1..s3 backed up, so that a backup that wrongly went ahead
 * would upload s4) and asserts three things: the exit status is the documented one, stderr ends
 * in one `z3:` line that names the problem, and nothing changed in ZFS or in the bucket (every
 * key with its ETag, and every pending multipart upload, before and after).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "my data";
/** Created by any row whose `$(…)` or backticks reach a shell. */
const CANARY = `/tmp/z3-canary-${Deno.pid}`;
const TOUCH = `$(touch ${CANARY})`;
const BACKTICKS = `\`touch ${CANARY}\``;

/** The pool, the bucket and `pool/my data` with s1..s4 (s1..s3 backed up). */
interface Fixture {
  pool: TestPool;
  store: S3Store;
  s3: S3Env;
  /** `pool/my data`. */
  dataset: string;
  /** Runs z3 with FILESYSTEM = dataset against the test bucket; `env` adds or overrides. */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** `z3-backup/pool/my data@snap`. */
  key(snap: string): string;
  /** A scratch directory, removed afterwards (also used as a config "file" that is a directory). */
  tmp: string;
}

async function withFixture(s3: S3Env, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const pool = await createPool(256);
  const tmp = await Deno.makeTempDir({ prefix: "z3-bad-input-" });
  let store: S3Store | undefined;
  // The test's own failure is the one reported; a cleanup that fails too is added to it.
  await withCleanup([
    () => store?.close(),
    () => pool.destroy(),
    () => Deno.remove(tmp, { recursive: true }),
  ], async () => {
    store = await freshBucket(s3, "bad-input");
    const bucket = store.bucket;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    const f: Fixture = {
      pool,
      store,
      s3,
      dataset,
      z3: (args, env = {}) => runZ3(args, { ...childEnv(s3, bucket), FILESYSTEM: dataset, ...env }),
      key: (snap) => `z3-backup/${dataset}@${snap}`,
      tmp,
    };
    for (const [i, snap] of ["s1", "s2", "s3", "s4"].entries()) {
      await Deno.writeFile(`${dir}/file ${i + 1}.bin`, pseudoRandom(16 * 1024, i + 1));
      await pool.snapshot(DATA, snap);
    }
    await Deno.writeTextFile(`${tmp}/chunk.conf`, "[main]\nCHUNK_SIZE = 1M\n");
    await Deno.writeTextFile(`${tmp}/count.conf`, "[main]\n# parts at once\nCONCURRENCY = 0\n");
    await Deno.writeFile(`${tmp}/binary.conf`, pseudoRandom(512, 7));
    ok(await f.z3(["backup", "--snapshot", "s1"]));
    ok(await f.z3(["backup", "--snapshot", "s3"]));
    await fn(f);
  });
}

/** Asserts exit 0 and returns stdout. */
function ok(result: CliResult): string {
  assert.deepEqual(result.code, 0, `exit status; stderr: ${result.stderr}`);
  return result.stdout;
}

/** Everything a refused command must leave as it was. */
interface State {
  /** `key etag size` of every object in the bucket. */
  objects: string[];
  /** `key uploadId` of every pending multipart upload. */
  pending: string[];
  /** `zfs list -H -t all -o name -r POOL`. */
  zfs: string[];
}

async function state(f: Fixture): Promise<State> {
  const objects: string[] = [];
  for await (const o of f.store.list("")) objects.push(`${o.key} ${o.etag} ${o.size}`);
  const pending: string[] = [];
  for await (const u of f.store.listMultipartUploads("")) pending.push(`${u.key} ${u.uploadId}`);
  const listed = await run(["zfs", "list", "-H", "-t", "all", "-o", "name", "-r", f.pool.name]);
  return {
    objects: objects.sort(),
    pending: pending.sort(),
    zfs: listed.trimEnd().split("\n").sort(),
  };
}

/** Waits (briefly) for zfs-fuse to clean up after a failed receive into `dataset`. */
async function settled(dataset: string): Promise<void> {
  for (let i = 0; i < 10 && (await zfs.datasetExists(dataset)); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
}

function md5Base64(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("base64");
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** An object put into the bucket for one row, and deleted after it. */
interface Plant {
  /** Short snapshot name under the fixture dataset, or a whole key when it holds a `/`. */
  name: string;
  metadata: (f: Fixture) => Record<string, string>;
}

/** One bad input. */
interface Row {
  name: string;
  args: (f: Fixture) => string[];
  env?: (f: Fixture) => Record<string, string | undefined>;
  /** Expected exit status. */
  code: number;
  /** What the one `z3:` line must say. */
  message: (f: Fixture) => RegExp;
  plant?: Plant[];
  /** More checks, before the state is compared. */
  then?: (f: Fixture, result: CliResult, ms: number) => Promise<void> | void;
}

const USAGE_ROWS: Row[] = [
  {
    name: "unknown flag",
    args: () => ["status", "--frobnicate"],
    code: 2,
    message: () => /^z3: Unknown option '--frobnicate' \(see --help\)$/,
  },
  {
    name: "unknown subcommand",
    args: () => ["frobnicate"],
    code: 2,
    message: () => /^z3: Cannot run unknown command "frobnicate": expected status, backup/,
  },
  {
    name: "restore without SNAPSHOT",
    args: () => ["restore"],
    code: 2,
    message: () => /^z3: Cannot run restore: expected exactly one SNAPSHOT$/,
  },
  {
    name: "status with an extra argument",
    args: () => ["status", "extra"],
    code: 2,
    message: () => /^z3: Cannot run status: unexpected argument "extra"$/,
  },
  {
    name: "restore with two snapshots",
    args: () => ["restore", "s1", "s2"],
    code: 2,
    message: () => /^z3: Cannot run restore: expected exactly one SNAPSHOT$/,
  },
  {
    name: "a flag without its value",
    args: () => ["backup", "--snapshot"],
    code: 2,
    message: () => /--snapshot.*argument missing/,
  },
];

/** Flag, value (undefined: given with `=`) and what the message must name. */
const NUMBERS: [string, string | undefined, RegExp][] = [
  ["--chunk-size", "ten", /CHUNK_SIZE "ten" from --chunk-size/],
  ["--concurrency", "0", /CONCURRENCY "0" from --concurrency/],
  ["--concurrency", "x", /CONCURRENCY "x" from --concurrency/],
  ["--max-retries", "-1", /'--max-retries'/],
  ["--max-retries=-1", undefined, /MAX_RETRIES "-1" from --max-retries/],
  ["--s3-timeout", "0", /S3_TIMEOUT "0" from --s3-timeout/],
  ["--full-every=-3", undefined, /FULL_EVERY "-3" from --full-every/],
  ["--keep-last=x", undefined, /KEEP_LAST "x" from --keep-last/],
];

/** A CHUNK_SIZE outside S3's 5M..5G is refused by config validation, before `zfs send` runs. */
const CHUNK_SIZE_ROWS: [string, string, RegExp][] = [
  ["--chunk-size", "1M", /CHUNK_SIZE "1M" from --chunk-size/],
  ["--chunk-size", "6G", /CHUNK_SIZE "6G" from --chunk-size/],
];

const NUMBER_ROWS: Row[] = [...NUMBERS, ...CHUNK_SIZE_ROWS].map(([flag, value, names]) => ({
  name: `backup ${flag}${value === undefined ? "" : ` ${value}`}`,
  args: () => ["backup", flag, ...(value === undefined ? [] : [value])],
  code: 2,
  message: () => names,
  then: (_f, result) => assert.doesNotMatch(result.stderr, /sending/, "refused before zfs send"),
}));

const NUMBER_ENV_ROWS: Row[] = [
  { CHUNK_SIZE: "1M" },
  { CONCURRENCY: "0" },
  { MAX_RETRIES: "-1" },
  { S3_TIMEOUT: "0" },
].map((env) => {
  const [key, value] = Object.entries(env)[0];
  return {
    name: `backup with ${key}=${value} in the environment`,
    args: () => ["backup"],
    env: () => env,
    code: 2,
    message: () => new RegExp(`${key} "${escape(value)}" from \\$${key}`),
  };
});

const MISSING_ROWS: Row[] = [
  {
    name: "backup of a FILESYSTEM that does not exist",
    args: (f) => ["backup", "--filesystem", `${f.pool.name}/nope`],
    code: 3,
    message: (f) => new RegExp(`${escape(f.pool.name)}/nope.*(does not exist|no such)`, "i"),
  },
  {
    name: "backup --dry-run of a FILESYSTEM that does not exist",
    args: (f) => ["backup", "--dry-run", "--filesystem", `${f.pool.name}/nope`],
    code: 3,
    message: (f) => new RegExp(`${escape(f.pool.name)}/nope.*(does not exist|no such)`, "i"),
  },
  {
    name: "backup --snapshot that does not exist locally",
    args: () => ["backup", "--snapshot", "nope"],
    code: 2,
    message: (f) => new RegExp(`"?${escape(f.dataset)}@nope"?|"nope"`),
  },
  {
    name: "restore of a snapshot not in the bucket",
    args: (f) => ["restore", "nope", "--target", `${f.pool.name}/never`],
    code: 2,
    message: (f) => new RegExp(`"${escape(f.dataset)}@nope": not in the bucket`),
  },
  {
    name: "restore of a snapshot of a dataset with nothing in the bucket",
    args: (f) => ["restore", `${f.pool.name}/other@s1`, "--target", `${f.pool.name}/never`],
    code: 2,
    message: (f) => new RegExp(`"${escape(f.pool.name)}/other@s1": not in the bucket`),
  },
];

/** Snapshot names that must never reach zfs (or a shell). */
const BAD_SNAPSHOTS = ["; rm -rf /tmp/x", TOUCH, BACKTICKS, `it's "quoted"`, "a|b", "a/b", "a\tb"];
/** Dataset names that must never reach zfs (or a shell); `%` is the pool. */
const BAD_DATASETS = [
  "%/x; rm -rf /tmp/x",
  `%/${TOUCH}`,
  `%/${BACKTICKS}`,
  "%/../x",
  "%/./x",
  "%//x",
  "/%/x",
  "%/x/",
  `%/it's "quoted"`,
  "%/x@s1",
];
const NAME_MESSAGE =
  /^z3: Cannot use (snapshot|dataset) ".*": (ZFS names use letters, digits and _ - : \. or space|expected a name like pool\/fs|a name may not start with -)$/;
/** A name with a newline shows the newline (escaped) in the message. */
const NEWLINE_MESSAGE = /^z3: Cannot use (snapshot|dataset) "[^"]*a\\nb": ZFS names use/;

const pooled = (f: Fixture, name: string) => name.replaceAll("%", f.pool.name);

/** `z3 backup --snapshot NAME` validates NAME before it lists anything, like restore. */
const BACKUP_SNAPSHOT_ROWS: Row[] = [
  ...[...BAD_SNAPSHOTS, "-F"].map((name): Row => ({
    name: `backup --snapshot=${JSON.stringify(name)}`,
    args: () => ["backup", `--snapshot=${name}`],
    code: 2,
    message: () => NAME_MESSAGE,
  })),
  {
    name: `backup --snapshot "a\\nb"`,
    args: () => ["backup", "--snapshot", "a\nb"],
    code: 2,
    message: () => NEWLINE_MESSAGE,
  },
];

const NAME_ROWS: Row[] = [
  {
    name: "backup --snapshot -F (a dash where the value goes)",
    args: () => ["backup", "--snapshot", "-F"],
    code: 2,
    message: () => /^z3: Option '--snapshot' argument is ambiguous\./,
  },
  ...BAD_SNAPSHOTS.map((name): Row => ({
    name: `restore ${JSON.stringify(name)}`,
    args: (f) => ["restore", name, "--target", `${f.pool.name}/never`],
    code: 2,
    message: () => NAME_MESSAGE,
  })),
  {
    name: "restore -- -F (leading dash)",
    args: (f) => ["restore", "--target", `${f.pool.name}/never`, "--", "-F"],
    code: 2,
    message: () => /^z3: Cannot use snapshot "-F": a name may not start with -$/,
  },
  {
    name: "restore -F (taken for a flag)",
    args: () => ["restore", "-F"],
    code: 2,
    message: () => /^z3: Unknown option '-F' \(see --help\)$/,
  },
  {
    name: "restore dataset@snap@snap",
    args: (f) => ["restore", `${f.dataset}@s1@s2`, "--target", `${f.pool.name}/never`],
    code: 2,
    message: () => /^z3: Cannot use snapshot ".*@s1@s2": expected dataset@snapshot$/,
  },
  ...BAD_DATASETS.map((name): Row => ({
    name: `restore DATASET@s1 with DATASET ${JSON.stringify(name)}`,
    args: (f) => ["restore", `${pooled(f, name)}@s1`, "--target", `${f.pool.name}/never`],
    code: 2,
    message: () => /^z3: Cannot use (dataset|snapshot) ".*": (ZFS names use|expected)/,
  })),
  ...BAD_DATASETS.map((name): Row => ({
    name: `restore s1 --target ${JSON.stringify(name)}`,
    args: (f) => ["restore", "s1", "--target", pooled(f, name)],
    code: 2,
    message: () => NAME_MESSAGE,
  })),
  {
    name: "restore s1 --target=-F",
    args: () => ["restore", "s1", "--target=-F"],
    code: 2,
    message: () => /^z3: Cannot use dataset "-F": expected a name like pool\/fs$/,
  },
  ...BAD_DATASETS.map((name): Row => ({
    name: `backup --filesystem ${JSON.stringify(name)}`,
    args: (f) => ["backup", "--filesystem", pooled(f, name)],
    code: 2,
    message: () => NAME_MESSAGE,
  })),
  {
    name: "backup --filesystem=-F",
    args: () => ["backup", "--filesystem=-F"],
    code: 2,
    message: () => /^z3: Cannot use dataset "-F": expected a name like pool\/fs$/,
  },
  ...[`%/${TOUCH}`, "%/../x", "-F"].map((name): Row => ({
    name: `status with FILESYSTEM=${JSON.stringify(name)} in the environment`,
    args: () => ["status"],
    env: (f) => ({ FILESYSTEM: pooled(f, name) }),
    code: 2,
    message: () => NAME_MESSAGE,
  })),
  {
    name: `restore "a\\nb"`,
    args: (f) => ["restore", "a\nb", "--target", `${f.pool.name}/never`],
    code: 2,
    message: () => NEWLINE_MESSAGE,
  },
  {
    name: `restore s1 --target "POOL/a\\nb"`,
    args: (f) => ["restore", "s1", "--target", `${f.pool.name}/a\nb`],
    code: 2,
    message: () => NEWLINE_MESSAGE,
  },
  {
    name: `status with FILESYSTEM="POOL/a\\nb" in the environment`,
    args: () => ["status"],
    env: (f) => ({ FILESYSTEM: `${f.pool.name}/a\nb` }),
    code: 2,
    message: () => NEWLINE_MESSAGE,
  },
];

/** Random bytes: not a ZFS stream, not a compressed one. */
const NOISE = pseudoRandom(8 * 1024, 99);

const CHAIN_ROWS: Row[] = [
  {
    name: "restore of an incremental whose parent is another dataset's snapshot",
    plant: [
      { name: "%/elsewhere@s3", metadata: () => ({ isfull: "true" }) },
      { name: "x-foreign", metadata: (f) => ({ parent: `${f.pool.name}/elsewhere@s3` }) },
    ],
    args: (f) => ["restore", "x-foreign", "--target", `${f.pool.name}/never`],
    code: 5,
    message: (f) =>
      new RegExp(
        `missing parent: "${escape(f.dataset)}@x-foreign" needs "${
          escape(f.pool.name)
        }/elsewhere@s3", which is not in the bucket`,
      ),
  },
  {
    name: "restore of an incremental whose parent is missing",
    plant: [{ name: "x-orphan", metadata: (f) => ({ parent: `${f.dataset}@gone` }) }],
    args: (f) => ["restore", "x-orphan", "--target", `${f.pool.name}/never`],
    code: 5,
    message: (f) =>
      new RegExp(
        `missing parent: "${escape(f.dataset)}@x-orphan" needs "${
          escape(f.dataset)
        }@gone", which is not in the bucket`,
      ),
  },
  {
    name: "restore of an incremental that records no parent",
    plant: [{ name: "x-noparent", metadata: () => ({}) }],
    args: (f) => ["restore", "x-noparent", "--target", `${f.pool.name}/never`],
    code: 5,
    message: (f) => new RegExp(`"${escape(f.dataset)}@x-noparent" records no parent`),
  },
  {
    name: "restore of a snapshot in a 2-cycle",
    plant: [
      { name: "x-a", metadata: (f) => ({ parent: `${f.dataset}@x-b` }) },
      { name: "x-b", metadata: (f) => ({ parent: `${f.dataset}@x-a` }) },
    ],
    args: (f) => ["restore", "x-a", "--target", `${f.pool.name}/never`],
    code: 5,
    message: () => /cycle detected: the parents in the bucket form a loop/,
  },
  {
    name: "restore of an object that is not a ZFS stream",
    plant: [{ name: "x-junk", metadata: () => ({ isfull: "true" }) }],
    args: (f) => ["restore", "x-junk", "--target", `${f.pool.name}/junk`],
    // Refused by the stream check before `zfs receive` starts (it was exit 3 from zfs before).
    code: 6,
    message: () =>
      /^z3: Cannot read ".*@x-junk" as a zfs send stream: its first record has not the send stream magic/,
    async then(f) {
      await settled(`${f.pool.name}/junk`);
      assert.equal(await zfs.datasetExists(`${f.pool.name}/junk`), false, "no dataset received");
    },
  },
  {
    name: "restore of an object whose compressor z3 does not know",
    plant: [{ name: "x-brotli", metadata: () => ({ isfull: "true", compressor: "brotli" }) }],
    args: (f) => ["restore", "x-brotli", "--target", `${f.pool.name}/brotli`],
    code: 2,
    message: () =>
      /^z3: Cannot restore ".*@x-brotli": Cannot use compressor "brotli": expected one of none, gzip, zstd/,
    async then(f, result) {
      await settled(`${f.pool.name}/brotli`);
      assert.equal(await zfs.datasetExists(`${f.pool.name}/brotli`), false, "nothing received");
      assert.doesNotMatch(result.stderr, /receiving into/, "refused before zfs receive runs");
    },
  },
  {
    name: "restore --dry-run of an object whose compressor z3 does not know",
    plant: [{ name: "x-brotli", metadata: () => ({ isfull: "true", compressor: "brotli" }) }],
    args: (f) => ["restore", "x-brotli", "--dry-run", "--target", `${f.pool.name}/brotli`],
    code: 2,
    message: () =>
      /^z3: Cannot restore ".*@x-brotli": Cannot use compressor "brotli": expected one of none, gzip, zstd/,
  },
];

/** The health `z3 status --json` reports for the malformed chains. */
interface StatusRow {
  name: string;
  health: string;
  type: string;
}

const S3_ROWS: Row[] = [
  {
    name: "wrong S3_SECRET",
    args: () => ["status"],
    env: (f) => ({ S3_SECRET: `${f.s3.S3_SECRET}x` }),
    code: 4,
    message: () => /SignatureDoesNotMatch \(HTTP 403\) \(check S3_KEY_ID \/ S3_SECRET/,
    then(f, result) {
      assert.ok(!result.stderr.includes(f.s3.S3_SECRET), "the secret is not printed");
    },
  },
  {
    name: "wrong S3_SECRET with --debug",
    args: () => ["status", "--debug"],
    env: (f) => ({ S3_SECRET: `${f.s3.S3_SECRET}x` }),
    code: 4,
    message: () => /SignatureDoesNotMatch \(HTTP 403\) \(check S3_KEY_ID \/ S3_SECRET/,
    then(f, result) {
      assert.ok(!result.stderr.includes(f.s3.S3_SECRET), "the secret is not printed");
    },
  },
  {
    name: "wrong S3_SECRET on backup",
    args: () => ["backup"],
    env: (f) => ({ S3_SECRET: `${f.s3.S3_SECRET}x` }),
    code: 4,
    message: () => /SignatureDoesNotMatch \(HTTP 403\) \(check S3_KEY_ID \/ S3_SECRET/,
    then(f, result) {
      assert.ok(!result.stderr.includes(f.s3.S3_SECRET), "the secret is not printed");
    },
  },
  {
    name: "unknown S3_KEY_ID",
    args: () => ["status"],
    env: () => ({ S3_KEY_ID: "NOSUCHKEYID0000000000" }),
    code: 4,
    message: () => /InvalidAccessKeyId \(HTTP 403\) \(check S3_KEY_ID \/ S3_SECRET/,
  },
  {
    name: "bucket that does not exist",
    args: () => ["status"],
    env: () => ({ BUCKET: `no-such-bucket-${Deno.pid}` }),
    code: 4,
    message: () =>
      new RegExp(`"no-such-bucket-${Deno.pid}".*NoSuchBucket \\(HTTP 404\\) \\(check BUCKET\\)`),
  },
  {
    name: "bucket that does not exist, on backup",
    args: () => ["backup"],
    env: () => ({ BUCKET: `no-such-bucket-${Deno.pid}` }),
    code: 4,
    message: () =>
      new RegExp(`"no-such-bucket-${Deno.pid}".*NoSuchBucket \\(HTTP 404\\) \\(check BUCKET\\)`),
  },
  {
    name: "endpoint unreachable",
    args: () => ["status"],
    env: () => ({ HOST: "http://127.0.0.1:1", MAX_RETRIES: "1" }),
    code: 4,
    message: () => /^z3: Cannot list bucket .*ECONNREFUSED.*127\.0\.0\.1:1\b/,
    then(_f, _result, ms) {
      assert.ok(ms < 30_000, `gave up after ${ms} ms`);
    },
  },
  {
    name: "endpoint unreachable, on backup",
    args: () => ["backup"],
    env: () => ({ HOST: "http://127.0.0.1:1", MAX_RETRIES: "1" }),
    code: 4,
    message: () => /^z3: Cannot list bucket .*ECONNREFUSED.*127\.0\.0\.1:1\b/,
    then(_f, _result, ms) {
      assert.ok(ms < 30_000, `gave up after ${ms} ms`);
    },
  },
];

const CONFIG_ROWS: Row[] = [
  {
    name: "--config names a directory",
    args: (f) => ["status", "--config", f.tmp],
    code: 2,
    message: (f) => new RegExp(`^z3: Cannot read config file ${escape(f.tmp)}: Is a directory`),
  },
  {
    name: "Z3_CONFIG names a directory",
    args: () => ["backup"],
    env: (f) => ({ Z3_CONFIG: f.tmp }),
    code: 2,
    message: (f) => new RegExp(`^z3: Cannot read config file ${escape(f.tmp)}: Is a directory`),
  },
  {
    name: "--config file with CONCURRENCY = 0",
    args: (f) => ["backup", "--config", `${f.tmp}/count.conf`],
    code: 2,
    message: (f) =>
      new RegExp(
        `^z3: Cannot parse CONCURRENCY "0" from ${escape(f.tmp)}/count\\.conf:3: expected`,
      ),
  },
  {
    name: "--config file with CHUNK_SIZE = 1M",
    args: (f) => ["backup", "--config", `${f.tmp}/chunk.conf`],
    code: 2,
    message: (f) =>
      new RegExp(
        `^z3: Cannot parse CHUNK_SIZE "1M" from ${escape(f.tmp)}/chunk\\.conf:2: expected`,
      ),
    then: (_f, result) => assert.doesNotMatch(result.stderr, /sending/, "refused before zfs send"),
  },
  {
    name: "--config file of random bytes",
    args: (f) => ["status", "--config", `${f.tmp}/binary.conf`],
    code: 2,
    message: (f) => new RegExp(`${escape(f.tmp)}/binary\\.conf`),
  },
];

async function runRow(f: Fixture, row: Row): Promise<void> {
  const planted: string[] = [];
  try {
    for (const p of row.plant ?? []) {
      const key = p.name.includes("/") ? `z3-backup/${pooled(f, p.name)}` : f.key(p.name);
      await f.store.put(key, NOISE, md5Base64(NOISE), { metadata: p.metadata(f) });
      planted.push(key);
    }
    const before = await state(f);
    const start = performance.now();
    const result = await f.z3(row.args(f), row.env?.(f) ?? {});
    const ms = performance.now() - start;
    failure(result, row.code, row.message(f));
    await row.then?.(f, result, ms);
    assert.deepEqual(await state(f), before, "nothing changed in ZFS or in the bucket");
    await assert.rejects(Deno.stat(CANARY), Deno.errors.NotFound, "no shell ran $(…)");
  } finally {
    for (const key of planted) await f.store.delete(key);
  }
}

integration("z3 refuses bad input with the documented exit status and changes nothing", async (
  bed,
  t,
) => {
  await Deno.remove(CANARY).catch(() => {});
  await withFixture(bed.s3, async (f) => {
    const groups: [string, Row[]][] = [
      ["usage", USAGE_ROWS],
      ["numbers", [...NUMBER_ROWS, ...NUMBER_ENV_ROWS]],
      ["missing", MISSING_ROWS],
      ["names", NAME_ROWS],
      ["names", BACKUP_SNAPSHOT_ROWS],
      ["chains", CHAIN_ROWS],
      ["s3", S3_ROWS],
      ["config", CONFIG_ROWS],
    ];
    for (const [group, rows] of groups) {
      for (const row of rows) await t.step(`${group}: ${row.name}`, () => runRow(f, row));
    }

    await t.step("status --json reports broken chains and exits 0", async () => {
      const plants: [string, Record<string, string>][] = [
        [`z3-backup/${f.pool.name}/elsewhere@s3`, { isfull: "true" }],
        [f.key("x-foreign"), { parent: `${f.pool.name}/elsewhere@s3` }],
        [f.key("x-orphan"), { parent: `${f.dataset}@gone` }],
        [f.key("x-above"), { parent: `${f.dataset}@x-orphan` }],
        [f.key("x-a"), { parent: `${f.dataset}@x-b` }],
        [f.key("x-b"), { parent: `${f.dataset}@x-a` }],
      ];
      try {
        for (const [key, metadata] of plants) {
          await f.store.put(key, NOISE, md5Base64(NOISE), { metadata });
        }
        const before = await state(f);
        const result = await f.z3(["status", "--json"]);
        const rows = JSON.parse(ok(result)) as StatusRow[];
        const health = Object.fromEntries(rows.map((r) => [r.name, r.health]));
        assert.deepEqual(health, {
          s1: "ok",
          s2: "ok",
          s3: "ok",
          s4: "-",
          "x-foreign": "missing parent",
          "x-orphan": "missing parent",
          "x-above": "parent broken",
          "x-a": "cycle detected",
          "x-b": "cycle detected",
        });
        assert.deepEqual(await state(f), before, "status changes nothing");
      } finally {
        for (const [key] of plants) await f.store.delete(key);
      }
    });
  });
  await assert.rejects(Deno.stat(CANARY), Deno.errors.NotFound, "no shell ran $(…)");
});
