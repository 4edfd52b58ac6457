/**
 * Reliability (issue #7): z3 against a real S3 server behind a fault-injecting proxy (503s,
 * resets mid-body, stalls, an endpoint that goes away), interrupted by SIGTERM/SIGINT, rerun
 * after failures, `z3 cleanup`, and the per-dataset backup lock.
 *
 * @module
 */

import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliChild, type CliResult, runZ3, spawnCli, Z3 } from "../bed/cli.ts";
import {
  type FaultProxy,
  faultProxy,
  type FaultProxyOptions,
  GONE,
  INTERNAL_ERROR,
  type LogEntry,
  SLOW_DOWN,
} from "../bed/fault_proxy.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import { lockFileName } from "../../lib/zfs/host_lock.ts";
import { pendingRecordKey } from "../../lib/repository/pending_record.ts";
import type { PendingUpload, S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";
import { parseDuration } from "../../lib/cli/durations.ts";

const MiB = 1024 * 1024;
/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "my data";
/** Big enough for five 5 MiB parts (and a sixth, partial one). */
const BIG = 25 * MiB;
const PREFIX = "z3-backup/";

/** One test's pool, bucket, dataset and lock directory. */
interface Fixture {
  pool: TestPool;
  /** The bucket, on the real server (never through a proxy). */
  store: S3Store;
  /** `pool/my data`. */
  dataset: string;
  /** Where the dataset is mounted. */
  dir: string;
  /** Z3_LOCK_DIR of every run. */
  lockDir: string;
  /** Runs z3 to completion with FILESYSTEM = dataset; `env` adds or overrides (HOST: a proxy). */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** Starts z3 the same way and returns the running child. */
  spawn(args: string[], env?: Record<string, string | undefined>): CliChild;
  /** `z3-backup/pool/my data@snap`. */
  key(snap: string): string;
  /** Every key in the bucket under `prefix`, sorted. */
  keys(prefix?: string): Promise<string[]>;
  /** Pending multipart uploads in the bucket, straight from the real server. */
  pending(): Promise<PendingUpload[]>;
}

async function withFixture(
  s3: S3Env,
  label: string,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(512);
  const lockDir = await Deno.makeTempDir({ prefix: "z3-locks-" });
  let store: S3Store | undefined;
  // The test's own failure is the one reported; a cleanup that fails too is added to it.
  await withCleanup([
    () => store?.close(),
    () => pool.destroy(),
    () => Deno.remove(lockDir, { recursive: true }),
  ], async () => {
    store = await freshBucket(s3, label);
    const theStore = store;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    const env = (extra: Record<string, string | undefined>) => ({
      ...childEnv(s3, theStore.bucket),
      FILESYSTEM: dataset,
      CHUNK_SIZE: "5M",
      Z3_LOCK_DIR: lockDir,
      ...extra,
    });
    await fn({
      pool,
      store: theStore,
      dataset,
      dir,
      lockDir,
      z3: (args, extra = {}) => runZ3(args, env(extra)),
      spawn: (args, extra = {}) =>
        spawnCli(Z3, args, { env: { Z3_CONFIG: "/dev/null", ...env(extra) } }),
      key: (snap) => `${PREFIX}${dataset}@${snap}`,
      async keys(prefix = "") {
        const out: string[] = [];
        for await (const o of theStore.list(prefix)) out.push(o.key);
        return out.sort();
      },
      pending: () => Array.fromAsync(theStore.listMultipartUploads("")),
    });
  });
}

/** Runs `fn` with a fault proxy in front of the real server, closed afterwards. */
async function withProxy(
  s3: S3Env,
  options: FaultProxyOptions,
  fn: (proxy: FaultProxy) => Promise<void>,
): Promise<void> {
  const proxy = faultProxy(s3.S3_ENDPOINT, options);
  try {
    await fn(proxy);
    assert.deepEqual(proxy.errors, [], "the proxy met nothing it could not parse");
  } finally {
    await proxy.close();
  }
}

/** Polls `check` every 50 ms until it returns true; fails after `ms`. */
async function until(what: string, check: () => Promise<boolean>, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Short names of the snapshots of `dataset` (`zfs list -t snapshot`); [] when it is gone. */
async function snapshotsAfterFailure(dataset: string): Promise<string[]> {
  // zfs-fuse cleans up a killed `zfs receive` after the client has exited: let it settle.
  for (let i = 0; i < 10 && (await zfs.datasetExists(dataset)); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!(await zfs.datasetExists(dataset))) return [];
  return (await zfs.listSnapshots(dataset)).map((s) => s.snapshot);
}

/** Writes `size` bytes of noise to `name` in the dataset and takes snapshot `snap`. */
async function snapshotWith(f: Fixture, snap: string, name: string, size: number, seed: number) {
  await Deno.writeFile(`${f.dir}/${name}`, pseudoRandom(size, seed));
  await f.pool.snapshot(DATA, snap);
}

/** `z3 status --json` as [name, health] pairs. */
async function health(f: Fixture): Promise<[string, string][]> {
  const rows = JSON.parse(ok(await f.z3(["status", "--json"])).join("\n")) as {
    name: string;
    health: string;
  }[];
  return rows.map((r) => [r.name, r.health]);
}

/** Every running process whose parent is `pid`, with its argv (from /proc). */
async function childrenOf(pid: number): Promise<{ pid: number; argv: string[] }[]> {
  const out: { pid: number; argv: string[] }[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${e.name}/stat`);
      // pid (comm) state ppid …: comm may hold spaces, so split after its closing parenthesis.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== pid) continue;
      const cmdline = await Deno.readTextFile(`/proc/${e.name}/cmdline`);
      out.push({ pid: Number(e.name), argv: cmdline.split("\0").filter((a) => a !== "") });
    } catch { /* exited meanwhile */ }
  }
  return out;
}

/** Stops a child that outlived its test (the test has failed already by then). */
async function reap(child: CliChild): Promise<void> {
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  try {
    await child.closeStdin();
    await child.result;
  } finally {
    clearTimeout(timer);
  }
}

// --- transient faults ----------------------------------------------------------------------

integration(
  "z3 backup rides out 503 SlowDown, 500s and a reset mid-part; restore rides out a 503 and a dropped GET; bytes match",
  async (bed) => {
    await withFixture(bed.s3, "ft-transient", async (f) => {
      await snapshotWith(f, "s1", "big file.bin", BIG, 71);
      const want = await treeDigest(f.dir);
      await withProxy(bed.s3, {
        faults: (r) => {
          if (r.kind === "ListObjects" && r.nth === 1) return SLOW_DOWN;
          if (r.kind === "ListMultipartUploads" && r.nth === 1) return SLOW_DOWN;
          if (r.kind === "HeadObject" && r.nth === 1) return INTERNAL_ERROR;
          if (r.kind === "UploadPart" && r.nth === 2) return { kind: "reset", afterBodyBytes: MiB };
          if (r.kind === "UploadPart" && r.nth % 3 === 0) return SLOW_DOWN;
          if (r.kind === "CompleteMultipartUpload" && r.nth === 1) return INTERNAL_ERROR;
          return undefined;
        },
      }, async (proxy) => {
        const result = await f.z3(["backup"], { HOST: proxy.endpoint });
        const lines = ok(result);
        assert.match(
          lines[0],
          new RegExp(`^${f.dataset}@s1: full, \\d+ bytes in 6 part\\(s\\) in [\\d.]+ s, `),
        );
        const faults = proxy.injected().map((e) => `${e.kind} ${e.fault}`);
        assert.ok(faults.includes("UploadPart reset after 1048576 body bytes"), faults.join());
        assert.ok(faults.includes("UploadPart error 503 SlowDown"), faults.join());
        for (
          const f of [
            "ListObjects error 503 SlowDown",
            "ListMultipartUploads error 503 SlowDown",
            "HeadObject error 500 InternalError",
            "CompleteMultipartUpload error 500 InternalError",
          ]
        ) assert.ok(faults.includes(f), `${f} in ${faults.join()}`);
        assert.ok(proxy.count("UploadPart") >= 8, "6 parts, a reset and 503s were retried");
      });
      assert.deepEqual(await f.keys(PREFIX), [f.key("s1")]);
      assert.deepEqual(await f.pending(), [], "no multipart upload left pending");
      // And back, through the same kind of trouble: a 503 and a dropped connection on the
      // ranged GETs of the object.
      const target = `${f.pool.name}/restored`;
      let ranges = 0;
      await withProxy(bed.s3, {
        faults: (r) => {
          if (r.kind !== "GetObject" || !r.target.startsWith(`/${f.store.bucket}/${PREFIX}`)) {
            return undefined;
          }
          ranges++;
          return ranges === 2
            ? SLOW_DOWN
            : ranges === 4
            ? { kind: "reset", afterBodyBytes: 0 }
            : undefined;
        },
      }, async (proxy) => {
        const result = await f.z3(["restore", "s1", "--target", target], { HOST: proxy.endpoint });
        assert.deepEqual(ok(result), [`received ${target}@s1`]);
        const faults = proxy.injected().map((e) => `${e.kind} ${e.fault}`);
        assert.deepEqual(faults, [
          "GetObject error 503 SlowDown",
          "GetObject reset after 0 body bytes",
        ]);
      });
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/restored`), want);
    });
  },
);

// --- the endpoint goes away ----------------------------------------------------------------

integration(
  "z3 backup fails fast with exit 4 when the endpoint goes away; z3 cleanup aborts what is left; a rerun completes",
  async (bed) => {
    await withFixture(bed.s3, "ft-gone", async (f) => {
      await snapshotWith(f, "s1", "big file.bin", BIG, 72);
      await withProxy(bed.s3, {
        faults: (r) => (r.kind === "UploadPart" && r.nth >= 2 ? GONE : undefined),
      }, async (proxy) => {
        const started = Date.now();
        const result = await f.z3(["backup"], { HOST: proxy.endpoint, MAX_RETRIES: "2" });
        const elapsed = Date.now() - started;
        const line = failure(
          result,
          4,
          new RegExp(`^z3: Cannot upload (part \\d+ of )?"${f.key("s1")}"`),
        );
        assert.ok(elapsed < 60_000, `failed within a bounded time: ${elapsed} ms`);
        // z3 could not abort its upload through a dead endpoint: it must say so, and how to fix it.
        assert.match(line, /its multipart upload \S+ is left pending \(abort failed: .*z3 cleanup/);
      });
      // The endpoint is back (straight to the server): no object, no check record, one pending
      // upload and the record of what it was started with.
      assert.deepEqual(await f.keys(), [pendingRecordKey(PREFIX, `${f.dataset}@s1`)]);
      const left = await f.pending();
      assert.deepEqual(left.map((u) => u.key), [f.key("s1")]);
      const { uploadId } = left[0];

      const young = await f.z3(["cleanup"]);
      assert.deepEqual(ok(young), [], "a fresh upload is younger than the default 1d");
      assert.match(young.stderr, /aborted 0 .*1 younger/);
      const dry = ok(await f.z3(["cleanup", "--dry-run", "--max-age", "0"]));
      assert.equal(dry.length, 1);
      assert.match(dry[0], new RegExp(`^${f.key("s1")}\\t${uploadId}\\t\\d+s$`));
      assert.equal((await f.pending()).length, 1, "--dry-run aborts nothing");
      const done = ok(await f.z3(["cleanup", "--max-age", "0"]));
      assert.deepEqual(done.map((l) => l.split("\t").slice(0, 2)), [[f.key("s1"), uploadId]]);
      assert.deepEqual(await f.pending(), []);

      const rerun = ok(await f.z3(["backup"]));
      assert.match(
        rerun[0],
        new RegExp(`^${f.dataset}@s1: full, \\d+ bytes in 6 part\\(s\\) in [\\d.]+ s, `),
      );
      assert.deepEqual(await f.keys(PREFIX), [f.key("s1")]);
      assert.deepEqual(await health(f), [["s1", "ok"]]);
      assert.deepEqual(await f.pending(), []);
    });
  },
);

// --- signals -------------------------------------------------------------------------------

/**
 * s1 (small) is in the bucket; s2 (25 MiB more) goes up through a proxy that stalls every part.
 * Once its multipart upload is pending, the run gets `signal`. Then a rerun completes the chain.
 */
async function interruptBackup(s3: S3Env, signal: "SIGINT" | "SIGTERM") {
  await withFixture(s3, `ft-bk-${signal}`, async (f) => {
    await snapshotWith(f, "s1", "small.bin", 64 * 1024, 73);
    ok(await f.z3(["backup"]));
    await snapshotWith(f, "s2", "big file.bin", BIG, 74);
    await withProxy(s3, {
      faults: (r) => (r.kind === "UploadPart" ? { kind: "stall", ms: 60_000 } : undefined),
    }, async (proxy) => {
      const child = f.spawn(["backup"], { HOST: proxy.endpoint });
      try {
        await until("a pending upload", async () => (await f.pending()).length > 0);
        await proxy.waitFor((e) => e.kind === "UploadPart");
        const lock = `${f.lockDir}/${lockFileName(f.dataset)}`;
        assert.equal((await Deno.readTextFile(lock)).trim(), String(child.pid), "lock holds pid");
        child.kill(signal);
        const result = await child.result;
        failure(
          result,
          signal === "SIGINT" ? 130 : 143,
          new RegExp(`^z3: Interrupted by ${signal}`),
        );
        await assert.rejects(Deno.stat(lock), Deno.errors.NotFound, "the lock is released");
      } finally {
        await reap(child);
      }
    });
    assert.deepEqual(await f.keys(PREFIX), [f.key("s1")], "no object for s2");
    assert.deepEqual(await f.pending(), [], "the upload was aborted");

    const rerun = ok(await f.z3(["backup"]));
    assert.match(rerun[0], new RegExp(`^${f.dataset}@s2: incremental from ${f.dataset}@s1, `));
    assert.deepEqual(await f.keys(PREFIX), [f.key("s1"), f.key("s2")], "no duplicate");
    assert.deepEqual(await health(f), [["s1", "ok"], ["s2", "ok"]]);
    assert.deepEqual(await f.pending(), []);
  });
}

integration(
  "SIGTERM during a backup upload: exit 143, one line, no object, no pending upload; a rerun completes",
  (bed) => interruptBackup(bed.s3, "SIGTERM"),
);

integration(
  "SIGINT during a backup upload: exit 130, one line, no object, no pending upload; a rerun completes",
  (bed) => interruptBackup(bed.s3, "SIGINT"),
);

/**
 * s1 (25 MiB) is in the bucket; a restore downloads it (ranged GETs of CHUNK_SIZE) through a
 * proxy that lets the first two ranges through and stalls every later one after 1 MiB, so
 * `zfs receive` has started and holds 10 MiB of the stream when `signal` comes.
 */
async function interruptRestore(s3: S3Env, signal: "SIGINT" | "SIGTERM") {
  await withFixture(s3, `ft-rs-${signal}`, async (f) => {
    await snapshotWith(f, "s1", "big file.bin", BIG, 75);
    ok(await f.z3(["backup"]));
    const target = `${f.pool.name}/restored`;
    let ranges = 0;
    await withProxy(s3, {
      faults: (r) =>
        r.kind === "GetObject" && r.target.startsWith(`/${f.store.bucket}/${PREFIX}`) &&
          ++ranges > 2
          ? { kind: "stallResponse", afterBytes: MiB, ms: 60_000 }
          : undefined,
    }, async (proxy) => {
      const child = f.spawn(["restore", "s1", "--target", target], { HOST: proxy.endpoint });
      try {
        await proxy.waitForResponseStall();
        let receiver: number | undefined;
        await until("zfs receive to run", async () => {
          receiver = (await childrenOf(child.pid)).find((c) => c.argv[1] === "receive")?.pid;
          return receiver !== undefined;
        });
        child.kill(signal);
        const result = await child.result;
        failure(
          result,
          signal === "SIGINT" ? 130 : 143,
          new RegExp(`^z3: Interrupted by ${signal}`),
        );
        await until("zfs receive to be gone", async () => {
          try {
            return !(await Deno.readTextFile(`/proc/${receiver}/cmdline`)).includes("receive");
          } catch {
            return true;
          }
        }, 5000);
      } finally {
        await reap(child);
      }
    });
    assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was received");
  });
}

integration(
  "SIGTERM during a restore: exit 143 and the target has no snapshot from the object",
  (bed) => interruptRestore(bed.s3, "SIGTERM"),
);

integration(
  "SIGINT during a restore: exit 130 and the target has no snapshot from the object",
  (bed) => interruptRestore(bed.s3, "SIGINT"),
);

// --- z3 cleanup ----------------------------------------------------------------------------

integration(
  "z3 cleanup aborts only uploads under S3_PREFIX older than --max-age; --dry-run only lists",
  async (bed) => {
    const store = await freshBucket(bed.s3, "ft-cleanup");
    const z3 = (args: string[]) => runZ3(["cleanup", ...args], childEnv(bed.s3, store.bucket));
    const pendingKeys = async () =>
      (await Array.fromAsync(store.listMultipartUploads(""))).map((u) => u.key).sort();
    try {
      const oldKey = `${PREFIX}pool/old one@s1`;
      const oldId = await store.createMultipart(oldKey);
      const outside = await store.createMultipart("elsewhere/pool/fs@s1");
      const none = await z3([]);
      assert.deepEqual(ok(none), [], "nothing is older than a day");
      assert.match(none.stderr, /aborted 0 pending multipart upload\(s\) under "z3-backup\/"/);
      assert.deepEqual(await pendingKeys(), [oldKey, "elsewhere/pool/fs@s1"].sort());

      // Ages 8 s apart, the line at 5 s: room for the server's whole-second timestamps and for
      // two z3 runs to start while the new upload stays younger than 5 s.
      await new Promise((r) => setTimeout(r, 8000));
      const newKey = `${PREFIX}pool/new@s2`;
      const newId = await store.createMultipart(newKey);
      const all = [oldKey, newKey, "elsewhere/pool/fs@s1"].sort();
      const dry = await z3(["--dry-run", "--max-age", "5s"]);
      const listed = ok(dry);
      assert.equal(listed.length, 1, dry.stdout);
      const [key, id, age] = listed[0].split("\t");
      assert.deepEqual([key, id], [oldKey, oldId]);
      assert.ok(parseDuration(age) >= 5000, `age ${age}`);
      assert.match(dry.stderr, /^dry run: 1 .* would be aborted; 1 younger/m);
      assert.deepEqual(await pendingKeys(), all, "--dry-run aborts nothing");

      assert.deepEqual(ok(await z3(["--max-age", "5s"])).map((l) => l.split("\t")[1]), [oldId]);
      assert.deepEqual(await pendingKeys(), [newKey, "elsewhere/pool/fs@s1"].sort());
      assert.deepEqual(ok(await z3(["--max-age", "0"])).map((l) => l.split("\t")[1]), [newId]);
      assert.deepEqual(await pendingKeys(), ["elsewhere/pool/fs@s1"], "outside S3_PREFIX stays");

      failure(await z3(["--max-age", "3 days"]), 2, /^z3: Cannot parse --max-age "3 days"/);
      await store.abortMultipart("elsewhere/pool/fs@s1", outside);
    } finally {
      store.close();
    }
  },
  { zfs: false },
);

// --- concurrent runs -----------------------------------------------------------------------

integration(
  "two z3 backups of one dataset: the second exits 8 naming the first's pid; then backups succeed",
  async (bed) => {
    await withFixture(bed.s3, "ft-lock", async (f) => {
      await snapshotWith(f, "s1", "big file.bin", BIG, 76);
      // A run that died without releasing (SIGKILL, power loss) left its file: taken over.
      const dead = new Deno.Command("true").spawn();
      await dead.status;
      const lock = `${f.lockDir}/${lockFileName(f.dataset)}`;
      await Deno.writeTextFile(lock, `${dead.pid}\n`);
      await withProxy(bed.s3, {
        faults: (
          r,
        ) => (r.kind === "UploadPart" && r.nth === 1 ? { kind: "stall", ms: 60_000 } : undefined),
      }, async (proxy) => {
        const first = f.spawn(["backup"], { HOST: proxy.endpoint });
        try {
          await proxy.waitFor((e) => e.kind === "UploadPart");
          assert.equal((await Deno.readTextFile(lock)).trim(), String(first.pid));
          const second = await f.z3(["backup"]);
          failure(
            second,
            8,
            new RegExp(
              `^z3: Cannot back up "${f.dataset}": another z3 run \\(pid ${first.pid}\\) ` +
                `is running; lock file ${lock.replaceAll(".", "\\.")}$`,
            ),
          );
          ok(await f.z3(["backup", "--dry-run"])); // a dry run changes nothing: no lock
          proxy.releaseStalls();
          const lines = ok(await first.result);
          assert.match(lines[0], new RegExp(`^${f.dataset}@s1: full, `));
        } finally {
          await reap(first);
        }
      });
      await snapshotWith(f, "s2", "more.bin", 64 * 1024, 77);
      const lines = ok(await f.z3(["backup"]));
      assert.match(lines[0], new RegExp(`^${f.dataset}@s2: incremental from ${f.dataset}@s1, `));
      assert.deepEqual(await f.keys(PREFIX), [f.key("s1"), f.key("s2")]);
      assert.deepEqual(await health(f), [["s1", "ok"], ["s2", "ok"]]);
      await assert.rejects(Deno.stat(lock), Deno.errors.NotFound, "released after the run");
    });
  },
);

integration(
  "a stalled server fails the request after S3_TIMEOUT and the retry completes backup and restore",
  async (bed) => {
    await withFixture(bed.s3, "ft-stall", async (f) => {
      await snapshotWith(f, "s1", "big file.bin", 12 * MiB, 91);
      let parts = 0;
      let gets = 0;
      await withProxy(bed.s3, {
        faults: (r) =>
          (r.kind === "UploadPart" && ++parts === 2) || (r.kind === "GetObject" && ++gets === 1)
            ? { kind: "stall", ms: 30_000 }
            : undefined,
      }, async (proxy) => {
        const started = performance.now();
        ok(await f.z3(["backup"], { HOST: proxy.endpoint, S3_TIMEOUT: "2" }));
        const target = `${f.pool.name}/restored`;
        ok(
          await f.z3(["restore", "s1", "--target", target], {
            HOST: proxy.endpoint,
            S3_TIMEOUT: "2",
          }),
        );
        const seconds = (performance.now() - started) / 1000;
        // Each stalled request was sent again: the same part number, the same object and range.
        const stalled = proxy.injected();
        assert.deepEqual(stalled.map((e) => e.kind), ["UploadPart", "GetObject"]);
        const partOf = (e: LogEntry) =>
          new URL(e.target, "http://proxy").searchParams.get("partNumber");
        for (const e of stalled) {
          const again = proxy.log.filter((l) =>
            l.index > e.index && l.kind === e.kind && l.range === e.range &&
            (e.kind === "UploadPart" ? partOf(l) === partOf(e) : l.target === e.target)
          );
          assert.ok(again.length > 0, `${e.kind} ${e.target} ${e.range ?? ""} was sent again`);
        }
        assert.ok(
          seconds < 25,
          `both finished in ${seconds.toFixed(1)} s, not after the 30 s stalls`,
        );
        assert.deepEqual(
          await treeDigest(`${f.pool.mountpoint}/restored`),
          await treeDigest(f.dir),
        );
        proxy.releaseStalls();
      });
    });
  },
);

integration(
  "a restore into a pool that fills up fails with zfs's reason and leaves the bucket as it was",
  async (bed) => {
    await withFixture(bed.s3, "ft-full", async (f) => {
      await snapshotWith(f, "s1", "big file.bin", 90 * MiB, 93);
      ok(await f.z3(["backup"]));
      const before = await f.keys();
      const small = await createPool(64);
      try {
        const target = `${small.name}/restored`;
        const result = await f.z3(["restore", "s1", "--target", target]);
        const line = failure(result, 3, /^z3: Command failed .*zfs receive/);
        assert.match(line, /space|quota/i, "the message says the pool ran out of space");
        assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was received");
      } finally {
        await small.destroy();
      }
      assert.deepEqual(await f.keys(), before, "the bucket is untouched");
      assert.deepEqual(await f.pending(), []);
    });
  },
);
