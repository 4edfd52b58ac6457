/**
 * Reading backups back, end to end on zfs-fuse and Ceph: what ZFS is allowed to see of bytes
 * that did not verify, bad parts fetched again, an outage told apart from corruption, buckets
 * whose ETags are not MD5s, and zfs's own messages (a dataset named "does not exist").
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { integration } from "../bed/bed.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliOptions, type CliResult, runPput, runZ3 } from "../bed/cli.ts";
import { faultProxy, GONE } from "../bed/fault_proxy.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { type Exchange, type ProxiedResponse, rewriteProxy } from "../bed/rewrite_proxy.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import { readCheck, writeCheck } from "../../lib/repository/check_records.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

const MiB = 1024 * 1024;
/** A dataset whose name is zfs's own "absent" wording, with spaces. */
const DATA = "does not exist";

interface Fixture {
  pool: TestPool;
  store: S3Store;
  /** `pool/does not exist`. */
  dataset: string;
  /** The dataset's mountpoint. */
  dir: string;
  z3(args: string[], env?: Record<string, string>, options?: CliOptions): Promise<CliResult>;
  key(snap: string): string;
}

/** A pool, a bucket and `pool/does not exist` with snapshot s1 holding `firstSize` bytes. */
async function withDataset(
  s3: S3Env,
  label: string,
  firstSize: number,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(512);
  let store: S3Store | undefined;
  try {
    store = await freshBucket(s3, label);
    const bucket = store.bucket;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    await Deno.writeFile(`${dir}/first.bin`, pseudoRandom(firstSize, 7));
    await pool.snapshot(DATA, "s1");
    const theStore = store;
    await fn({
      pool,
      store: theStore,
      dataset,
      dir,
      z3: (args, env = {}, options = {}) =>
        runZ3(args, { ...childEnv(s3, bucket), FILESYSTEM: dataset, ...env }, options),
      key: (snap) => `z3-backup/${dataset}@${snap}`,
    });
  } finally {
    store?.close();
    await pool.destroy();
  }
}

/** Snapshots of `dataset` once zfs-fuse has settled a failed receive; [] when it is absent. */
async function snapshotsAfterFailure(dataset: string): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 1000));
  if (!(await zfs.datasetExists(dataset))) return [];
  return (await zfs.listSnapshots(dataset)).map((s) => s.snapshot);
}

/** Whether `req` is a ranged GET of `key` whose range ends at byte `last`. */
function rangeEndsAt(req: Exchange, bucket: string, key: string, last: number): boolean {
  return req.kind === "GetObject" &&
    decodeURIComponent(req.target.split("?")[0]) === `/${bucket}/${key}` &&
    new RegExp(`^bytes=\\d+-${last}$`).test(req.headers.get("range") ?? "");
}

/** Flips the last byte of a response body. */
function flipLast(res: ProxiedResponse): void {
  res.body = res.body.slice();
  res.body[res.body.length - 1] ^= 0xff;
}

async function zfsSend(snapshot: string): Promise<Uint8Array> {
  const out = await new Deno.Command("zfs", { args: ["send", snapshot], stdout: "piped" }).output();
  assert.ok(out.success, `zfs send ${snapshot}`);
  return out.stdout;
}

integration(
  "z3 get writes the object's bytes with one HEAD of it: the object it found is the one it checks",
  async (bed) => {
    await withDataset(bed.s3, "vr-get-head", 3 * MiB, async (f) => {
      ok(await f.z3(["backup", "--compressor", "none"]));
      const out = await Deno.makeTempFile({ prefix: "z3-get-" });
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, () => {});
      try {
        const got = await f.z3(["get", `${f.dataset}@s1`], { HOST: proxy.endpoint }, {
          redirect: `> '${out}'`,
        });
        assert.equal(got.code, 0, got.stderr);
        assert.deepEqual(await Deno.readFile(out), await zfsSend(`${f.dataset}@s1`));
        const heads = proxy.log.filter((r) =>
          r.kind === "HeadObject" &&
          decodeURIComponent(r.target.split("?")[0]) === `/${f.store.bucket}/${f.key("s1")}`
        );
        assert.equal(heads.length, 1, "one HEAD of the object");
      } finally {
        await proxy.close();
        await Deno.remove(out);
      }
    });
  },
);

integration(
  "a gzip object whose last range (under 16 bytes) is flipped in transit: exit 6, no snapshot",
  async (bed) => {
    await withDataset(bed.s3, "vr-tail", 6 * MiB, async (f) => {
      // Shaped like the original z3's objects: one PUT, ETag = MD5, gzip (pigz1), no record.
      const gz = gzipSync(await zfsSend(`${f.dataset}@s1`));
      const md5 = createHash("md5").update(gz).digest("base64");
      await f.store.put(f.key("s1"), gz, md5, {
        metadata: { isfull: "true", compressor: "pigz1" },
      });
      // Two ranges: all but the last 9 bytes (the deflate data, END record included), then 9
      // bytes of the gzip trailer, whose last byte is flipped on the way.
      const tail = 9;
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, (req, res) => {
        if (rangeEndsAt(req, f.store.bucket, f.key("s1"), gz.length - 1)) flipLast(res);
      });
      try {
        const target = `${f.pool.name}/tail`;
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          CHUNK_SIZE: String(gz.length - tail),
        });
        assert.ok(
          proxy.log.some((r) => rangeEndsAt(r, f.store.bucket, f.key("s1"), gz.length - 1)),
          "the last range went through the proxy",
        );
        assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was created");
        failure(result, 6, /^z3: Cannot verify ".*@s1": its bytes hash to ETag/);
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "a gzip trailer flipped in an object checked by size only: the decompressor's failure commits nothing",
  async (bed) => {
    await withDataset(bed.s3, "vr-tail-size", 6 * MiB, async (f) => {
      // The original z3's multipart upload: no part sizes recorded, so only the size is checked
      // and only gunzip (its CRC and length trailer) can tell that the last byte is wrong.
      const gz = gzipSync(await zfsSend(`${f.dataset}@s1`));
      const key = f.key("s1");
      const uploadId = await f.store.createMultipart(key, {
        metadata: { isfull: "true", compressor: "pigz1" },
      });
      const parts = [];
      for (let off = 0, n = 1; off < gz.length; off += 5 * MiB, n++) {
        const body = gz.subarray(off, off + 5 * MiB);
        const md5 = createHash("md5").update(body).digest("base64");
        parts.push({ partNumber: n, etag: await f.store.uploadPart(key, uploadId, n, body, md5) });
      }
      await f.store.completeMultipart(key, uploadId, parts);
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, (req, res) => {
        if (rangeEndsAt(req, f.store.bucket, key, gz.length - 1)) flipLast(res);
      });
      try {
        const target = `${f.pool.name}/tail`;
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          CHUNK_SIZE: String(gz.length - 9),
        });
        assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was created");
        assert.match(result.stderr, /checking its size only/);
        failure(result, 7, /^z3: Cannot gunzip/);
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "a z3 gzip object whose part is too large to hold fails at its last range: exit 6, no snapshot",
  async (bed) => {
    await withDataset(bed.s3, "vr-tail-z3", 6 * MiB, async (f) => {
      ok(await f.z3(["backup", "--compressor", "gzip", "--chunk-size", "16M"]));
      const size = (await f.store.head(f.key("s1")))!.size;
      const tail = 9;
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, (req, res) => {
        if (rangeEndsAt(req, f.store.bucket, f.key("s1"), size - 1)) flipLast(res);
      });
      try {
        const target = `${f.pool.name}/tail`;
        // One range in flight: the single part (two ranges) streams instead of being held.
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          CHUNK_SIZE: String(size - tail),
          CONCURRENCY: "1",
        });
        assert.deepEqual(await snapshotsAfterFailure(target), [], "no snapshot was created");
        failure(result, 6, /^z3: Cannot verify ".*@s1": part 1 hashes to MD5 /);
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "a byte flipped once in one part is fetched again and the restore is byte for byte",
  async (bed) => {
    await withDataset(bed.s3, "vr-refetch", 11 * MiB, async (f) => {
      ok(await f.z3(["backup", "--compressor", "none", "--chunk-size", "5M"]));
      const info = (await f.store.head(f.key("s1")))!;
      assert.match(info.etag, /-3$/, "three parts");
      const partTwoEnd = 10 * MiB - 1;
      let flips = 0;
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, (req, res) => {
        if (flips === 0 && rangeEndsAt(req, f.store.bucket, f.key("s1"), partTwoEnd)) {
          flips++;
          flipLast(res);
        }
      });
      try {
        const target = `${f.pool.name}/again`;
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          CHUNK_SIZE: "5M",
        });
        assert.equal(flips, 1, "the proxy corrupted part 2 once");
        assert.deepEqual(ok(result), [`received ${target}@s1`]);
        assert.match(result.stderr, /part 2 hashes to MD5 [0-9a-f]{32}, not its recorded one/);
        assert.deepEqual(
          await treeDigest(`${f.pool.mountpoint}/again`),
          await treeDigest(f.dir),
          "the same files",
        );
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "a part flipped on every download fails with exit 6 and nothing is committed",
  async (bed) => {
    await withDataset(bed.s3, "vr-refetch-bad", 11 * MiB, async (f) => {
      ok(await f.z3(["backup", "--compressor", "none", "--chunk-size", "5M"]));
      let flips = 0;
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, (req, res) => {
        if (rangeEndsAt(req, f.store.bucket, f.key("s1"), 10 * MiB - 1)) {
          flips++;
          flipLast(res);
        }
      });
      try {
        const target = `${f.pool.name}/bad`;
        const result = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
          CHUNK_SIZE: "5M",
          MAX_RETRIES: "2",
        });
        assert.equal(flips, 3, "fetched three times (MAX_RETRIES 2)");
        failure(result, 6, /^z3: Cannot verify ".*@s1": part 2 hashes to MD5 .* on each of 3/);
        assert.deepEqual(await snapshotsAfterFailure(target), [], "nothing was committed");
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "a check record whose part MD5s do not fit its object is refused before any receive",
  async (bed) => {
    await withDataset(bed.s3, "vr-badparts", 64 * 1024, async (f) => {
      await Deno.writeTextFile(`${f.dir}/second.txt`, "s2\n");
      await f.pool.snapshot(DATA, "s2");
      ok(await f.z3(["backup", "--snapshot", "s1"]));
      ok(await f.z3(["backup"]));
      const name = `${f.dataset}@s2`;
      const record = (await readCheck(f.store, "z3-backup/", name, 1))!;
      record.parts = [createHash("md5").update("other bytes").digest("hex")];
      await writeCheck(f.store, "z3-backup/", name, record, 1);
      const target = `${f.pool.name}/badparts`;
      const result = await f.z3(["restore", "s2", "--target", target]);
      failure(result, 6, /^z3: Cannot trust ".*@s2": its check record's part MD5s do not match/);
      assert.equal(await zfs.datasetExists(target), false, "nothing was received, not even s1");
    });
  },
);

integration(
  "z3 verify through an endpoint gone after the listing exits 4 and calls nothing corrupt",
  async (bed) => {
    await withDataset(bed.s3, "vr-outage", 64 * 1024, async (f) => {
      ok(await f.z3(["backup"]));
      const proxy = faultProxy(bed.s3.S3_ENDPOINT, {
        faults: (req) => (req.kind === "GetObject" ? GONE : undefined),
      });
      try {
        const result = await f.z3(["verify", "--json"], {
          HOST: proxy.endpoint,
          MAX_RETRIES: "1",
        });
        assert.ok(proxy.count("ListObjects") > 0, "the listing went through");
        failure(result, 4, /^z3: Cannot download /);
        assert.doesNotMatch(result.stderr, /corrupt/);
      } finally {
        await proxy.close();
      }
    });
  },
);

/** Makes every HeadObject of a backup object say SSE-KMS, with an ETag that is not its MD5. */
function kmsProxy(s3: S3Env, bucket: string) {
  return rewriteProxy(s3.S3_ENDPOINT, (req, res) => {
    if (req.kind !== "HeadObject" || !req.target.startsWith(`/${bucket}/z3-backup/`)) return;
    res.headers = res.headers.filter(([n]) => !/^etag$/i.test(n));
    res.headers.push(["ETag", `"${"0123456789abcdef".repeat(2)}"`]);
    res.headers.push(["x-amz-server-side-encryption", "aws:kms"]);
  });
}

integration(
  "restore and verify in a bucket with SSE-KMS ETags name the cause (exit 4)",
  async (bed) => {
    await withDataset(bed.s3, "vr-kms", 64 * 1024, async (f) => {
      ok(await f.z3(["backup"]));
      const proxy = kmsProxy(bed.s3, f.store.bucket);
      try {
        const target = `${f.pool.name}/kms`;
        const restore = await f.z3(["restore", "s1", "--target", target], {
          HOST: proxy.endpoint,
        });
        failure(
          restore,
          4,
          /^z3: Cannot verify ".*@s1": it is encrypted with SSE-KMS \(x-amz-server-side-encryption: aws:kms\), so its ETag is not the MD5 of its bytes/,
        );
        assert.equal(await zfs.datasetExists(target), false, "zfs receive never ran");
        const verify = await f.z3(["verify"], { HOST: proxy.endpoint });
        failure(verify, 4, /SSE-KMS/);
        assert.doesNotMatch(verify.stderr, /corrupt/);
      } finally {
        await proxy.close();
      }
    });
  },
);

integration(
  "pput to a bucket with SSE-KMS ETags names the cause (exit 4), not an integrity failure",
  async (bed) => {
    const store = await freshBucket(bed.s3, "vr-kms-put");
    const proxy = kmsProxy(bed.s3, store.bucket);
    try {
      const key = "z3-backup/kms-put";
      const result = await runPput([key], {
        env: { ...childEnv(bed.s3, store.bucket), HOST: proxy.endpoint },
        stdin: pseudoRandom(1024, 3),
      });
      assert.equal(result.code, 4, result.stderr);
      assert.match(
        result.stderr,
        /Cannot upload "z3-backup\/kms-put": it is encrypted with SSE-KMS .* was left in place/,
      );
      assert.doesNotMatch(result.stderr, /Cannot verify upload/);
      // Without versioning z3 cannot tell its object from another run's: it deletes neither.
      assert.equal((await store.head(key))?.size, 1024, "the object is left, not deleted");
    } finally {
      await proxy.close();
      store.close();
    }
  },
);

/**
 * A `zfs` stand-in: runs the real zfs with the same argv, then `after` (bash, with $1.. the
 * argv and $rc its exit status). Children get a clean environment, so all it needs is baked in.
 */
async function zfsShim(dir: string, after: string): Promise<string> {
  const path = `${dir}/zfs`;
  await Deno.writeTextFile(
    path,
    `#!/bin/bash\n/usr/sbin/zfs "$@"\nrc=$?\n${after}\nexit $rc\n`,
  );
  await Deno.chmod(path, 0o755);
  return path;
}

integration(
  "z3 verify --zfs receives under a dataset that is never mounted, then destroys it",
  async (bed) => {
    await withDataset(bed.s3, "vr-nomount", 64 * 1024, async (f) => {
      ok(await f.z3(["backup"]));
      const tmp = await Deno.makeTempDir({ prefix: "z3-shim-" });
      try {
        const log = `${tmp}/mounted.log`;
        const shim = await zfsShim(
          tmp,
          `if [ "$1" = receive ]; then /usr/sbin/zfs get -H -o name,value mounted "\${@: -1}" >> '${log}'; fi`,
        );
        const lines = ok(await f.z3(["verify", "--zfs", f.pool.name], { Z3_ZFS_COMMAND: shim }));
        assert.deepEqual(lines.map((l) => l.split("\t").slice(0, 2)), [[`${f.dataset}@s1`, "ok"]]);
        const seen = (await Deno.readTextFile(log)).trim().split("\n");
        assert.equal(seen.length, 1, "one receive");
        assert.match(seen[0], /\/z3-verify-[0-9a-f]{8}\/chain\tno$/, "received, not mounted");
        const left = await run(["zfs", "list", "-H", "-o", "name", "-r", f.pool.name]);
        assert.doesNotMatch(left, /z3-verify-/, "the throwaway dataset is destroyed");
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    });
  },
);

integration(
  "z3 verify --zfs whose zfs receive fails for a local reason exits 3 and calls nothing corrupt",
  async (bed) => {
    await withDataset(bed.s3, "vr-localzfs", 64 * 1024, async (f) => {
      ok(await f.z3(["backup"]));
      const tmp = await Deno.makeTempDir({ prefix: "z3-shim-" });
      try {
        // OpenZFS's EDQUOT text (lib/libzfs/libzfs_sendrecv.c, zfs_receive_one()).
        const shim = `${tmp}/zfs`;
        await Deno.writeTextFile(
          shim,
          `#!/bin/bash\nif [ "$1" = receive ]; then\n` +
            `  echo "cannot receive new filesystem stream: destination \${@: -1} space quota exceeded." >&2\n` +
            `  exit 1\nfi\nexec /usr/sbin/zfs "$@"\n`,
        );
        await Deno.chmod(shim, 0o755);
        const result = await f.z3(["verify", "--zfs", f.pool.name], { Z3_ZFS_COMMAND: shim });
        assert.equal(result.code, 3, result.stderr);
        assert.match(result.stderr, /^z3: .*space quota exceeded/m);
        assert.doesNotMatch(result.stdout + result.stderr, /corrupt/);
        const left = await run(["zfs", "list", "-H", "-o", "name", "-r", f.pool.name]);
        assert.doesNotMatch(left, /z3-verify-/, "the throwaway dataset is destroyed");
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    });
  },
);

integration(
  'a dataset named "does not exist": restored into, and a zfs list failure of it is not "absent"',
  async (bed) => {
    await withDataset(bed.s3, "vr-dne", 64 * 1024, async (f) => {
      ok(await f.z3(["backup"]));
      // Absent for real: zfs's own message names it; the restore creates it.
      const target = `${f.pool.name}/restored does not exist`;
      assert.deepEqual(ok(await f.z3(["restore", "s1", "--target", target])), [
        `received ${target}@s1`,
      ]);
      // Present, but `zfs list` fails for another reason: the restore stops (exit 3) and
      // receives nothing. The message is OpenZFS's EPERM text (lib/libzfs/libzfs_util.c).
      const other = `${f.pool.name}/other does not exist`;
      await run(["zfs", "create", other]);
      const tmp = await Deno.makeTempDir({ prefix: "z3-shim-" });
      try {
        const shim = `${tmp}/zfs`;
        await Deno.writeTextFile(
          shim,
          `#!/bin/bash\nif [ "$1" = list ] && [ "\${@: -1}" = '${other}' ]; then\n` +
            `  echo "cannot open '${other}': permission denied" >&2; exit 1\nfi\n` +
            `exec /usr/sbin/zfs "$@"\n`,
        );
        await Deno.chmod(shim, 0o755);
        const result = await f.z3(["restore", "s1", "--target", other], { Z3_ZFS_COMMAND: shim });
        failure(result, 3, /cannot open '.*other does not exist': permission denied/);
        assert.deepEqual(await zfs.listSnapshots(other), [], "nothing was received");
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    });
  },
);

integration(
  "a snapshot destroyed while z3 lists them is simply absent (one zfs call)",
  async (bed) => {
    await withDataset(bed.s3, "vr-race", 64 * 1024, async (f) => {
      await f.pool.snapshot(DATA, "s2");
      const tmp = await Deno.makeTempDir({ prefix: "z3-shim-" });
      try {
        // After the first zfs call that lists snapshots, s1 is destroyed.
        const shim = await zfsShim(
          tmp,
          `if [[ "$*" == *snapshot* || "$1" = get ]] && [ ! -e '${tmp}/done' ]; then ` +
            `touch '${tmp}/done'; /usr/sbin/zfs destroy '${f.dataset}@s1'; fi`,
        );
        const lines = ok(await f.z3(["status", "--parseable"], { Z3_ZFS_COMMAND: shim }));
        assert.ok(lines.length > 0, lines.join("\n"));
        assert.equal((await zfs.listSnapshots(f.dataset)).map((s) => s.snapshot).join(), "s2");
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }
    });
  },
);

integration(
  "a restore onto a target changed since its snapshot says to roll back or use --force",
  async (bed) => {
    await withDataset(bed.s3, "vr-modified", 64 * 1024, async (f) => {
      await Deno.writeTextFile(`${f.dir}/second.txt`, "s2\n");
      await f.pool.snapshot(DATA, "s2");
      ok(await f.z3(["backup", "--snapshot", "s1"]));
      ok(await f.z3(["backup"]));
      const target = `${f.pool.name}/changed`;
      ok(await f.z3(["restore", "s1", "--target", target]));
      await Deno.writeTextFile(`${f.pool.mountpoint}/changed/local.txt`, "local change\n");
      const result = await f.z3(["restore", "s2", "--target", target]);
      failure(
        result,
        3,
        /has been modified; since most recent snapshot \("[^"]*changed" changed since its latest snapshot: roll it back \(zfs rollback\), or pass --force/,
      );
      assert.deepEqual((await zfs.listSnapshots(target)).map((s) => s.snapshot), ["s1"]);
    });
  },
);
