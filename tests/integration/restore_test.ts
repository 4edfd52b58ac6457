import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliOptions, type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { checkKey } from "../../lib/repository/check_records.ts";
import { datasetExists } from "../../lib/zfs/zfs.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, loggingZfs, type TestPool } from "../bed/zfs_bed.ts";
import { faultProxy } from "../bed/fault_proxy.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

const MiB = 1024 * 1024;
/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "my data";
const SNAPS = ["s1", "s2", "s3", "s4"];

/** One test's pool, bucket and a dataset with snapshots s1..s4. */
interface Fixture {
  pool: TestPool;
  store: S3Store;
  /** `pool/my data`. */
  dataset: string;
  /** treeDigest of the dataset at each snapshot, by short name. */
  digests: Map<string, Map<string, string>>;
  /** Runs z3 with FILESYSTEM = dataset against the test bucket; `env` adds or overrides. */
  z3(
    args: string[],
    env?: Record<string, string | undefined>,
    options?: CliOptions,
  ): Promise<CliResult>;
  /** `z3-backup/pool/my data@snap`. */
  key(snap: string): string;
  /** The test server. */
  s3: S3Env;
}

/**
 * Makes a pool with `pool/my data` holding snapshots s1..s4 (each changes files, s2 adds an empty
 * directory, a symlink and a mode; `bigFull` puts 11 MiB of noise in s1 so that its object takes
 * three 5 MiB parts), then runs `fn`.
 */
async function withHistory(
  s3: S3Env,
  label: string,
  options: { bigFull?: boolean },
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
    const digests = new Map<string, Map<string, string>>();
    for (const [i, snap] of SNAPS.entries()) {
      const size = i === 0 && options.bigFull ? 11 * MiB : 48 * 1024;
      await Deno.writeFile(`${dir}/file ${i + 1}.bin`, pseudoRandom(size, i + 1));
      if (i === 1) {
        // What a restore can lose besides bytes: an empty directory, a symlink, a mode.
        await Deno.mkdir(`${dir}/empty dir`);
        await Deno.symlink("file 1.bin", `${dir}/link to 1`);
        await Deno.chmod(`${dir}/file 2.bin`, 0o640);
      }
      if (i === 2) await Deno.remove(`${dir}/file 2.bin`);
      if (i === 3) await Deno.writeTextFile(`${dir}/file 1.bin`, "rewritten in s4\n");
      await pool.snapshot(DATA, snap);
      digests.set(snap, await treeDigest(dir));
    }
    const theStore = store;
    await fn({
      pool,
      store: theStore,
      dataset,
      digests,
      z3: (args, env = {}, options = {}) =>
        runZ3(args, { ...childEnv(s3, bucket), FILESYSTEM: dataset, ...env }, options),
      key: (snap) => `z3-backup/${dataset}@${snap}`,
      s3,
    });
  });
}

/** Backs up s1 as a full, then s2..s4 as incrementals, in 5 MiB parts. */
async function backupAll(f: Fixture): Promise<void> {
  ok(await f.z3(["backup", "--snapshot", "s1", "--chunk-size", "5M"]));
  ok(await f.z3(["backup", "--chunk-size", "5M"]));
  const keys: string[] = [];
  for await (const o of f.store.list("z3-backup/")) keys.push(o.key);
  assert.deepEqual(keys.sort(), SNAPS.map(f.key));
}

/** Short names of the snapshots of `dataset`, or undefined when it does not exist. */
async function snapshotsOf(dataset: string): Promise<string[] | undefined> {
  if (!(await zfs.datasetExists(dataset))) return undefined;
  try {
    return (await zfs.listSnapshots(dataset)).map((s) => s.snapshot);
  } catch (err) {
    if (!(await zfs.datasetExists(dataset))) return undefined; // vanished in between
    throw err;
  }
}

/**
 * Snapshots of `dataset` after a failed receive. zfs-fuse's daemon cleans up a killed
 * `zfs receive` after the client has exited, so give it a moment to settle first.
 */
async function snapshotsAfterFailure(dataset: string): Promise<string[]> {
  for (let i = 0; i < 10 && (await zfs.datasetExists(dataset)); i++) {
    await new Promise((r) => setTimeout(r, 200));
  }
  return (await snapshotsOf(dataset)) ?? [];
}

/** treeDigest of `dataset@snap` through a clone (zfs-fuse has no `.zfs/snapshot`). */
async function digestAt(pool: TestPool, dataset: string, snap: string, clone: string) {
  await run(["zfs", "clone", `${dataset}@${snap}`, `${pool.name}/${clone}`]);
  return await treeDigest(`${pool.mountpoint}/${clone}`);
}

async function bytesOf(store: S3Store, key: string): Promise<Uint8Array> {
  return await new Response(await store.get(key)).bytes();
}

function md5Base64(bytes: Uint8Array): string {
  return createHash("md5").update(bytes).digest("base64");
}

async function zfsSend(...args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command("zfs", { args: ["send", ...args], stdout: "piped" }).output();
  assert.ok(out.success, `zfs send ${args.join(" ")}`);
  return out.stdout;
}

/** What a run did on the wire and with ZFS; see {@linkcode watched}. */
interface Seen {
  /** GetObject requests of backup objects (check records not included), by target. */
  downloads: string[];
  /** `zfs receive` runs, by their arguments. */
  receives: string[];
}

/**
 * Runs `fn` with HOST through a logging proxy and Z3_ZFS_COMMAND a logging zfs, hands `check`
 * what they saw, and returns `fn`'s result.
 */
async function watched(
  f: Fixture,
  fn: (env: Record<string, string>) => Promise<CliResult>,
  check: (seen: Seen) => void,
): Promise<CliResult> {
  const proxy = faultProxy(f.s3.S3_ENDPOINT);
  const zfsLog = await loggingZfs();
  let result: CliResult;
  try {
    result = await fn({ HOST: proxy.endpoint, Z3_ZFS_COMMAND: zfsLog.path });
    const objectPath = `/${f.store.bucket}/z3-backup/`;
    check({
      downloads: proxy.log.filter((e) => e.kind === "GetObject" && e.target.startsWith(objectPath))
        .map((e) => e.target),
      receives: (await zfsLog.lines()).filter((l) => l.startsWith("receive")),
    });
  } finally {
    await proxy.close();
    await zfsLog.remove();
  }
  return result;
}

integration("z3 restore brings back every snapshot of a full + incrementals", async (bed) => {
  await withHistory(bed.s3, "rs-all", {}, async (f) => {
    await backupAll(f);
    const target = `${f.pool.name}/back again`;
    const result = await f.z3(["restore", "s4", "--target", target]);
    assert.deepEqual(ok(result), SNAPS.map((s) => `received ${target}@${s}`));
    assert.deepEqual(await snapshotsOf(target), SNAPS);
    const source = await zfs.listSnapshots(f.dataset);
    const restored = await zfs.listSnapshots(target);
    assert.deepEqual(restored.map((s) => s.guid), source.map((s) => s.guid), "GUIDs kept");
    assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back again`), f.digests.get("s4"));
    for (const snap of ["s1", "s2", "s3"]) {
      assert.deepEqual(
        await digestAt(f.pool, target, snap, `clone ${snap}`),
        f.digests.get(snap),
        snap,
      );
    }
  });
});

integration("z3 restore to an intermediate snapshot", async (bed) => {
  await withHistory(bed.s3, "rs-mid", {}, async (f) => {
    await backupAll(f);
    const target = `${f.pool.name}/mid`;
    const lines = ok(await f.z3(["restore", "s2", "--target", target]));
    assert.deepEqual(lines, [`received ${target}@s1`, `received ${target}@s2`]);
    assert.deepEqual(await snapshotsOf(target), ["s1", "s2"]);
    assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/mid`), f.digests.get("s2"));
  });
});

integration(
  "z3 restore where the target already has older snapshots only downloads the rest",
  async (bed) => {
    await withHistory(bed.s3, "rs-rest", {}, async (f) => {
      await backupAll(f);
      const target = `${f.pool.name}/rest`;
      ok(await f.z3(["restore", "s2", "--target", target]));
      const second = await f.z3(["restore", "s4", "--target", target]);
      assert.deepEqual(ok(second), [`received ${target}@s3`, `received ${target}@s4`]);
      const receiving = second.stderr.split("\n").filter((l) => l.includes("receiving into"));
      assert.deepEqual(receiving, [
        `${f.dataset}@s3: receiving into ${target}`,
        `${f.dataset}@s4: receiving into ${target}`,
      ]);
      assert.deepEqual(await snapshotsOf(target), SNAPS);
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/rest`), f.digests.get("s4"));
      const again = await f.z3(["restore", "s4", "--target", target]);
      assert.deepEqual(ok(again), [], "nothing left to restore");
      assert.match(again.stderr, /nothing to restore/);
    });
  },
);

integration("a missing parent is refused before any download", async (bed) => {
  await withHistory(bed.s3, "rs-gap", {}, async (f) => {
    await backupAll(f);
    await f.store.delete(f.key("s2"));
    const target = `${f.pool.name}/gap`;
    // s3's parent is missing, so s4's health is "parent broken"; the message names the gap.
    const result = await watched(
      f,
      (env) => f.z3(["restore", "s4", "--target", target], env),
      (seen) => {
        assert.deepEqual(seen.downloads, [], "no object was downloaded");
        assert.deepEqual(seen.receives, [], "zfs receive never ran");
      },
    );
    failure(
      result,
      5,
      new RegExp(`broken \\((missing parent|parent broken): .*"${f.dataset}@s2", which is not`),
    );
    assert.deepEqual(await snapshotsOf(target), undefined, "the target was not created");
  });
});

integration("z3 get writes an object's verified bytes to stdout", async (bed) => {
  await withHistory(bed.s3, "rs-get", { bigFull: true }, async (f) => {
    await backupAll(f);
    const info = await f.store.head(f.key("s1"));
    assert.match(info?.etag ?? "", /-3$/, "s1 is a three-part object");
    const tmp = await Deno.makeTempDir({ prefix: "z3-get-" });
    try {
      for (const [name, arg] of [["by key", f.key("s1")], ["by name", `${f.dataset}@s1`]]) {
        const out = `${tmp}/${name}`;
        const result = await f.z3(["get", arg], {}, { redirect: `> '${out}'` });
        assert.deepEqual(result.code, 0, `${name}: ${result.stderr}`);
        assert.deepEqual(result.stderr, "", `${name}: nothing on stderr`);
        const got = await Deno.readFile(out);
        assert.ok(
          Buffer.from(got).equals(await bytesOf(f.store, f.key("s1"))),
          `${name}: the same bytes as the object`,
        );
      }
      // One byte flipped in transit: exit 6, and stdout never got the whole (bad) object.
      const objectPath = `/${f.store.bucket}/z3-backup/`;
      const proxy = faultProxy(bed.s3.S3_ENDPOINT, {
        faults: (r) =>
          r.kind === "GetObject" && r.target.startsWith(objectPath)
            ? { kind: "flipResponse", atByte: 3 * MiB }
            : undefined,
      });
      const out = `${tmp}/corrupted`;
      let result: CliResult;
      try {
        result = await f.z3(["get", f.key("s1")], { HOST: proxy.endpoint }, {
          redirect: `> '${out}'`,
        });
        assert.ok(proxy.injected().length > 0, "the proxy corrupted the download");
      } finally {
        await proxy.close();
      }
      // Checked part by part against the record (each part fetched again first), or whole.
      failure(
        result,
        6,
        /^z3: Cannot verify ".*@s1": (its bytes hash to ETag|part \d+ hashes to MD5 \w+ on each of \d+ downloads)/,
      );
      const got = await Deno.readFile(out);
      assert.ok(got.length < info!.size, `held back the end: ${got.length} of ${info!.size}`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
});

integration("a truncated object is detected before zfs receive runs", async (bed) => {
  await withHistory(bed.s3, "rs-trunc", { bigFull: true }, async (f) => {
    await backupAll(f);
    // The object is replaced by its first half under the same metadata (part schedule included).
    // Its new ETag and size match the half; only the check record written by backup tells.
    const info = (await f.store.head(f.key("s1")))!;
    const whole = await bytesOf(f.store, f.key("s1"));
    const half = whole.slice(0, Math.floor(whole.length / 2));
    await f.store.put(f.key("s1"), half, md5Base64(half), { metadata: info.metadata });
    const target = `${f.pool.name}/trunc`;
    const result = await watched(
      f,
      (env) => f.z3(["restore", "s1", "--target", target], env),
      (seen) => {
        assert.deepEqual(seen.downloads, [], "no object was downloaded");
        assert.deepEqual(seen.receives, [], "zfs receive never ran");
      },
    );
    failure(result, 6, /^z3: Cannot trust ".*@s1": it changed in the bucket after the backup/);
    assert.equal(await datasetExists(target), false, "no dataset was created");
  });
});

integration(
  "an object whose bytes changed in the bucket is refused before any receive",
  async (bed) => {
    await withHistory(bed.s3, "rs-changed", {}, async (f) => {
      await backupAll(f);
      // s3 (in the middle of the chain) is rewritten with one byte changed and its metadata kept.
      const info = (await f.store.head(f.key("s3")))!;
      const bytes = await bytesOf(f.store, f.key("s3"));
      bytes[Math.floor(bytes.length / 2)] ^= 0x01;
      await f.store.put(f.key("s3"), bytes, md5Base64(bytes), { metadata: info.metadata });
      const target = `${f.pool.name}/changed`;
      const result = await f.z3(["restore", "s4", "--target", target]);
      failure(result, 6, /^z3: Cannot trust ".*@s3": it changed in the bucket after the backup/);
      assert.equal(await datasetExists(target), false, "nothing was received, not even s1 and s2");
    });
  },
);

integration(
  "restore --dry-run makes the real run's checks and exits as it would: a target with newer snapshots, a changed parent",
  async (bed) => {
    await withHistory(bed.s3, "rs-dry-checks", {}, async (f) => {
      await backupAll(f);
      const target = `${f.pool.name}/dry`;
      ok(await f.z3(["restore", "s2", "--target", target]));
      await run(["zfs", "snapshot", `${target}@local-only`]);
      // The target has a snapshot newer than s2, the restore's base: zfs receive would refuse.
      for (const dry of [["--dry-run"], []]) {
        const result = await f.z3(["restore", "s4", "--target", target, ...dry]);
        failure(result, 5, /it has 1 snapshot\(s\) newer than "s2".*"local-only".*--force/);
        assert.deepEqual(result.stdout, "", `${dry}: no plan printed`);
      }
      assert.deepEqual(await snapshotsOf(target), ["s1", "s2", "local-only"], "nothing received");
      ok(await f.z3(["restore", "s4", "--target", target, "--force", "--dry-run"]));

      // s3 is rewritten in the bucket with its metadata kept: its check record no longer agrees.
      const info = (await f.store.head(f.key("s3")))!;
      const bytes = await bytesOf(f.store, f.key("s3"));
      bytes[Math.floor(bytes.length / 2)] ^= 0x01;
      await f.store.put(f.key("s3"), bytes, md5Base64(bytes), { metadata: info.metadata });
      const fresh = `${f.pool.name}/dry fresh`;
      for (const dry of [["--dry-run"], []]) {
        const result = await f.z3(["restore", "s4", "--target", fresh, ...dry]);
        failure(result, 6, /^z3: Cannot trust ".*@s3": it changed in the bucket after the backup/);
      }
      assert.equal(await datasetExists(fresh), false, "nothing was received");
    });
  },
);

integration("an object of z3 whose check record is gone is refused", async (bed) => {
  await withHistory(bed.s3, "rs-norecord", {}, async (f) => {
    await backupAll(f);
    await f.store.delete(checkKey("z3-backup/", `${f.dataset}@s1`));
    const target = `${f.pool.name}/norecord`;
    const result = await f.z3(["restore", "s1", "--target", target]);
    failure(result, 6, /check record .* is missing/);
    assert.equal(await datasetExists(target), false);
  });
});

/**
 * A TCP proxy in front of the S3 server that, `at` bytes into the first response stream that
 * gets that far, either flips one byte (corruption in transit the server cannot see, with the
 * HTTP framing, and so the SDK, none the wiser) or cuts the connection (a truncated download).
 * Signatures still match: the Host header is the proxy's, as the client signed it.
 */
function corruptingProxy(endpoint: string, at: number, mode: "flip" | "cut" | "cut then gone") {
  const upstream = new URL(endpoint);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let flipped = false;
  const accepting = (async () => {
    for await (const client of listener) {
      if (mode === "cut then gone" && flipped) {
        client.close(); // the endpoint went away for good
        continue;
      }
      const server = await Deno.connect({
        hostname: upstream.hostname,
        port: Number(upstream.port),
      });
      conns.add(client).add(server);
      let seen = 0;
      const flip = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          if (!flipped && seen + chunk.length > at) {
            flipped = true;
            if (mode !== "flip") {
              controller.enqueue(chunk.subarray(0, at - seen));
              controller.terminate();
              server.close();
              if (mode === "cut then gone") {
                for (const c of conns) {
                  try {
                    c.close(); // kept-alive connections go too
                  } catch { /* already closed */ }
                }
              }
              return;
            }
            chunk = chunk.slice();
            chunk[at - seen] ^= 0xff;
          }
          seen += chunk.length;
          controller.enqueue(chunk);
        },
      });
      client.readable.pipeTo(server.writable).catch(() => {});
      server.readable.pipeThrough(flip).pipeTo(client.writable).catch(() => {});
    }
  })().catch(() => {});
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    flipped: () => flipped,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed by its pipe */ }
      }
      await accepting;
    },
  };
}

integration(
  "a byte flipped in transit fails verification and no snapshot is created",
  async (bed) => {
    await withHistory(bed.s3, "rs-flip", { bigFull: true }, async (f) => {
      await backupAll(f);
      // 3 MiB in: inside one part's range (ranges never cross 5 MiB parts). With no retries
      // the part is not fetched again, so the restore fails.
      const proxy = corruptingProxy(bed.s3.S3_ENDPOINT, 3 * MiB, "flip");
      try {
        const target = `${f.pool.name}/flip`;
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          MAX_RETRIES: "0",
        });
        assert.ok(proxy.flipped(), "the proxy corrupted the download");
        failure(result, 6, /^z3: Cannot verify ".*@s1": part \d hashes to MD5 /);
        assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was created");
      } finally {
        await proxy.close();
      }
    });
  },
);

integration("objects shaped like the original z3's restore", async (bed) => {
  await withHistory(bed.s3, "rs-legacy", { bigFull: true }, async (f) => {
    // The original z3 (pput) wrote the full as a multipart upload without any z3-* metadata.
    const full = gzipSync(await zfsSend(`${f.dataset}@s1`));
    const fullKey = f.key("s1");
    const uploadId = await f.store.createMultipart(fullKey, {
      metadata: { isfull: "true", compressor: "pigz1", size: String(full.length) },
    });
    const parts = [];
    for (let off = 0, n = 1; off < full.length; off += 5 * MiB, n++) {
      const body = full.subarray(off, off + 5 * MiB);
      parts.push({
        partNumber: n,
        etag: await f.store.uploadPart(fullKey, uploadId, n, body, md5Base64(body)),
      });
    }
    await f.store.completeMultipart(fullKey, uploadId, parts);
    const incr = gzipSync(await zfsSend("-i", `${f.dataset}@s1`, `${f.dataset}@s2`));
    await f.store.put(f.key("s2"), incr, md5Base64(incr), {
      metadata: { parent: `${f.dataset}@s1`, compressor: "pigz1" },
    });

    const target = `${f.pool.name}/legacy`;
    const result = await f.z3(["restore", "s2", "--target", target]);
    assert.deepEqual(ok(result), [`received ${target}@s1`, `received ${target}@s2`]);
    assert.match(result.stderr, /warning: .*@s1 has no recorded part sizes/);
    assert.doesNotMatch(result.stderr, /warning: .*@s2/, "a single PUT's ETag is an MD5");
    assert.deepEqual(await snapshotsOf(target), ["s1", "s2"]);
    assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/legacy`), f.digests.get("s2"));
  });
});

integration(
  "a download cut once in transit is retried and restores byte for byte",
  async (bed) => {
    await withHistory(bed.s3, "rs-cut", { bigFull: true }, async (f) => {
      await backupAll(f);
      const proxy = corruptingProxy(bed.s3.S3_ENDPOINT, 3 * MiB, "cut");
      try {
        const target = `${f.pool.name}/cut`;
        const result = await f.z3(["restore", "s1", "--target", target], { HOST: proxy.endpoint });
        assert.ok(proxy.flipped(), "the proxy cut the download");
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/cut`), f.digests.get("s1"));
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "a download cut when the endpoint then goes away fails as an S3 error naming the object, and creates no snapshot",
  async (bed) => {
    await withHistory(bed.s3, "rs-cut-always", { bigFull: true }, async (f) => {
      await backupAll(f);
      const proxy = corruptingProxy(bed.s3.S3_ENDPOINT, 3 * MiB, "cut then gone");
      try {
        const target = `${f.pool.name}/cut`;
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          MAX_RETRIES: "2",
        });
        assert.ok(proxy.flipped(), "the proxy cut the download");
        assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was created");
        failure(result, 4, new RegExp(`^z3: Cannot download "${f.key("s1")}"`));
      } finally {
        await proxy.close();
      }
    });
  },
);

integration("z3 verify reports every snapshot ok and proves the chain with --zfs", async (bed) => {
  await withHistory(bed.s3, "vf-ok", { bigFull: true }, async (f) => {
    await backupAll(f);
    const zfsLog = await loggingZfs();
    try {
      const lines = ok(
        await f.z3(["verify", "--zfs", f.pool.name], { Z3_ZFS_COMMAND: zfsLog.path }),
      );
      assert.deepEqual(
        lines.map((l) => l.split("\t").slice(0, 2)),
        SNAPS.map((s) => [`${f.dataset}@${s}`, "ok"]),
      );
      // The chain was received, in order, into one throwaway dataset that ended up holding all.
      const log = await zfsLog.lines();
      const receives = log.filter((l) => l.startsWith("receive"));
      assert.equal(receives.length, SNAPS.length, log.join("\n"));
      const scratch = receives[0].split(" ").at(-1)!;
      assert.match(scratch, new RegExp(`^${f.pool.name}/z3-verify-`));
      assert.ok(receives.every((l) => l.endsWith(` ${scratch}`)), "one throwaway dataset");
      assert.deepEqual(
        log.slice(log.lastIndexOf(receives.at(-1)!) + 1).filter((l) => l.startsWith("  has "))
          .map((l) => l.slice("  has ".length)),
        SNAPS.map((s) => `${scratch}@${s}`),
        "after the last receive the throwaway dataset held the whole chain",
      );
    } finally {
      await zfsLog.remove();
    }
    const left = await run(["zfs", "list", "-H", "-o", "name", "-r", f.pool.name]);
    assert.doesNotMatch(left, /z3-verify-/, "the throwaway dataset is destroyed");

    // An object whose bytes match its ETag and its check record but are no ZFS stream (made
    // by a zfs whose send writes noise): verify reads its stream through and finds no BEGIN
    // record (before it read streams, only --zfs could tell), so --zfs receives nothing.
    const junk = `${f.pool.mountpoint}/junk-zfs`;
    const realZfs = (await run(["sh", "-c", "command -v zfs"])).trim();
    await Deno.writeTextFile(
      junk,
      `#!/bin/sh
if [ "$1" = send ]; then
  case " $* " in *" -n "*) exec '${realZfs}' "$@" ;; esac
  head -c 300000 /dev/urandom
  exit 0
fi
exec '${realZfs}' "$@"
`,
      { mode: 0o755 },
    );
    const env = { S3_PREFIX: "junk/" };
    ok(await f.z3(["backup", "--snapshot", "s1"], { ...env, Z3_ZFS_COMMAND: junk }));
    const plain = await f.z3(["verify"], env);
    assert.equal(plain.code, 6, plain.stderr);
    assert.deepEqual(plain.stdout.trimEnd().split("\t").slice(0, 2), [
      `${f.dataset}@s1`,
      "corrupt",
    ]);
    assert.match(plain.stdout, /its first record has not the send stream magic/);
    const proved = await f.z3(["verify", "--json", "--zfs", f.pool.name], env);
    assert.equal(proved.code, 6, proved.stderr);
    const [row] = JSON.parse(proved.stdout) as {
      snapshot: string;
      state: string;
      detail: string;
    }[];
    assert.deepEqual([row.snapshot, row.state], [`${f.dataset}@s1`, "corrupt"]);
    assert.match(row.detail, /Cannot read ".*@s1" as a zfs send stream/);
    const after = await run(["zfs", "list", "-H", "-o", "name", "-r", f.pool.name]);
    assert.doesNotMatch(after, /z3-verify-/, "the throwaway dataset is destroyed");
  });
});

integration(
  "z3 verify finds a changed object corrupt and a broken link missing (exit 6)",
  async (bed) => {
    await withHistory(bed.s3, "vf-bad", {}, async (f) => {
      await backupAll(f);
      const info = (await f.store.head(f.key("s1")))!;
      const bytes = await bytesOf(f.store, f.key("s1"));
      bytes[100] ^= 0x01;
      await f.store.put(f.key("s1"), bytes, md5Base64(bytes), { metadata: info.metadata });
      await f.store.delete(f.key("s3"));
      const result = await f.z3(["verify", "--json"]);
      assert.equal(result.code, 6, result.stderr);
      const states = Object.fromEntries(
        (JSON.parse(result.stdout) as { snapshot: string; state: string }[]).map((
          r,
        ) => [r.snapshot, r.state]),
      );
      // s2's own bytes are fine, but it cannot be restored without s1.
      assert.deepEqual(states, {
        [`${f.dataset}@s1`]: "corrupt",
        [`${f.dataset}@s2`]: "missing",
        [`${f.dataset}@s4`]: "missing",
      });
      const s2 = (JSON.parse(result.stdout) as { snapshot: string; detail: string }[])
        .find((r) => r.snapshot === `${f.dataset}@s2`);
      assert.match(s2?.detail ?? "", /^unrestorable: it needs ".*@s1", which is corrupt$/);
      assert.match(result.stderr, /^z3: Cannot verify 3 of 3 snapshot\(s\)/m);
    });
  },
);

integration(
  "z3 verify --repair writes back a missing check record only when the bytes match, and restore works again",
  async (bed) => {
    await withHistory(bed.s3, "vf-repair", { bigFull: true }, async (f) => {
      await backupAll(f);
      // A run killed between completing these objects and writing their records.
      for (const snap of ["s1", "s2"]) {
        await f.store.delete(checkKey("z3-backup/", `${f.dataset}@${snap}`));
      }
      const stateOf = (stdout: string) =>
        Object.fromEntries(
          (JSON.parse(stdout) as { snapshot: string; state: string }[]).map((r) => [
            r.snapshot.replace(/.*@/, ""),
            r.state,
          ]),
        );
      // Without --repair: refused, and nothing is written.
      const plain = await f.z3(["verify", "--json"]);
      assert.equal(plain.code, 6, plain.stderr);
      // s3 and s4 verify, but restore would refuse their chain until s1 and s2 have records.
      assert.deepEqual(stateOf(plain.stdout), {
        s1: "corrupt",
        s2: "corrupt",
        s3: "missing",
        s4: "missing",
      });
      assert.equal(await f.store.head(checkKey("z3-backup/", `${f.dataset}@s1`)), undefined);

      // s1's bytes are corrupted on the way: its record must not be written.
      const proxy = corruptingProxy(bed.s3.S3_ENDPOINT, 7 * MiB, "flip");
      let flipped: CliResult;
      try {
        flipped = await f.z3(["verify", "--repair", "--json"], { HOST: proxy.endpoint });
        assert.ok(proxy.flipped(), "the proxy corrupted s1's download");
      } finally {
        await proxy.close();
      }
      assert.equal(flipped.code, 6, flipped.stderr);
      // s2's record is written again, but nothing above s1 restores while s1 is corrupt.
      assert.deepEqual(stateOf(flipped.stdout), {
        s1: "corrupt",
        s2: "missing",
        s3: "missing",
        s4: "missing",
      });
      const s2Result = (JSON.parse(flipped.stdout) as { snapshot: string; detail: string }[])
        .find((r) => r.snapshot.endsWith("@s2"));
      assert.match(s2Result?.detail ?? "", /^check record written again; unrestorable: .*@s1"/);
      assert.equal(await f.store.head(checkKey("z3-backup/", `${f.dataset}@s1`)), undefined);
      const s2 = await f.store.head(f.key("s2"));
      const record = JSON.parse(
        await new Response(await f.store.get(checkKey("z3-backup/", `${f.dataset}@s2`))).text(),
      );
      assert.equal(record.etag, s2!.etag);
      assert.equal(record.size, s2!.size);
      const guid = (await zfs.listSnapshots(f.dataset)).find((s) => s.name.endsWith("@s2"))!.guid;
      assert.equal(record.guid, guid);

      // Still no record for s1: a restore through it is refused.
      failure(
        await f.z3(["restore", "s4", "--target", `${f.pool.name}/early`]),
        6,
        /check record .* is missing/,
      );

      // A clean pass repairs s1; the chain restores byte for byte.
      const clean = await f.z3(["verify", "--repair", "--json"]);
      assert.equal(clean.code, 0, clean.stderr);
      assert.deepEqual(stateOf(clean.stdout), { s1: "repaired", s2: "ok", s3: "ok", s4: "ok" });
      const target = `${f.pool.name}/repaired`;
      ok(await f.z3(["restore", "s4", "--target", target]));
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/repaired`), f.digests.get("s4"));
    });
  },
);
