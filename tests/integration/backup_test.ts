import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliResult, runZ3, spawnCli, Z3 } from "../bed/cli.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import { faultProxy } from "../bed/fault_proxy.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { holdTag } from "../../lib/zfs/holds.ts";

const MiB = 1024 * 1024;
/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "my data";

/** One test's pool, bucket and dataset. */
interface Fixture {
  pool: TestPool;
  store: S3Store;
  /** `pool/my data`. */
  dataset: string;
  /** Where the dataset is mounted. */
  dir: string;
  /** Runs z3 with FILESYSTEM = dataset against the test bucket; `env` adds or overrides. */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** Every key in the bucket under `prefix`, sorted. */
  keys(prefix?: string): Promise<string[]>;
  /** Every object in the bucket (backups and check records): key, ETag, size, LastModified. */
  objects(): Promise<string[]>;
}

async function withFixture(
  s3: S3Env,
  label: string,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(512);
  let store: S3Store | undefined;
  // The test's own failure is the one reported; a cleanup that fails too is added to it.
  await withCleanup([() => store?.close(), () => pool.destroy()], async () => {
    store = await freshBucket(s3, label);
    const bucket = store.bucket;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    const theStore = store;
    await fn({
      pool,
      store: theStore,
      dataset,
      dir,
      z3: (args, env = {}) => runZ3(args, { ...childEnv(s3, bucket), FILESYSTEM: dataset, ...env }),
      /** Backup objects (under S3_PREFIX; check records live beside it). */
      async keys(prefix = "z3-backup/") {
        const out: string[] = [];
        for await (const o of theStore.list(prefix)) out.push(o.key);
        return out.sort();
      },
      async objects() {
        const out: string[] = [];
        for await (const o of theStore.list("")) {
          out.push(`${o.key} ${o.etag} ${o.size} ${o.lastModified?.toISOString()}`);
        }
        return out.sort();
      },
    });
  });
}

/** The GUID of a snapshot, as zfs-fuse prints it exactly (`zfs list -o guid` rounds). */
async function guidOf(snapshot: string): Promise<string> {
  return (await run(["zfs", "get", "-Hp", "-o", "value", "guid", snapshot])).trim();
}

async function writeSome(dir: string, name: string, seed: number, size = 64 * 1024) {
  await Deno.writeFile(`${dir}/${name}`, pseudoRandom(size, seed));
}

integration("z3 backup makes a full on an empty bucket", async (bed) => {
  await withFixture(bed.s3, "bk-full", async (f) => {
    await writeSome(f.dir, "a file.bin", 1);
    await f.pool.snapshot(DATA, "s1");
    const lines = ok(await f.z3(["backup"]));
    assert.deepEqual(lines.length, 1);
    assert.match(
      lines[0],
      new RegExp(`^${f.dataset}@s1: full, \\d+ bytes in 1 part\\(s\\) in [\\d.]+ s, `),
    );

    const key = `z3-backup/${f.dataset}@s1`;
    assert.deepEqual(await f.keys(), [key]);
    assert.deepEqual(
      await f.keys("z3-backup.z3/"),
      [`z3-backup.z3/${f.dataset}@s1`, `z3-backup.z3/${f.dataset}@s1#properties`],
      "check record and the full's properties",
    );
    const info = await f.store.head(key);
    assert.ok(info);
    assert.deepEqual(info.metadata.isfull, "true");
    assert.deepEqual(info.metadata["z3-guid"], await guidOf(`${f.dataset}@s1`));
    assert.deepEqual(info.metadata.parent, undefined);
    assert.deepEqual(info.metadata.compressor, "zstd", "zstd by default");
    assert.match(info.metadata["z3-created"] ?? "", /^\d+$/);
  });
});

// Snapshot names with spaces and the odd characters ZFS allows, to prove no shell is involved.
const INCREMENTALS = ["s2 two", "s3:x.y", "s4-z_w"];

integration("z3 backup sends three incrementals with the right parents", async (bed) => {
  await withFixture(bed.s3, "bk-incr", async (f) => {
    await writeSome(f.dir, "f1", 1);
    await f.pool.snapshot(DATA, "s1");
    ok(await f.z3(["backup"]));
    const names = ["s1", ...INCREMENTALS];
    for (const [i, snap] of INCREMENTALS.entries()) {
      await writeSome(f.dir, `f${i + 2}`, i + 2);
      await f.pool.snapshot(DATA, snap);
    }
    const lines = ok(await f.z3(["backup"]));
    assert.deepEqual(
      lines.map((l) => l.replace(/, \d+ bytes in \d+ part\(s\) in [\d.]+ s, .*\/s$/, "")),
      INCREMENTALS.map((s, i) => `${f.dataset}@${s}: incremental from ${f.dataset}@${names[i]}`),
    );

    assert.deepEqual(
      await f.keys(),
      names.map((s) => `z3-backup/${f.dataset}@${s}`).sort(),
    );
    for (const [i, snap] of INCREMENTALS.entries()) {
      const info = await f.store.head(`z3-backup/${f.dataset}@${snap}`);
      assert.ok(info, snap);
      assert.deepEqual(info.metadata.parent, `${f.dataset}@${names[i]}`);
      assert.deepEqual(info.metadata.isfull, undefined);
      assert.deepEqual(info.metadata["z3-guid"], await guidOf(`${f.dataset}@${snap}`));
      assert.deepEqual(info.metadata["z3-parent-guid"], await guidOf(`${f.dataset}@${names[i]}`));
    }

    const status = JSON.parse(ok(await f.z3(["status", "--json"])).join("\n")) as {
      name: string;
      parent: string;
      type: string;
      health: string;
      localState: string;
    }[];
    assert.deepEqual(
      status.map((r) => [r.name, r.parent, r.type, r.health, r.localState]),
      [
        ["s1", "", "full", "ok", "ok"],
        ...INCREMENTALS.map((s, i) => [s, names[i], "incremental", "ok", "ok"]),
      ],
    );
  });
});

integration("z3 backup uploads nothing when up to date", async (bed) => {
  await withFixture(bed.s3, "bk-uptodate", async (f) => {
    await writeSome(f.dir, "f1", 1);
    await f.pool.snapshot(DATA, "s1");
    ok(await f.z3(["backup"]));
    const before = await f.objects();
    // S3 dates have whole seconds: a rewrite after this pause gets a later LastModified.
    await new Promise((r) => setTimeout(r, 1100));
    const again = await f.z3(["backup"]);
    assert.deepEqual(ok(again), [], "nothing on stdout");
    assert.match(again.stderr, /up to date/);
    assert.deepEqual(await f.objects(), before, "no object or check record was written again");
  });
});

integration("z3 backup --dry-run touches nothing", async (bed) => {
  await withFixture(bed.s3, "bk-dry", async (f) => {
    await writeSome(f.dir, "f1", 1);
    await f.pool.snapshot(DATA, "s1");
    ok(await f.z3(["backup"]));
    await writeSome(f.dir, "f2", 2);
    await f.pool.snapshot(DATA, "s2 two");
    const before = await f.keys();
    const lines = ok(await f.z3(["backup", "--dry-run", "--compressor", "zstd"]));
    assert.deepEqual(lines, [
      `${f.dataset}@s2 two (incremental from s1): zfs send -i '${f.dataset}@s1' ` +
      `'${f.dataset}@s2 two' | zstd -1 -T0 -q -c | ` +
      `upload s3://${f.store.bucket}/z3-backup/${f.dataset}@s2 two`,
      `zfs hold ${holdTag(f.store.bucket, "z3-backup/")} '${f.dataset}@s2 two'`,
      `zfs release ${holdTag(f.store.bucket, "z3-backup/")} '${f.dataset}@s1'`,
    ]);
    assert.deepEqual(await f.keys(), before, "no new objects");
    assert.deepEqual(await Array.fromAsync(f.store.listMultipartUploads("")), []);
  });
});

integration(
  "z3 status shows the table and a missing row for a local-only snapshot",
  async (bed) => {
    await withFixture(bed.s3, "bk-status", async (f) => {
      await writeSome(f.dir, "f1", 1);
      await f.pool.snapshot(DATA, "s1");
      ok(await f.z3(["backup"]));
      await f.pool.snapshot(DATA, "s2");
      const lines = ok(await f.z3(["status"]));
      // A row with an empty SIZE ends in a bare "|" (trimEnd), so split on "|" alone.
      const cells = lines.map((l) => l.split("|").map((c) => c.trim()));
      assert.deepEqual(cells[0], [
        "NAME",
        "PARENT",
        "TYPE",
        "HEALTH",
        "LOCAL STATE",
        "SIZE",
        "CREATED",
        "UPLOADED",
      ]);
      assert.deepEqual(cells.length, 3, lines.join("\n"));
      assert.deepEqual(cells[1].slice(0, 5), ["s1", "", "full", "ok", "ok"]);
      assert.match(cells[1][5], /^\d+(\.\d+)? K$/, "under 1 MiB: not 0 M");
      const minute = /^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/;
      assert.match(cells[1][6], minute);
      assert.match(cells[1][7], minute);
      assert.deepEqual(cells[2].slice(0, 6), ["s2", "-", "missing", "-", "ok", ""]);
      assert.match(cells[2][6], minute);
      assert.deepEqual(cells[2][7], "", "not uploaded");
      const widths = lines.map((l) => l.indexOf(" | "));
      assert.ok(widths.every((w) => w === widths[0]), "columns are aligned");
    });
  },
);

integration("a zfs send that fails midway leaves no object", async (bed) => {
  await withFixture(bed.s3, "bk-cut", async (f) => {
    await writeSome(f.dir, "big.bin", 3, 20 * MiB);
    await f.pool.snapshot(DATA, "s1");
    const realZfs = (await run(["sh", "-c", "command -v zfs"])).trim();
    const tmp = await Deno.makeTempDir({ prefix: "z3-cut-" });
    try {
      // Named zfs so that messages show what a real failure would; cuts every real send short.
      const wrapper = `${tmp}/zfs`;
      await Deno.writeTextFile(
        wrapper,
        `#!/bin/sh
if [ "$1" = send ]; then
  case " $* " in *" -n "*) exec '${realZfs}' "$@" ;; esac
  '${realZfs}' "$@" | head -c 6000000
  echo "simulated failure: stream cut" >&2
  exit 1
fi
exec '${realZfs}' "$@"
`,
      );
      await Deno.chmod(wrapper, 0o755);
      const result = await f.z3(["backup"], { Z3_ZFS_COMMAND: wrapper, CHUNK_SIZE: "5M" });
      const line = failure(result, 3, /zfs/);
      assert.match(line, /simulated failure: stream cut/, "the error carries zfs's stderr");
      assert.deepEqual(await f.keys(), [], "no object for the failed snapshot");
      assert.deepEqual(await Array.fromAsync(f.store.listMultipartUploads("")), []);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
});

integration("diverged history is refused", async (bed) => {
  await withFixture(bed.s3, "bk-diverged", async (f) => {
    await writeSome(f.dir, "f1", 1);
    await f.pool.snapshot(DATA, "s1");
    ok(await f.z3(["backup"], { HOLD: "false" })); // a held s1 could not be destroyed below
    const oldGuid = await guidOf(`${f.dataset}@s1`);
    for (let i = 0;; i++) {
      try {
        await run(["zfs", "destroy", "-r", f.dataset]);
        break;
      } catch (err) {
        if (i >= 20) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const dir = await f.pool.createDataset(DATA);
    await writeSome(dir, "other", 9);
    await f.pool.snapshot(DATA, "s1");
    await f.pool.snapshot(DATA, "s2");
    const newGuid = await guidOf(`${f.dataset}@s1`);
    assert.notDeepEqual(newGuid, oldGuid);
    const before = await f.keys();
    const line = failure(await f.z3(["backup"]), 5, /diverged/);
    assert.ok(line.includes(oldGuid), `names the bucket's GUID: ${line}`);
    assert.ok(line.includes(newGuid), `names the local GUID: ${line}`);
    assert.match(line, /use a new S3_PREFIX/, "suggests what is safe");
    assert.doesNotMatch(line, /--full/, "never suggests overwriting the other history");
    assert.deepEqual(await f.keys(), before);
    // --full onto the other history's object is refused too, and writes nothing.
    const etag = (await f.store.head(`z3-backup/${f.dataset}@s1`))?.etag;
    const full = failure(
      await f.z3(["backup", "--full", "--snapshot", "s1"]),
      5,
      /as a full: .*another snapshot/,
    );
    assert.ok(full.includes(oldGuid) && full.includes(newGuid), full);
    assert.match(full, /new S3_PREFIX/);
    assert.deepEqual(await f.keys(), before);
    assert.equal((await f.store.head(`z3-backup/${f.dataset}@s1`))?.etag, etag, "not rewritten");
  });
});

integration("every compressor round-trips", async (bed) => {
  await withFixture(bed.s3, "bk-comp", async (f) => {
    // Half text (compressible), half noise.
    await Deno.writeTextFile(`${f.dir}/text.txt`, "z3 backs up ZFS snapshots\n".repeat(40_000));
    await writeSome(f.dir, "noise.bin", 5, 512 * 1024);
    await f.pool.snapshot(DATA, "s1");
    const want = await treeDigest(f.dir);
    const sizes: Record<string, number> = {};
    for (const c of ["none", "gzip", "zstd", "lz4", "pigz1"]) {
      const env = { S3_PREFIX: `c-${c}/` };
      ok(await f.z3(["backup", "--compressor", c], env));
      const info = await f.store.head(`c-${c}/${f.dataset}@s1`);
      assert.ok(info, c);
      assert.deepEqual(info.metadata.compressor, c === "none" ? undefined : c);
      sizes[c] = info.size;
      const target = `${f.pool.name}/r_${c}`;
      const restored = ok(await f.z3(["restore", "s1", "--target", target], env));
      assert.deepEqual(restored, [`received ${target}@s1`]);
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/r_${c}`), want, c);
    }
    for (const [c, size] of Object.entries(sizes)) {
      if (c !== "none") assert.ok(size < sizes.none, `${c} compresses: ${size} < ${sizes.none}`);
    }
  });
}, { commands: ["zstd", "lz4", "pigz"] });

/**
 * A directory of wrappers for PATH and Z3_ZFS_COMMAND: each named command logs to `log` which
 * pipe its stdin and stdout are (`/proc/$$/fd`), then runs the real one (`exec`, same PID), or
 * runs `bodies[name]` instead when given.
 */
async function loggingWrappers(
  names: string[],
  bodies: Record<string, string> = {},
): Promise<{ dir: string; log: string; lines(): Promise<string[]> }> {
  const dir = await Deno.makeTempDir({ prefix: "z3-wrap-" });
  const log = `${dir}/log`;
  for (const name of names) {
    const real = (await run(["sh", "-c", `command -v ${name}`])).trim();
    await Deno.writeTextFile(
      `${dir}/${name}`,
      `#!/bin/sh
echo "${name} $* in=$(readlink /proc/$$/fd/0) out=$(readlink /proc/$$/fd/1)" >> '${log}'
${bodies[name] ?? `exec '${real}' "$@"`}
`,
    );
    await Deno.chmod(`${dir}/${name}`, 0o755);
  }
  const lines = async () =>
    (await Deno.readTextFile(log).catch(() => "")).split("\n").filter(Boolean);
  return { dir, log, lines };
}

integration(
  "zstd, lz4, zstd+age and none round-trip; zfs send's stdout is the compressor's stdin",
  async (bed) => {
    await withFixture(bed.s3, "bk-pipe", async (f) => {
      await Deno.writeTextFile(`${f.dir}/text.txt`, "z3 pipes zfs send\n".repeat(200_000));
      await writeSome(f.dir, "noise.bin", 6, 3 * MiB);
      await f.pool.snapshot(DATA, "s1");
      const want = await treeDigest(f.dir);
      const wrap = await loggingWrappers(["zfs", "zstd", "lz4"]);
      const keyFile = `${wrap.dir}/age.key`;
      await run(["age-keygen", "-o", keyFile]);
      const recipient = (await Deno.readTextFile(keyFile)).match(/# public key: (age1\S+)/)![1];
      try {
        const path = `${wrap.dir}:${Deno.env.get("PATH")}`;
        const cases: [string, string, Record<string, string>][] = [
          ["zstd", "zstd", {}],
          ["lz4", "lz4", {}],
          ["zstd+age", "zstd", { AGE_RECIPIENTS: recipient, AGE_IDENTITY_FILE: keyFile }],
          ["none", "none", {}],
        ];
        for (const [label, compressor, extra] of cases) {
          const env = { S3_PREFIX: `p-${label}/`, PATH: path, Z3_ZFS_COMMAND: `${wrap.dir}/zfs` };
          await Deno.writeTextFile(wrap.log, "");
          ok(await f.z3(["backup", "--compressor", compressor], { ...env, ...extra }));
          const lines = await wrap.lines();
          const send = lines.find((l) => l.startsWith("zfs send ") && !l.includes(" -n "));
          assert.ok(send, `${label}: zfs send ran: ${lines}`);
          const out = send.match(/out=(pipe:\[\d+\])/)![1];
          const packers = lines.filter((l) => /^(zstd|lz4) -1 /.test(l));
          if (compressor === "none") assert.deepEqual(packers, [], label);
          else {
            assert.equal(packers.length, 1, `${label}: ${lines}`);
            assert.equal(packers[0].match(/in=(\S+)/)![1], out, `${label}: one pipe: ${lines}`);
          }
          const target = `${f.pool.name}/r_${label.replace("+", "_")}`;
          const restored = ok(
            await f.z3(["restore", "s1", "--target", target], { ...env, ...extra }),
          );
          assert.deepEqual(restored, [`received ${target}@s1`]);
          assert.deepEqual(
            await treeDigest(`${f.pool.mountpoint}/${target.split("/")[1]}`),
            want,
            label,
          );
        }
      } finally {
        await Deno.remove(wrap.dir, { recursive: true });
      }
    });
  },
  { commands: ["zstd", "lz4", "age"] },
);

integration("a compressor that fails after writing leaves no object and is named", async (bed) => {
  await withFixture(bed.s3, "bk-zfail", async (f) => {
    await writeSome(f.dir, "big.bin", 4, 20 * MiB);
    await f.pool.snapshot(DATA, "s1");
    const real = (await run(["sh", "-c", "command -v zstd"])).trim();
    const wrap = await loggingWrappers(["zstd"], {
      zstd: `head -c 6000000 | '${real}' "$@"
echo "simulated compressor failure" >&2
exit 1`,
    });
    try {
      const env = { PATH: `${wrap.dir}:${Deno.env.get("PATH")}`, CHUNK_SIZE: "5M" };
      const result = await f.z3(["backup", "--compressor", "zstd"], env);
      const line = failure(result, 7, /zstd/);
      assert.match(line, /simulated compressor failure/, "the error carries zstd's stderr");
      assert.deepEqual(await f.keys(), [], "no object for the failed snapshot");
      assert.deepEqual(await Array.fromAsync(f.store.listMultipartUploads("")), []);
    } finally {
      await Deno.remove(wrap.dir, { recursive: true });
    }
  });
}, { commands: ["zstd"] });

/** The PIDs of `pid`'s children. */
function childrenOf(pid: number): number[] {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/task`)].flatMap((t) =>
      Deno.readTextFileSync(`/proc/${pid}/task/${t.name}/children`).trim().split(/\s+/)
        .filter(Boolean).map(Number)
    );
  } catch {
    return [];
  }
}

/** Whether `pid` runs (a zombie, or no process, does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

integration("SIGTERM during a backup ends zfs send and the compressor", async (bed) => {
  await withFixture(bed.s3, "bk-term", async (f) => {
    await writeSome(f.dir, "f", 1);
    await f.pool.snapshot(DATA, "s1");
    // A send that writes a little, then hangs: both children are running when SIGTERM comes.
    const wrap = await loggingWrappers(["zfs"], {
      zfs: `case " $* " in *" -n "*) exec zfs "$@" ;; esac
if [ "$1" = send ]; then head -c 100000 /dev/zero; exec sleep 120; fi
exec zfs "$@"`,
    });
    try {
      const child = spawnCli(Z3, ["backup", "--compressor", "zstd"], {
        env: {
          ...childEnv(bed.s3, f.store.bucket),
          FILESYSTEM: f.dataset,
          Z3_CONFIG: "/dev/null",
          Z3_ZFS_COMMAND: `${wrap.dir}/zfs`,
        },
      });
      let kids: number[] = [];
      for (let i = 0; i < 300 && kids.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        kids = childrenOf(child.pid).filter((pid) => {
          const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
          return /(^|\/)(sleep|zstd)$/.test(cmd[0]);
        });
      }
      assert.equal(
        kids.length,
        2,
        `zfs send (sleeping) and zstd run: ${
          childrenOf(child.pid).map((pid) => Deno.readTextFileSync(`/proc/${pid}/cmdline`))
        }`,
      );
      child.kill("SIGTERM");
      const result = await child.result;
      assert.equal(result.code, 143, result.stderr);
      assert.deepEqual(kids.filter(running), [], "no child left running");
      assert.deepEqual(await f.keys(), []);
    } finally {
      await Deno.remove(wrap.dir, { recursive: true });
    }
  });
}, { commands: ["zstd"] });

integration(
  "a backup killed midway resumes on the next run and uploads only the rest",
  async (bed) => {
    await withFixture(bed.s3, "bk-resume", async (f) => {
      await Deno.writeFile(`${f.dir}/big.bin`, pseudoRandom(40 * 1024 * 1024, 9));
      await f.pool.snapshot(DATA, "s1");
      const key = `z3-backup/${f.dataset}@s1`;
      const env = {
        ...childEnv(bed.s3, f.store.bucket),
        FILESYSTEM: f.dataset,
        CHUNK_SIZE: "5M",
        CONCURRENCY: "1",
      };
      // Slow the send so the kill lands midway: a zfs wrapper that trickles the stream.
      const slow = await slowZfs();
      const child = spawnCli(Z3, ["backup"], {
        env: { ...env, Z3_CONFIG: "/dev/null", Z3_ZFS_COMMAND: slow },
      });
      let uploaded = 0;
      for (let i = 0; i < 300 && uploaded < 2; i++) {
        await new Promise((r) => setTimeout(r, 100));
        for await (const u of f.store.listMultipartUploads(key)) {
          uploaded = Math.max(uploaded, (await f.store.listParts(key, u.uploadId)).size);
        }
      }
      assert.ok(uploaded >= 2, "at least two parts were uploaded before the kill");
      child.kill("SIGKILL");
      await child.result;
      assert.deepEqual(await f.keys(), [], "no object after the kill");
      const stored = new Set<number>();
      for await (const u of f.store.listMultipartUploads(key)) {
        for (const n of (await f.store.listParts(key, u.uploadId)).keys()) stored.add(n);
      }
      assert.ok(stored.size >= 2, `parts in the bucket after the kill: ${[...stored]}`);

      // The rerun goes through a proxy that logs every request: what went up on the wire.
      const proxy = faultProxy(bed.s3.S3_ENDPOINT);
      let rerun: CliResult;
      try {
        rerun = await f.z3(["backup", "--json"], {
          CHUNK_SIZE: "5M",
          CONCURRENCY: "1",
          HOST: proxy.endpoint,
        });
      } finally {
        await proxy.close();
      }
      assert.equal(rerun.code, 0, rerun.stderr);
      const [record] = JSON.parse(rerun.stdout);
      assert.equal(record.resumedParts, stored.size, "every stored part was kept");
      const sent = proxy.log.filter((e) => e.kind === "UploadPart")
        .map((e) => Number(new URL(e.target, "http://proxy").searchParams.get("partNumber")));
      const rest = Array.from({ length: record.parts }, (_, i) => i + 1).filter((n) =>
        !stored.has(n)
      );
      assert.ok(rest.length > 0, "there was a rest to upload");
      assert.deepEqual(sent, rest, "UploadPart on the wire: only the parts not stored, once each");
      assert.match(rerun.stderr, /resuming an interrupted upload/);
      const pending = [];
      for await (const u of f.store.listMultipartUploads("z3-backup/")) pending.push(u);
      assert.deepEqual(pending, [], "no pending upload left");

      const restored = await f.z3(["restore", "s1", "--target", `${f.pool.name}/back`]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back`), await treeDigest(f.dir));
    });
  },
);

/** A `zfs` wrapper whose `send` output trickles (~5 MiB/s) so a test can kill it midway. */
async function slowZfs(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "z3-slow-zfs-" });
  const trickle = `${dir}/trickle.ts`;
  await Deno.writeTextFile(
    trickle,
    `for await (const chunk of Deno.stdin.readable) {
  await Deno.stdout.write(chunk);
  await new Promise((r) => setTimeout(r, Math.ceil(chunk.length / 5000)));
}
`,
  );
  const path = `${dir}/zfs`;
  await Deno.writeTextFile(
    path,
    `#!/bin/bash
if [ "$1" = send ]; then
  set -o pipefail
  zfs "$@" | "${Deno.execPath()}" run --allow-all "${trickle}"
  exit $?
fi
exec zfs "$@"
`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

integration(
  "FULL_EVERY starts new fulls and prune deletes only whole older chains",
  async (bed) => {
    await withFixture(bed.s3, "bk-prune", async (f) => {
      const env = { FULL_EVERY: "1" };
      for (const snap of ["s1", "s2", "s3", "s4"]) {
        await writeSome(f.dir, `${snap}.bin`, 1);
        await f.pool.snapshot(DATA, snap);
        ok(await f.z3(["backup"], env));
      }
      const types = Object.fromEntries(
        (JSON.parse((await f.z3(["status", "--json"])).stdout) as { name: string; type: string }[])
          .map((r) => [r.name, r.type]),
      );
      assert.deepEqual(types, { s1: "full", s2: "incremental", s3: "full", s4: "incremental" });

      const dry = ok(await f.z3(["prune", "--dry-run", "--keep-last", "1"]));
      assert.deepEqual(dry, [
        "delete\t" + `${f.dataset}@s1\t`,
        "delete\t" + `${f.dataset}@s2\t`,
        "keep\t" + `${f.dataset}@s3\tneeded by a kept snapshot`,
        "keep\t" + `${f.dataset}@s4\tlast`,
      ]);
      assert.equal((await f.keys()).length, 4, "--dry-run deletes nothing");

      // One chain: KEEP_LAST=1 pins the whole chain below s4, so nothing of it goes.
      ok(await f.z3(["prune"], { KEEP_LAST: "1" }));
      const left = [`z3-backup/${f.dataset}@s3`, `z3-backup/${f.dataset}@s4`];
      assert.deepEqual(await f.keys(), left);
      assert.deepEqual(
        await f.keys("z3-backup.z3/"),
        left.map((k) => k.replace("z3-backup/", "z3-backup.z3/"))
          .flatMap((k) => k.endsWith("@s3") ? [k, `${k}#properties`] : [k]),
        "check records and a full's properties go with their objects",
      );
      const restored = await f.z3(["restore", "s4", "--target", `${f.pool.name}/back`]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back`), await treeDigest(f.dir));
    });
  },
);

integration(
  "prune counts an object whose check record is missing as no restore point (restore refuses it)",
  async (bed) => {
    await withFixture(bed.s3, "bk-prune-norecord", async (f) => {
      for (const snap of ["s1", "s2"]) {
        await writeSome(f.dir, `${snap}.bin`, 1);
        await f.pool.snapshot(DATA, snap);
        ok(await f.z3(["backup"]));
      }
      await f.store.delete(`z3-backup.z3/${f.dataset}@s2`);
      failure(
        await f.z3(["restore", "s2", "--target", `${f.pool.name}/back`, "--dry-run"]),
        6,
        /check record .* is missing/,
      );
      const dry = ok(await f.z3(["prune", "--dry-run", "--keep-last", "1"]));
      assert.deepEqual(dry, [
        "keep\t" + `${f.dataset}@s1\tlast`,
        "keep\t" + `${f.dataset}@s2\tunhealthy chain (left alone)`,
      ]);
    });
  },
);

integration("prune refuses a policy that keeps nothing and deletes nothing", async (bed) => {
  await withFixture(bed.s3, "bk-prune-none", async (f) => {
    await writeSome(f.dir, "a.bin", 1);
    await f.pool.snapshot(DATA, "s1");
    ok(await f.z3(["backup"]));
    const result = await f.z3(["prune"]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /^z3: Cannot prune: the policy keeps nothing/);
    assert.equal((await f.keys()).length, 1);
  });
});

integration("zstd works without the zstd command, and both ways read each other", async (bed) => {
  await withFixture(bed.s3, "bk-zstd-nocli", async (f) => {
    await Deno.writeTextFile(`${f.dir}/text.txt`, "zstd in-process\n".repeat(50_000));
    await f.pool.snapshot(DATA, "s1");
    const want = await treeDigest(f.dir);
    // Two PATHs that hold zfs: one without zstd, one with a zstd that logs each run.
    const bin = await Deno.makeTempDir({ prefix: "z3-path-" });
    const logged = await Deno.makeTempDir({ prefix: "z3-path-zstd-" });
    const zfsPath = (await run(["sh", "-c", "command -v zfs"])).trim();
    const zstdPath = (await run(["sh", "-c", "command -v zstd"])).trim();
    await Deno.symlink(zfsPath, `${bin}/zfs`);
    await Deno.symlink(zfsPath, `${logged}/zfs`);
    await Deno.writeTextFile(
      `${logged}/zstd`,
      `#!/bin/sh\necho "zstd $*" >> '${logged}/log'\nexec '${zstdPath}' "$@"\n`,
      { mode: 0o755 },
    );
    const runs = async () => (await Deno.readTextFile(`${logged}/log`).catch(() => "")).trim();
    try {
      const noCli = { PATH: bin, S3_PREFIX: "nocli/" };
      ok(await f.z3(["backup"], noCli));
      const info = await f.store.head(`nocli/${f.dataset}@s1`);
      assert.equal(info?.metadata.compressor, "zstd");
      // Written in-process, read back by the command; and written by the command, read
      // in-process.
      ok(
        await f.z3(["restore", "s1", "--target", `${f.pool.name}/a`], {
          PATH: logged,
          S3_PREFIX: "nocli/",
        }),
      );
      assert.match(await runs(), /^zstd .*-d/, "the restore ran zstd -d");
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/a`), want);
      await Deno.remove(`${logged}/log`);
      ok(await f.z3(["backup"], { PATH: logged, S3_PREFIX: "cli/" }));
      assert.match(await runs(), /^zstd -1 -T0/, "the backup ran zstd -1 -T0");
      await Deno.remove(`${logged}/log`);
      ok(
        await f.z3(["restore", "s1", "--target", `${f.pool.name}/b`], {
          PATH: bin,
          S3_PREFIX: "cli/",
        }),
      );
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/b`), want);
      assert.equal(await runs(), "", "nothing ran zstd from the logging PATH meanwhile");
    } finally {
      await Deno.remove(bin, { recursive: true });
      await Deno.remove(logged, { recursive: true });
    }
  });
}, { commands: ["zstd"] });

integration(
  "S3_PREFIX without a trailing slash means prefix/, as in the original z3",
  async (bed) => {
    await withFixture(bed.s3, "bk-noslash", async (f) => {
      await writeSome(f.dir, "a.bin", 3);
      await f.pool.snapshot(DATA, "s1");
      ok(await f.z3(["backup"], { S3_PREFIX: "noslash" }));
      assert.deepEqual(await f.keys("noslash/"), [`noslash/${f.dataset}@s1`]);
      const again = await f.z3(["backup"], { S3_PREFIX: "noslash/" });
      assert.match(again.stderr, /up to date/);
      const rows = JSON.parse((await f.z3(["status", "--json"], { S3_PREFIX: "noslash" })).stdout);
      assert.equal(rows[0].type, "full");
    });
  },
);

integration(
  "a base whose check record is missing is checked and recorded before a backup builds on it",
  async (bed) => {
    await withFixture(bed.s3, "bk-norecord", async (f) => {
      await writeSome(f.dir, "a.bin", 4, 12 * 1024 * 1024);
      await f.pool.snapshot(DATA, "s1");
      ok(await f.z3(["backup", "--chunk-size", "5M"]));
      const record = `z3-backup.z3/${f.dataset}@s1`;
      await f.store.delete(record); // as if the run had died right after CompleteMultipartUpload
      await writeSome(f.dir, "b.bin", 5);
      await f.pool.snapshot(DATA, "s2");
      // s1's bytes arrive corrupted (one byte flipped on every GET of it): nothing builds on it.
      const objectPath = `/${f.store.bucket}/z3-backup/`;
      const proxy = faultProxy(bed.s3.S3_ENDPOINT, {
        faults: (r) =>
          r.kind === "GetObject" && r.target.startsWith(objectPath)
            ? { kind: "flipResponse", atByte: 1024 * 1024 }
            : undefined,
      });
      let corrupted: CliResult;
      try {
        corrupted = await f.z3(["backup", "--chunk-size", "5M"], { HOST: proxy.endpoint });
        assert.ok(proxy.injected().length > 0, "s1 was read, and corrupted on the way");
      } finally {
        await proxy.close();
      }
      failure(corrupted, 6, /@s1/);
      assert.deepEqual(await f.keys(), [`z3-backup/${f.dataset}@s1`], "no s2 was uploaded");
      assert.equal(await f.store.head(record), undefined, "no record was written for s1");
      assert.deepEqual(await Array.fromAsync(f.store.listMultipartUploads("")), []);

      const result = await f.z3(["backup", "--chunk-size", "5M"]);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /@s1: its check record is missing .*checking its bytes/);
      assert.ok(await f.store.head(record), "the record was written again");
      const restored = await f.z3(["restore", "s2", "--target", `${f.pool.name}/back`]);
      assert.equal(restored.code, 0, restored.stderr);
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back`), await treeDigest(f.dir));
    });
  },
);
