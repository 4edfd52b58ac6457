/**
 * Issue #17, end to end on zfs-fuse and Ceph: what a backup plans (the first backup sends the
 * host's whole history; FULL_EVERY drops nothing), what readers trust (metadata rewritten by a
 * server-side copy, which keeps the ETag, is caught by status, verify and restore before zfs
 * runs), how keys from the bucket are printed (a newline or tab in a key makes no row or column
 * of its own), and a check record that cannot be written leaves its verified object in place.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CopyObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { integration } from "../bed/bed.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { faultProxy } from "../bed/fault_proxy.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import { checkKey } from "../../lib/repository/check_records.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "my data";

interface Fixture {
  s3: S3Env;
  pool: TestPool;
  store: S3Store;
  /** `pool/my data`. */
  dataset: string;
  /** Where the dataset is mounted. */
  dir: string;
  /** treeDigest of the dataset at each snapshot taken with {@linkcode snap}. */
  digests: Map<string, Map<string, string>>;
  /** Runs z3 with FILESYSTEM = dataset against the test bucket; `env` adds or overrides. */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** `z3-backup/pool/my data@snap`. */
  key(snap: string): string;
  /** Writes a file of its own and takes snapshot `name`. */
  snap(name: string): Promise<void>;
  /** Every key under `prefix`, sorted. */
  keys(prefix?: string): Promise<string[]>;
}

async function withFixture(
  s3: S3Env,
  label: string,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(256);
  let store: S3Store | undefined;
  try {
    store = await freshBucket(s3, label);
    const theStore = store;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    const digests = new Map<string, Map<string, string>>();
    let seed = 1;
    await fn({
      s3,
      pool,
      store: theStore,
      dataset,
      dir,
      digests,
      z3: (args, env = {}) =>
        runZ3(args, { ...childEnv(s3, theStore.bucket), FILESYSTEM: dataset, ...env }),
      key: (snap) => `z3-backup/${dataset}@${snap}`,
      async snap(name) {
        await Deno.writeFile(`${dir}/file ${name}.bin`, pseudoRandom(24 * 1024, seed++));
        await pool.snapshot(DATA, name);
        digests.set(name, await treeDigest(dir));
      },
      async keys(prefix = "z3-backup/") {
        const out: string[] = [];
        for await (const o of theStore.list(prefix)) out.push(o.key);
        return out.sort();
      },
    });
  } finally {
    store?.close();
    await pool.destroy();
  }
}

/** The content of `dataset@snap`, read through a clone. */
async function digestAt(f: Fixture, dataset: string, snap: string) {
  const clone = `${f.pool.name}/clone ${snap}`;
  await run(["zfs", "clone", `${dataset}@${snap}`, clone]);
  return await treeDigest(`${f.pool.mountpoint}/clone ${snap}`);
}

/** `z3 status --json` as short name → health. */
async function healthOf(f: Fixture): Promise<Record<string, string>> {
  const rows = JSON.parse(ok(await f.z3(["status", "--json"])).join("\n")) as {
    name: string;
    health: string;
  }[];
  return Object.fromEntries(rows.map((r) => [r.name, r.health]));
}

/** Strips the byte and part counts from `z3 backup` result lines. */
function planned(lines: string[]): string[] {
  return lines.map((l) => l.replace(/, \d+ bytes in \d+ part\(s\).*$/, ""));
}

integration("the first backup sends every local snapshot, and each one restores", async (bed) => {
  await withFixture(bed.s3, "ci-first", async (f) => {
    const snaps = ["s1", "s2", "s3", "s4"];
    for (const s of snaps) await f.snap(s);
    const lines = ok(await f.z3(["backup"]));
    assert.deepEqual(planned(lines), [
      `${f.dataset}@s1: full`,
      `${f.dataset}@s2: incremental from ${f.dataset}@s1`,
      `${f.dataset}@s3: incremental from ${f.dataset}@s2`,
      `${f.dataset}@s4: incremental from ${f.dataset}@s3`,
    ]);
    assert.deepEqual(await f.keys(), snaps.map(f.key));
    assert.deepEqual(await healthOf(f), { s1: "ok", s2: "ok", s3: "ok", s4: "ok" });

    const target = `${f.pool.name}/back`;
    const received = ok(await f.z3(["restore", "s4", "--target", target]));
    assert.deepEqual(received, snaps.map((s) => `received ${target}@${s}`));
    const source = await zfs.listSnapshots(f.dataset);
    const restored = await zfs.listSnapshots(target);
    assert.deepEqual(restored.map((s) => s.guid), source.map((s) => s.guid), "every snapshot");
    for (const s of snaps) assert.deepEqual(await digestAt(f, target, s), f.digests.get(s), s);
  });
});

integration("FULL_EVERY=2 with five pending snapshots uploads every one of them", async (bed) => {
  await withFixture(bed.s3, "ci-fullevery", async (f) => {
    await f.snap("s1");
    ok(await f.z3(["backup"]));
    const pending = ["s2", "s3", "s4", "s5", "s6"];
    for (const s of pending) await f.snap(s);
    const lines = ok(await f.z3(["backup"], { FULL_EVERY: "2" }));
    assert.deepEqual(planned(lines), [
      `${f.dataset}@s2: incremental from ${f.dataset}@s1`,
      `${f.dataset}@s3: incremental from ${f.dataset}@s2`,
      `${f.dataset}@s4: full`,
      `${f.dataset}@s5: incremental from ${f.dataset}@s4`,
      `${f.dataset}@s6: incremental from ${f.dataset}@s5`,
    ]);
    assert.deepEqual(await f.keys(), ["s1", ...pending].map(f.key));
    const health = await healthOf(f);
    assert.ok(Object.values(health).every((h) => h === "ok"), JSON.stringify(health));
    for (const s of ["s3", "s6"]) {
      const target = `${f.pool.name}/back ${s}`;
      ok(await f.z3(["restore", s, "--target", target]));
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back ${s}`), f.digests.get(s), s);
    }
  });
});

/** A client of its own for what z3 never does: a server-side copy that replaces metadata. */
function rawClient(s3: S3Env): S3Client {
  return new S3Client({
    endpoint: s3.S3_ENDPOINT,
    region: s3.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.S3_KEY_ID, secretAccessKey: s3.S3_SECRET },
  });
}

/** Rewrites `key`'s metadata in place by CopyObject (MetadataDirective REPLACE): same bytes. */
async function rewriteMetadata(
  client: S3Client,
  bucket: string,
  key: string,
  metadata: Record<string, string>,
): Promise<void> {
  await client.send(
    new CopyObjectCommand({
      Bucket: bucket,
      Key: key,
      CopySource: `${bucket}/${key.split("/").map(encodeURIComponent).join("/")}`,
      MetadataDirective: "REPLACE",
      Metadata: metadata,
    }),
  );
}

/** A `zfs` wrapper that logs the subcommand of every call to `log`, then runs the real zfs. */
async function loggingZfs(dir: string): Promise<{ command: string; calls: () => string[] }> {
  const realZfs = (await run(["sh", "-c", "command -v zfs"])).trim();
  const log = `${dir}/calls.log`;
  const command = `${dir}/zfs`;
  await Deno.writeTextFile(
    command,
    `#!/bin/sh\nprintf '%s\\n' "$1" >> '${log}'\nexec '${realZfs}' "$@"\n`,
  );
  await Deno.chmod(command, 0o755);
  return {
    command,
    calls: () => {
      try {
        return Deno.readTextFileSync(log).trimEnd().split("\n");
      } catch {
        return [];
      }
    },
  };
}

integration(
  "metadata rewritten by server-side copy is caught by status, verify and restore before zfs runs",
  async (bed) => {
    await withFixture(bed.s3, "ci-rewrite", async (f) => {
      for (const s of ["s1", "s2", "s3", "s4"]) await f.snap(s);
      ok(await f.z3(["backup"]));
      const client = rawClient(f.s3);
      const tmp = await Deno.makeTempDir({ prefix: "z3-rewrite-" });
      try {
        const key = f.key("s3");
        const original = (await f.store.head(key))!;
        const etag = original.etag;
        const s1 = (await f.store.head(f.key("s1")))!.metadata["z3-guid"];
        const rewrites: {
          name: string;
          metadata: Record<string, string>;
          /** Health status shows for s3. */
          health: string;
          /** Health status shows for s4, above it. @default {"parent broken"} */
          above?: string;
        }[] = [
          {
            name: "isfull=true on an incremental",
            metadata: { ...original.metadata, isfull: "true" },
            health: "record mismatch",
          },
          {
            name: "parent pointed at the grandparent, parent GUID kept",
            metadata: { ...original.metadata, parent: `${f.dataset}@s1` },
            // Status reads the record first; verify and restore also find the GUID link broken.
            health: "record mismatch",
          },
          {
            name: "parent and parent GUID pointed at the grandparent",
            metadata: {
              ...original.metadata,
              parent: `${f.dataset}@s1`,
              "z3-parent-guid": s1,
            },
            health: "record mismatch",
          },
          {
            name: "another z3-guid",
            metadata: { ...original.metadata, "z3-guid": "12345" },
            health: "record mismatch",
            // s4 was sent from the s3 whose GUID is recorded, not from "12345".
            above: "guid mismatch",
          },
        ];
        for (const rewrite of rewrites) {
          await rewriteMetadata(client, f.store.bucket, key, rewrite.metadata);
          const now = await f.store.head(key);
          assert.equal(now?.etag, etag, `${rewrite.name}: the copy keeps the ETag`);

          assert.deepEqual(
            await healthOf(f),
            { s1: "ok", s2: "ok", s3: rewrite.health, s4: rewrite.above ?? "parent broken" },
            `status: ${rewrite.name}`,
          );

          const verified = await f.z3(["verify", "--json"]);
          assert.notEqual(verified.code, 0, `verify: ${rewrite.name}`);
          const states = Object.fromEntries(
            (JSON.parse(verified.stdout) as { snapshot: string; state: string }[])
              .map((r) => [r.snapshot.replace(/.*@/, ""), r.state]),
          );
          assert.equal(states.s1, "ok", rewrite.name);
          assert.equal(states.s2, "ok", rewrite.name);
          assert.ok(["corrupt", "missing"].includes(states.s3), `${rewrite.name}: ${states.s3}`);
          assert.equal(states.s4, "missing", `${rewrite.name}: s4 cannot be restored`);

          const zfsLog = await loggingZfs(tmp);
          const target = `${f.pool.name}/restored`;
          const restored = await f.z3(["restore", "s4", "--target", target], {
            Z3_ZFS_COMMAND: zfsLog.command,
          });
          failure(restored, [5, 6], /@s3"/);
          assert.ok(!zfsLog.calls().includes("receive"), `${rewrite.name}: no zfs receive ran`);
          assert.equal(await zfs.datasetExists(target), false, rewrite.name);
          await Deno.remove(`${tmp}/calls.log`).catch(() => {});

          await rewriteMetadata(client, f.store.bucket, key, original.metadata);
        }
        // Put back, everything is sound again: the checks above caught the rewrites, not noise.
        assert.deepEqual(await healthOf(f), { s1: "ok", s2: "ok", s3: "ok", s4: "ok" });

        // A backup checks the object it builds on the same way.
        const base = (await f.store.head(f.key("s4")))!;
        await rewriteMetadata(client, f.store.bucket, f.key("s4"), {
          ...base.metadata,
          isfull: "true",
        });
        await f.snap("s5");
        const refused = await f.z3(["backup"]);
        failure(refused, 6, /@s4": its metadata disagrees with its check record/);
        assert.equal(await f.store.head(f.key("s5")), undefined, "nothing built on it");
      } finally {
        client.destroy();
        await Deno.remove(tmp, { recursive: true });
      }
    });
  },
);

function md5(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("base64");
}

integration(
  "keys holding a newline, a tab or .. print as escaped names of invalid snapshots",
  async (bed) => {
    await withFixture(bed.s3, "ci-hostile", async (f) => {
      await f.snap("s1");
      ok(await f.z3(["backup"]));
      const hostile = ["evil\nfake | row | full | ok | ok | 1 M", "tab\tfake\tfull", ".."];
      const body = new TextEncoder().encode("not a zfs stream");
      for (const name of hostile) {
        await f.store.put(`z3-backup/${f.dataset}@${name}`, body, md5(body), {
          metadata: { isfull: "true" },
        });
      }
      const escaped = ["evil\\nfake | row | full | ok | ok | 1 M", "tab\\tfake\\tfull", ".."];

      const table = ok(await f.z3(["status"]));
      assert.equal(table.length, 1 + 1 + hostile.length, table.join("\n"));
      for (const name of escaped) {
        const row = table.find((l) => l.startsWith(name));
        assert.ok(row, `a row for ${name}: ${table.join("\n")}`);
        assert.match(row, /\| invalid name \|/);
      }

      const parseable = ok(await f.z3(["status", "--parseable"]));
      assert.equal(parseable.length, 1 + hostile.length);
      for (const line of parseable) assert.equal(line.split("\t").length, 6, line);
      assert.deepEqual(
        parseable.map((l) => l.split("\t")[0]).sort(),
        ["s1", ...escaped].sort(),
      );
      assert.ok(
        parseable.filter((l) => l.split("\t")[0] !== "s1").every((l) =>
          l.split("\t")[3] === "invalid name"
        ),
      );

      const rows = JSON.parse((await f.z3(["status", "--json"])).stdout) as {
        name: string;
        health: string;
      }[];
      assert.deepEqual(
        rows.map((r) => [r.name, r.health]).sort(),
        [["s1", "ok"], ...hostile.map((n) => [n, "invalid name"])].sort(),
      );

      const pruned = ok(await f.z3(["prune", "--dry-run", "--keep-last", "1"]));
      assert.equal(pruned.length, 1 + hostile.length);
      for (const line of pruned) assert.equal(line.split("\t").length, 3, line);
      assert.ok(pruned.includes(
        `keep\t${f.dataset}@evil\\nfake | row | full | ok | ok | 1 M\t` +
          "unhealthy chain (left alone)",
      ));

      const verified = await f.z3(["verify"]);
      const lines = verified.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 1 + hostile.length, verified.stdout);
      for (const line of lines) assert.equal(line.split("\t").length, 3, line);

      const uploadId = await f.store.createMultipart(`z3-backup/${f.dataset}@${hostile[1]}`);
      try {
        const cleanup = ok(await f.z3(["cleanup", "--dry-run", "--max-age", "0"]));
        assert.equal(cleanup.length, 1);
        assert.equal(cleanup[0].split("\t").length, 3, cleanup[0]);
        assert.ok(cleanup[0].startsWith(`z3-backup/${f.dataset}@${escaped[1]}\t`), cleanup[0]);
      } finally {
        await f.store.abortMultipart(`z3-backup/${f.dataset}@${hostile[1]}`, uploadId);
      }
    });
  },
);

integration(
  "a check record that cannot be written leaves its verified object for verify --repair",
  async (bed) => {
    await withFixture(bed.s3, "ci-record", async (f) => {
      await f.snap("s1");
      const proxy = faultProxy(f.s3.S3_ENDPOINT, {
        faults: (req) =>
          req.kind === "PutObject" && req.target.includes(".z3/")
            ? { kind: "error", status: 500, code: "InternalError", message: "injected" }
            : undefined,
      });
      let result: CliResult;
      try {
        result = await f.z3(["backup"], { HOST: proxy.endpoint, MAX_RETRIES: "2" });
        assert.ok(proxy.count("PutObject") >= 3, "the record write was retried");
        assert.deepEqual(proxy.errors, []);
      } finally {
        await proxy.close();
      }
      const line = failure(result, 4, /Cannot write the check record of ".*@s1"/);
      assert.match(line, /stays in the bucket/);
      assert.match(line, /z3 verify --repair/);
      assert.ok(await f.store.head(f.key("s1")), "the verified object is still there");
      const record = checkKey("z3-backup/", `${f.dataset}@s1`);
      assert.equal(await f.store.head(record), undefined, "no record");
      assert.deepEqual(await healthOf(f), { s1: "record missing" });

      const repaired = ok(await f.z3(["verify", "--repair"]));
      assert.match(repaired[0], /\trepaired\t/);
      assert.ok(await f.store.head(record), "the record is written");
      const target = `${f.pool.name}/back`;
      ok(await f.z3(["restore", "s1", "--target", target]));
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back`), f.digests.get("s1"));
    });
  },
);

integration(
  "a check record that is not what z3 writes shows in status, and restore refuses its object",
  async (bed) => {
    await withFixture(bed.s3, "ci-junk-record", async (f) => {
      await f.snap("s1");
      await f.snap("s2");
      ok(await f.z3(["backup"]));
      const junk = new TextEncoder().encode('{"etag": 42}\n');
      await f.store.put(checkKey("z3-backup/", `${f.dataset}@s1`), junk, md5(junk));
      assert.deepEqual(await healthOf(f), { s1: "record mismatch", s2: "parent broken" });
      const rows = JSON.parse(ok(await f.z3(["status", "--json"])).join("\n")) as {
        name: string;
        why?: string;
      }[];
      assert.match(
        rows[0].why ?? "",
        /record mismatch: .*@s1": Cannot read check record .* is not what z3 writes/,
      );
      const target = `${f.pool.name}/back`;
      failure(await f.z3(["restore", "s2", "--target", target]), 6, /is not what z3 writes/);
      assert.equal(await zfs.datasetExists(target), false);
    });
  },
);

integration(
  "status does not read a check record larger than any z3 writes",
  async (bed) => {
    // No pool: status of a dataset that does not exist locally lists the bucket only.
    const store = await freshBucket(bed.s3, "ci-big-record");
    try {
      const dataset = "nopool-z3-test/data";
      const body = new TextEncoder().encode("stream bytes");
      const etag = await store.put(`z3-backup/${dataset}@a`, body, md5(body), {
        metadata: { isfull: "true", "z3-guid": "7", "z3-version": "1" },
      });
      const record = JSON.stringify({ etag, size: body.length, guid: "7", full: true });
      const status = async () => {
        const result = await runZ3(["status", "--json"], {
          ...childEnv(bed.s3, store.bucket),
          FILESYSTEM: dataset,
        });
        return (JSON.parse(ok(result).join("\n")) as { health: string; why?: string }[])[0];
      };
      const put = async (text: string) => {
        const bytes = new TextEncoder().encode(text);
        await store.put(checkKey("z3-backup/", `${dataset}@a`), bytes, md5(bytes));
      };
      await put(record);
      assert.equal((await status()).health, "ok", "the record as z3 writes it");
      // The same record padded to 2 MiB (still valid JSON) is refused unread.
      await put(" ".repeat(2 * 1024 * 1024) + record);
      const row = await status();
      assert.equal(row.health, "record mismatch");
      assert.match(row.why ?? "", /not what z3 writes \(\d+ bytes\)/);
      for await (const o of store.list("")) await store.delete(o.key);
    } finally {
      store.close();
    }
  },
);
