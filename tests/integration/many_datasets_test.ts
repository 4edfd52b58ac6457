/**
 * Several datasets in one run (#15): `--filesystem` repeated, `FILESYSTEM` comma-separated,
 * `--recursive`; one dataset's failure while the others go on (summary line, exit status);
 * `status --all` from the bucket's listing alone; `check` over several datasets; METRICS_FILE
 * lines of two datasets. Real zfs-fuse pools, the real Ceph gateway.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";

interface Fixture {
  pool: TestPool;
  store: S3Store;
  /** A temporary directory, removed afterwards. */
  tmp: string;
  /** Runs z3 against the test bucket; `env` adds or overrides (FILESYSTEM, …). */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** `pool/relative`, created, with `bytes` of data written into it. */
  dataset(relative: string, bytes?: number): Promise<string>;
  /** Writes a file into `pool/relative` and snapshots it as `snap`. */
  snapshot(relative: string, snap: string, seed: number): Promise<void>;
  /** Every backup object's key, sorted. */
  keys(): Promise<string[]>;
}

async function withFixture(s3: S3Env, label: string, fn: (f: Fixture) => Promise<void>) {
  const pool = await createPool(256);
  const tmp = await Deno.makeTempDir({ prefix: "z3-many-" });
  let store: S3Store | undefined;
  await withCleanup([
    () => store?.close(),
    () => pool.destroy(),
    () => Deno.remove(tmp, { recursive: true }),
  ], async () => {
    store = await freshBucket(s3, label);
    const theStore = store;
    await fn({
      pool,
      store: theStore,
      tmp,
      // No holds, so that a test may destroy what it backed up.
      z3: (args, env = {}) =>
        runZ3(args, { ...childEnv(s3, theStore.bucket), HOLD: "false", ...env }),
      async dataset(relative) {
        await pool.createDataset(relative);
        return `${pool.name}/${relative}`;
      },
      async snapshot(relative, snap, seed) {
        await Deno.writeFile(
          `${pool.mountpoint}/${relative}/${snap}.bin`,
          pseudoRandom(64 * 1024, seed),
        );
        await pool.snapshot(relative, snap);
      },
      async keys() {
        const out: string[] = [];
        for await (const o of theStore.list("z3-backup/")) out.push(o.key);
        return out.sort();
      },
    });
  });
}

/** `zfs destroy -r -f NAME`; zfs-fuse calls a dataset busy for a moment after writes. */
async function destroy(name: string): Promise<void> {
  for (let i = 0;; i++) {
    try {
      await run(["zfs", "destroy", "-r", "-f", name]);
      return;
    } catch (err) {
      if (i >= 40 || !/dataset is busy/.test(String(err))) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** stderr's last line. */
function lastErr(result: CliResult): string {
  return result.stderr.trimEnd().split("\n").at(-1) ?? "";
}

integration(
  "backup --recursive backs up a tree with a nested child in one run, each with its [fs:…] settings",
  async (bed) => {
    await withFixture(bed.s3, "many-tree", async (f) => {
      const top = await f.dataset("top");
      const child = await f.dataset("top/my child");
      const grand = await f.dataset("top/my child/grand");
      const other = await f.dataset("other");
      for (const [i, rel] of ["top", "top/my child", "top/my child/grand", "other"].entries()) {
        await f.snapshot(rel, "s1", i + 1);
      }
      // The nested child's own section: no compression for it alone.
      const conf = `${f.tmp}/z3.conf`;
      await Deno.writeTextFile(conf, `[main]\nCOMPRESSOR=zstd\n[fs:${grand}]\nCOMPRESSOR=none\n`);
      const env = { FILESYSTEM: top, Z3_CONFIG: conf };

      // --dry-run --json over several datasets: one document, a plan per dataset.
      const dry = JSON.parse(
        ok(await f.z3(["backup", "--recursive", "--dry-run", "--json"], env)).join("\n"),
      ) as { dataset: string; dryRun: boolean; plan: string[] }[];
      assert.deepEqual(dry.map((d) => [d.dataset, d.dryRun]), [
        [top, true],
        [child, true],
        [grand, true],
      ]);
      for (const d of dry) assert.ok(d.plan[0].startsWith(`${d.dataset}@s1 (full)`), d.plan[0]);
      assert.deepEqual(await f.keys(), [], "a dry run uploads nothing");

      const backedUp = await f.z3(["backup", "--recursive"], env);
      assert.deepEqual(ok(backedUp).map((l) => l.slice(0, l.indexOf(":"))), [
        `${top}@s1`,
        `${child}@s1`,
        `${grand}@s1`,
      ]);
      assert.deepEqual(lastErr(backedUp), "3 datasets: 3 backed up");
      assert.deepEqual(await f.keys(), [
        `z3-backup/${grand}@s1`,
        `z3-backup/${child}@s1`,
        `z3-backup/${top}@s1`,
      ]);
      const meta = async (name: string) =>
        (await f.store.head(`z3-backup/${name}@s1`))!.metadata["compressor"];
      assert.deepEqual(await meta(top), "zstd");
      assert.deepEqual(await meta(grand), undefined, "[fs:…] COMPRESSOR=none for the child");

      // --filesystem given twice: the child (up to date) and another dataset.
      const twice = await f.z3(
        ["backup", "--filesystem", child, "--filesystem", other],
        { Z3_CONFIG: conf },
      );
      assert.deepEqual(ok(twice).map((l) => l.slice(0, l.indexOf(":"))), [`${other}@s1`]);
      assert.deepEqual(lastErr(twice), "2 datasets: 1 up to date, 1 backed up");

      // --snapshot DATASET@SNAP names one dataset: over several it is refused before any
      // runs; the short name takes that snapshot of each.
      await f.snapshot("other", "s2", 5);
      failure(
        await f.z3([
          "backup",
          "--filesystem",
          child,
          "--filesystem",
          other,
          "--snapshot",
          `${other}@s2`,
        ]),
        2,
        new RegExp(
          `^z3: Cannot back up "${other}@s2" over 2 datasets: name one dataset, or give ` +
            `--snapshot the short name \\("s2"\\) to back up that snapshot of each$`,
        ),
      );
      failure(
        await f.z3(["backup", "--snapshot", `${other}@s2`], { FILESYSTEM: child }),
        2,
        new RegExp(
          `^z3: Cannot back up "${other}@s2": it is not a snapshot of "${child}", the dataset ` +
            `this run backs up$`,
        ),
      );
      assert.ok(!(await f.keys()).includes(`z3-backup/${other}@s2`), "nothing was uploaded");
      const short = await f.z3(["backup", "--snapshot", "s1"], { FILESYSTEM: `${child},${other}` });
      assert.deepEqual(lastErr(short), "2 datasets: 2 up to date");
      ok(await f.z3(["backup", "--snapshot", `${other}@s2`], { FILESYSTEM: other }));
      assert.ok((await f.keys()).includes(`z3-backup/${other}@s2`));

      // verify and status run over the whole tree too (RECURSIVE from the environment).
      const verified = await f.z3(["verify"], { ...env, RECURSIVE: "true" });
      assert.deepEqual(ok(verified).map((l) => l.split("\t").slice(0, 2)), [
        [`${top}@s1`, "ok"],
        [`${child}@s1`, "ok"],
        [`${grand}@s1`, "ok"],
      ]);
      assert.deepEqual(lastErr(verified), "3 datasets: 3 verified");
      // verify DATASET@SNAP needs no FILESYSTEM, as before.
      assert.deepEqual(ok(await f.z3(["verify", `${grand}@s1`])).length, 1);
      const rows = JSON.parse(
        ok(await f.z3(["status", "--json", "--recursive"], env)).join("\n"),
      ) as { dataset: string; name: string }[];
      assert.deepEqual(rows.map((r) => [r.dataset, r.name]), [
        [top, "s1"],
        [child, "s1"],
        [grand, "s1"],
      ]);

      // The nested child's object restores to the bytes it was sent from.
      const target = `${f.pool.name}/restored`;
      ok(await f.z3(["restore", "s1", "--target", target], { FILESYSTEM: grand, Z3_CONFIG: conf }));
      assert.deepEqual(
        await Deno.readFile(`${f.pool.mountpoint}/restored/s1.bin`),
        pseudoRandom(64 * 1024, 3),
      );

      // restore takes one dataset: several, or --recursive, is a usage error.
      failure(
        await f.z3(["restore", "s1"], { FILESYSTEM: `${top},${other}` }),
        2,
        /^z3: Cannot choose one dataset from FILESYSTEM ".*": it names 2; restore and get take one/,
      );
      failure(
        await f.z3(["restore", "s1", "--recursive"], { FILESYSTEM: top }),
        2,
        /^z3: Cannot restore recursively: restore takes one dataset$/,
      );
    });
  },
);

integration(
  "one diverged dataset fails while the others back up: summary line, the first failure's exit",
  async (bed) => {
    await withFixture(bed.s3, "many-diverged", async (f) => {
      const names = ["a", "b", "c", "d"];
      // One at a time: zfs-fuse 0.7 wedges when two `zfs create` mount at once.
      const all: string[] = [];
      for (const n of names) all.push(await f.dataset(n));
      for (const [i, n] of names.entries()) await f.snapshot(n, "s1", i + 1);
      const list = all.join(",");
      assert.deepEqual(
        lastErr(await f.z3(["backup"], { FILESYSTEM: list })),
        "4 datasets: 4 backed up",
      );

      // b is recreated: its s1 is another snapshot now (other GUID).
      await destroy(all[1]);
      await f.dataset("b");
      await f.snapshot("b", "s1", 99);
      for (const [i, n] of names.entries()) await f.snapshot(n, "s2", 10 + i);
      // A dataset that does not exist fails too, after b: b's exit status (5) is the run's.
      const missing = `${f.pool.name}/nope`;
      const result = await f.z3(["backup"], { FILESYSTEM: `${list},${missing}` });
      assert.deepEqual(result.code, 5, result.stderr);
      assert.deepEqual(result.stdout.trimEnd().split("\n").map((l) => l.slice(0, l.indexOf(":"))), [
        `${all[0]}@s2`,
        `${all[2]}@s2`,
        `${all[3]}@s2`,
      ]);
      const errors = result.stderr.split("\n").filter((l) => l.startsWith("z3: "));
      assert.deepEqual(errors.length, 2, result.stderr);
      assert.match(
        errors[0],
        new RegExp(
          `^z3: ${all[1]}: Cannot back up "${
            all[1]
          }@s\\d": the local and bucket histories diverged at "${all[1]}@s1"`,
        ),
      );
      assert.match(errors[1], new RegExp(`^z3: ${missing}: `));
      const summary = `5 datasets: 3 backed up, 2 failed: ${all[1]} (the local and bucket ` +
        `histories diverged at "${all[1]}@s1"), ${missing} (`;
      assert.ok(lastErr(result).startsWith(summary), lastErr(result));
      assert.match(lastErr(result), /\(cannot open '[^']+\/nope': dataset does not exist\)$/);
      for (const n of [all[0], all[2], all[3]]) {
        assert.ok((await f.keys()).includes(`z3-backup/${n}@s2`), `${n}@s2 uploaded`);
      }
      assert.ok(!(await f.keys()).includes(`z3-backup/${all[1]}@s2`), "nothing of b uploaded");
    });
  },
);

integration(
  "each dataset has its own lock: one held by another run fails with 8, the next still backs up",
  async (bed) => {
    await withFixture(bed.s3, "many-lock", async (f) => {
      const l1 = await f.dataset("l1");
      const l2 = await f.dataset("l2");
      await f.snapshot("l1", "s1", 1);
      await f.snapshot("l2", "s1", 2);
      const lockDir = `${f.tmp}/locks`;
      await Deno.mkdir(lockDir);
      // Another run's lock on l1, as lib/zfs/host_lock.ts takes it: flock on the file, its PID inside.
      using held = await Deno.open(`${lockDir}/backup-${encodeURIComponent(l1)}.lock`, {
        create: true,
        write: true,
      });
      await held.lock(true);
      await held.write(new TextEncoder().encode("4242\n"));
      const result = await f.z3(["backup"], { FILESYSTEM: `${l1},${l2}`, Z3_LOCK_DIR: lockDir });
      assert.deepEqual(result.code, 8, result.stderr);
      assert.deepEqual(result.stdout.trimEnd().split("\n").map((l) => l.slice(0, l.indexOf(":"))), [
        `${l2}@s1`,
      ]);
      assert.deepEqual(
        lastErr(result),
        `2 datasets: 1 backed up, 1 failed: ${l1} (another z3 run (pid 4242) is running)`,
      );
      assert.deepEqual(await f.keys(), [`z3-backup/${l2}@s1`]);
      await held.unlock();
    });
  },
);

integration(
  "status --all lists every dataset in the bucket from the listing alone, none of them on this host",
  async (bed) => {
    await withFixture(bed.s3, "many-all", async (f) => {
      const x = await f.dataset("x");
      const y = await f.dataset("x/y");
      // Named against their creation order, so that an order by name shows.
      await f.snapshot("x", "zeta", 1);
      await f.snapshot("x", "alpha", 2);
      await f.snapshot("x/y", "s1", 3);
      await f.snapshot("x/y", "s2", 4);
      ok(await f.z3(["backup", "--recursive"], { FILESYSTEM: x }));
      const created = async (name: string) =>
        Number((await run(["zfs", "get", "-Hp", "-o", "value", "creation", name])).trim());
      const times = new Map<string, number>();
      for (const n of [`${x}@zeta`, `${x}@alpha`, `${y}@s1`, `${y}@s2`]) {
        times.set(n, await created(n));
      }

      // A snapshot gone from the host but kept in the bucket stays in creation order.
      await run(["zfs", "destroy", `${y}@s1`]);
      await f.snapshot("x/y", "s3", 5);
      const table = ok(await f.z3(["status"], { FILESYSTEM: y }));
      const cells = table.map((l) => l.split("|").map((c) => c.trim()));
      assert.deepEqual(cells.map((c) => [c[0], c[4]]), [
        ["NAME", "LOCAL STATE"],
        ["s1", "missing"],
        ["s2", "ok"],
        ["s3", "ok"],
      ]);
      // 64 KiB objects: shown in K, not as 0 M.
      assert.match(cells[1][5], /^\d+(\.\d+)? K$/);

      await destroy(x);
      // FILESYSTEM names nothing of the bucket's: --all takes the datasets from the listing.
      const env = { FILESYSTEM: `${f.pool.name}/elsewhere` };
      const rows = JSON.parse(ok(await f.z3(["status", "--all", "--json"], env)).join("\n")) as {
        dataset: string;
        name: string;
        localState: string;
        health: string;
        created: string;
        uploaded: string;
      }[];
      assert.deepEqual(rows.map((r) => [r.dataset, r.name, r.localState, r.health]), [
        [x, "zeta", "missing", "ok"],
        [x, "alpha", "missing", "ok"],
        [y, "s1", "missing", "ok"],
        [y, "s2", "missing", "ok"],
      ]);
      for (const r of rows) {
        const name = `${r.dataset}@${r.name}`;
        assert.deepEqual(r.created, new Date(times.get(name)! * 1000).toISOString(), name);
        const head = await f.store.head(`z3-backup/${name}`);
        assert.deepEqual(r.uploaded, head!.lastModified!.toISOString(), name);
      }
      const allResult = await f.z3(["status", "--all"], env);
      const all = ok(allResult);
      // The hold line of each dataset names it.
      assert.deepEqual(
        allResult.stderr.split("\n").filter((l) => /: hold: /.test(l)).map((l) =>
          l.slice(0, l.indexOf(": hold: "))
        ),
        [x, y],
      );
      assert.deepEqual(all[0].split("|").map((c) => c.trim()).slice(0, 3), [
        "DATASET",
        "NAME",
        "PARENT",
      ]);
      assert.deepEqual(all.slice(1).map((l) => l.split("|").map((c) => c.trim()).slice(0, 2)), [
        [x, "zeta"],
        [x, "alpha"],
        [y, "s1"],
        [y, "s2"],
      ]);
      const minute = (iso: string) => `${iso.slice(0, 16)}Z`;
      const zeta = all[1].split("|").map((c) => c.trim());
      assert.deepEqual(zeta.slice(7, 9), [minute(rows[0].created), minute(rows[0].uploaded)]);
    });
  },
);

integration(
  "status --all also lists the datasets under an [fs:] section's own S3_PREFIX, and none found where their settings do not look",
  async (bed) => {
    await withFixture(bed.s3, "many-prefix", async (f) => {
      const a = await f.dataset("a");
      const b = await f.dataset("b");
      await f.snapshot("a", "s1", 1);
      await f.snapshot("b", "s1", 2);
      const conf = `${f.tmp}/z3.conf`;
      await Deno.writeTextFile(conf, `[main]\nCOMPRESSOR=none\n[fs:${b}]\nS3_PREFIX=other/\n`);
      ok(await f.z3(["backup"], { FILESYSTEM: `${a},${b}`, Z3_CONFIG: conf }));
      assert.deepEqual(await f.keys(), [`z3-backup/${a}@s1`]);
      assert.ok((await f.store.head(`other/${b}@s1`)) !== undefined, "b went under its prefix");
      // c has no section: its settings look under z3-backup/, so an object of it under other/
      // is not one of its backups as z3 reads them.
      const c = `${f.pool.name}/c`;
      const stray = new Uint8Array(8);
      await f.store.put(`other/${c}@s1`, stray, createHash("md5").update(stray).digest("base64"));
      // FILESYSTEM picks b's section: [main]'s prefix is still searched.
      for (const fs of [b, `${f.pool.name}/elsewhere`]) {
        const result = await f.z3(["status", "--all", "--json"], {
          FILESYSTEM: fs,
          Z3_CONFIG: conf,
        });
        const rows = JSON.parse(ok(result).join("\n")) as {
          dataset: string;
          name: string;
          health: string;
        }[];
        assert.deepEqual(lastErr(result), "2 datasets: 2 listed", `FILESYSTEM=${fs}`);
        assert.deepEqual(rows.map((r) => [r.dataset, r.name, r.health]), [
          [a, "s1", "ok"],
          [b, "s1", "ok"],
        ], `FILESYSTEM=${fs}`);
      }
      for await (const o of f.store.list("other")) await f.store.delete(o.key);
    });
  },
);

integration(
  "check over several datasets: one line each; 0 when all are OK, 9 when any is stale, 5 when any is broken",
  async (bed) => {
    await withFixture(bed.s3, "many-check", async (f) => {
      const p = await f.dataset("p");
      const q = await f.dataset("q");
      await f.snapshot("q", "s1", 1);
      ok(await f.z3(["backup"], { FILESYSTEM: q }));
      await new Promise((r) => setTimeout(r, 4000));
      await f.snapshot("p", "s1", 2);
      ok(await f.z3(["backup"], { FILESYSTEM: p }));
      const env = { FILESYSTEM: `${q},${p}` };
      const states = (result: CliResult, code: number) => {
        assert.deepEqual(result.code, code, result.stderr);
        assert.doesNotMatch(result.stderr, /^z3: /m);
        return result.stdout.trimEnd().split("\n").map((l) => l.split("\t").slice(0, 2));
      };
      assert.deepEqual(states(await f.z3(["check"], env), 0), [["OK", q], ["OK", p]]);
      // q's backup is 4 s older than p's.
      assert.deepEqual(states(await f.z3(["check", "--max-age", "3s"], env), 9), [
        ["STALE", q],
        ["OK", p],
      ]);
      const json = JSON.parse((await f.z3(["check", "--json", "--max-age", "3s"], env)).stdout);
      assert.deepEqual(json.datasets.map((d: { state: string }) => d.state), ["STALE", "OK"]);
      // p's check record gone: BROKEN outranks q's STALE, which comes first.
      await f.store.delete(`z3-backup.z3/${p}@s1`);
      assert.deepEqual(states(await f.z3(["check", "--max-age", "3s"], env), 5), [
        ["STALE", q],
        ["BROKEN", p],
      ]);
    });
  },
);

/** The value of `metric` for `dataset` in a metrics file's text. */
function metric(text: string, name: string, dataset: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{dataset="${dataset}"} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

integration(
  "METRICS_FILE holds both datasets of a run, keeps a third's lines, and is replaced by rename",
  async (bed) => {
    await withFixture(bed.s3, "many-metrics", async (f) => {
      const m1 = await f.dataset("m1");
      const m2 = await f.dataset("m2");
      await f.snapshot("m1", "s1", 1);
      await f.snapshot("m2", "s1", 2);
      const path = `${f.tmp}/z3.prom`;
      await Deno.writeTextFile(path, 'z3_backup_last_run_success{dataset="tank/third"} 1\n');
      const env = { FILESYSTEM: `${m1},${m2}`, METRICS_FILE: path };
      const records = JSON.parse(ok(await f.z3(["backup", "--json"], env)).join("\n")) as {
        snapshot: string;
        bytes: number;
      }[];
      const bytes = (name: string) => records.find((r) => r.snapshot === name)!.bytes;
      const text = await Deno.readTextFile(path);
      for (const d of [m1, m2]) {
        assert.deepEqual(metric(text, "z3_backup_last_run_success", d), 1, text);
        assert.deepEqual(metric(text, "z3_backup_last_bytes", d), bytes(`${d}@s1`));
      }
      assert.deepEqual(metric(text, "z3_backup_last_run_success", "tank/third"), 1);
      const success2 = metric(text, "z3_backup_last_success_timestamp_seconds", m2);

      // m2 fails (gone from the host), m1 sends s2: the file is replaced, not rewritten in place
      // (the old file, held open, still reads whole).
      using old = await Deno.open(path);
      await f.snapshot("m1", "s2", 3);
      await destroy(m2);
      const result = await f.z3(["backup", "--json"], env);
      assert.deepEqual(result.code, 3, result.stderr);
      const [s2] = JSON.parse(result.stdout);
      const next = await Deno.readTextFile(path);
      assert.deepEqual(metric(next, "z3_backup_last_run_success", m1), 1);
      assert.deepEqual(metric(next, "z3_backup_last_bytes", m1), s2.bytes);
      assert.deepEqual(metric(next, "z3_backup_last_run_success", m2), 0);
      assert.deepEqual(metric(next, "z3_backup_last_success_timestamp_seconds", m2), success2);
      assert.deepEqual(metric(next, "z3_backup_last_run_success", "tank/third"), 1);
      assert.deepEqual(await new Response(old.readable).text(), text, "replaced by rename");
      assert.deepEqual(
        (await Array.fromAsync(Deno.readDir(f.tmp))).map((e) => e.name),
        ["z3.prom"],
        "no temporary file left",
      );
    });
  },
);
