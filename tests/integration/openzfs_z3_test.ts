/**
 * z3 against real OpenZFS 2.3 (the guest of `tests/bed/openzfs_vm.sh`), through its CLI only,
 * with `Z3_ZFS_COMMAND` pointing at the guest's `zfs`.
 */
import assert from "node:assert/strict";
import { withCleanup } from "../bed/cleanup.ts";
import { runZ3 } from "../bed/cli.ts";
import { failure, ok } from "../bed/expect.ts";
import {
  guest,
  guestPool,
  guestText,
  OPENZFS_ZFS,
  openzfsTest,
  openzfsVersion,
} from "../bed/openzfs_bed.ts";
import { s3Settings, tempBucket } from "../bed/s3_bucket_bed.ts";

const s3 = await s3Settings();
const missing = typeof s3 === "string" ? `s3: ${s3}` : undefined;

const PASSPHRASE = new TextEncoder().encode("correct horse battery staple\n");

/** `sha256sum` of each file, as the guest computes it, by file name. */
async function digests(dir: string, names: string[]): Promise<Record<string, string>> {
  const out = await guestText(["run", "sha256sum", ...names.map((n) => `${dir}/${n}`)]);
  return Object.fromEntries(
    out.trimEnd().split("\n").map((l) => [l.slice(l.lastIndexOf("/") + 1), l.split(" ")[0]]),
  );
}

openzfsTest(
  "z3 backup sends a real encrypted dataset raw; restore and zfs load-key open it; verify --zfs needs no key",
  async () => {
    const pool = await guestPool({ name: "raw" });
    const bucket = await tempBucket(s3 as Record<string, string>, "openzfs-raw");
    await withCleanup([() => pool.destroy(), () => bucket.remove()], async () => {
      const src = `${pool.name}/secret data`;
      await guest([
        "zfs",
        "create",
        "-o",
        "encryption=on",
        "-o",
        "keyformat=passphrase",
        "-o",
        "keylocation=prompt",
        src,
      ], { stdin: PASSPHRASE });
      const write = (name: string, bytes: number) =>
        guest(["run", "sh", "-c", 'head -c "$1" /dev/urandom > "$2"', "sh", `${bytes}`, name]);
      await write(`/${src}/a`, 2 * 1024 * 1024);
      await guest(["zfs", "snapshot", `${src}@s1`]);
      await write(`/${src}/b`, 1024 * 1024);
      await guest(["zfs", "snapshot", `${src}@s2`]);
      const env = { ...bucket.env, FILESYSTEM: src, Z3_ZFS_COMMAND: OPENZFS_ZFS };

      ok(await runZ3(["backup"], env));
      const keys = await bucket.keys();
      for (const snap of ["s1", "s2"]) {
        // The object (S3_PREFIX + dataset@snap), not its check record under `….z3/`.
        const key = keys.find((k) => k.endsWith(`/${src}@${snap}`) && !k.includes(".z3/"));
        assert.ok(key, `no object for ${src}@${snap} in ${keys.join(", ")}`);
        assert.equal((await bucket.head(key)).metadata["z3-send-flags"], "-w", key);
      }
      // The hold on the base, as the real `zfs holds` lists it, and its bookmark.
      const holds = await guestText(["zfs", "holds", "-H", `${src}@s2`]);
      assert.match(holds, new RegExp(`^${src}@s2\\tz3:[0-9a-f]{12}\\t`, "m"));
      const marks = await guestText(["zfs", "list", "-H", "-t", "bookmark", "-o", "name", src]);
      assert.match(marks, new RegExp(`^${src}#z3-[0-9a-f]{12}-s2$`, "m"));

      const copy = `${pool.name}/copy`;
      const restore = await runZ3(["restore", "s2", "--target", copy], env);
      ok(restore);
      assert.match(restore.stderr, /zfs load-key/);
      const keystatus = ["zfs", "get", "-H", "-o", "value", "keystatus", copy];
      assert.equal((await guestText(keystatus)).trim(), "unavailable");
      await guest(["zfs", "load-key", copy], { stdin: PASSPHRASE });
      await guest(["zfs", "mount", copy]);
      assert.deepEqual(await digests(`/${copy}`, ["a", "b"]), await digests(`/${src}`, ["a", "b"]));

      // Raw objects received into a throwaway dataset, whose key is never loaded.
      const verify = ok(await runZ3(["verify", "--zfs", pool.name], env));
      assert.equal(verify.filter((l) => /\bok\b/.test(l)).length, 2, verify.join("\n"));
    });
  },
  { missing },
);

/** A fresh pool and bucket, a dataset in it, and z3 run against both (COMPRESSOR=none). */
async function withDataset(
  label: string,
  createArgs: string[],
  fn: (f: {
    pool: string;
    dataset: string;
    bucket: Awaited<ReturnType<typeof tempBucket>>;
    /** Writes `/DATASET/NAME` from `sh -c` script `make` (stdout is the file), then snapshots. */
    snap(snap: string, name: string, make: string): Promise<void>;
    z3(args: string[], env?: Record<string, string>): ReturnType<typeof runZ3>;
  }) => Promise<void>,
): Promise<void> {
  const pool = await guestPool({ name: label });
  const bucket = await tempBucket(s3 as Record<string, string>, `openzfs-${label}`);
  await withCleanup([() => pool.destroy(), () => bucket.remove()], async () => {
    const dataset = `${pool.name}/${label} data`;
    await guest(["zfs", "create", ...createArgs, dataset]);
    await fn({
      pool: pool.name,
      dataset,
      bucket,
      async snap(snap, name, make) {
        await guest(["run", "sh", "-c", `(${make}) > "$1"`, "sh", `/${dataset}/${name}`]);
        await guest(["zfs", "snapshot", `${dataset}@${snap}`]);
      },
      z3: (args, env = {}) =>
        runZ3(args, {
          ...bucket.env,
          FILESYSTEM: dataset,
          COMPRESSOR: "none",
          Z3_ZFS_COMMAND: OPENZFS_ZFS,
          ...env,
        }),
    });
  });
}

/** The object of `dataset@snap` (S3_PREFIX is z3's default). */
const objectKey = (dataset: string, snap: string) => `z3-backup/${dataset}@${snap}`;

openzfsTest(
  "z3 SEND_FLAGS -L -c on real 1M blocks: recorded, the real send -nvP estimate near the stream, -L kept mid-chain, restore equal",
  async () => {
    const props = ["-o", "recordsize=1M", "-o", "compression=lz4"];
    await withDataset("flags", props, async (f) => {
      // Random (incompressible) and text (compressible) data, in 1 MiB records.
      await f.snap("s1", "a", "head -c 3145728 /dev/urandom; yes z3 | head -c 2097152");
      ok(await f.z3(["backup"], { SEND_FLAGS: "-c -L" }));
      const s1 = await f.bucket.head(objectKey(f.dataset, "s1"));
      assert.equal(s1.metadata["z3-send-flags"], "-L -c");
      // With COMPRESSOR=none the object is the stream: OpenZFS's estimate against the real size.
      const estimate = Number(s1.metadata.size);
      console.error(`send -nvP -L -c estimate ${estimate} B, stream ${s1.size} B`);
      assert.ok(Math.abs(estimate - s1.size) / s1.size < 0.1, `${estimate} vs ${s1.size}`);

      await f.snap("s2", "b", "head -c 1048576 /dev/urandom");
      const dry = ok(await f.z3(["backup", "--dry-run", "--send-flags=-Lc"]));
      assert.match(dry[0], /\/openzfs_zfs send -L -c -i '[^']*@s1' '[^']*@s2' \| upload s3:\/\//);
      failure(
        await f.z3(["backup"], { SEND_FLAGS: "-c" }),
        5,
        /-L \(--large-block\), to match previous receive.*z3 backup --full/,
      );
      ok(await f.z3(["backup"], { SEND_FLAGS: "-L" }));
      assert.equal(
        (await f.bucket.head(objectKey(f.dataset, "s2"))).metadata["z3-send-flags"],
        "-L",
      );
      const back = `${f.pool}/back`;
      ok(await f.z3(["restore", "s2", "--target", back]));
      assert.deepEqual(
        await digests(`/${back}`, ["a", "b"]),
        await digests(`/${f.dataset}`, ["a", "b"]),
      );
    });
  },
  { missing },
);

openzfsTest(
  "z3 on real OpenZFS: the hold keeps the base from zfs destroy; once it is destroyed the next incremental goes from z3's bookmark; restore equal",
  async () => {
    await withDataset("marks", [], async (f) => {
      await f.snap("s1", "a", "head -c 1048576 /dev/urandom");
      const first = await f.z3(["backup"]);
      ok(first);
      const holds = await guestText(["zfs", "holds", "-H", `${f.dataset}@s1`]);
      const tag = holds.split("\t")[1];
      assert.match(tag, /^z3:[0-9a-f]{12}$/, holds);
      const mark1 = `${f.dataset}#z3-${tag.slice(3)}-s1`;
      assert.match(
        first.stderr,
        new RegExp(`bookmarked as ${mark1.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
      );

      // A snapshot tool cannot destroy the held base: OpenZFS's own words.
      const busy = await guest(["zfs", "destroy", `${f.dataset}@s1`], { allowFail: true });
      assert.equal(busy.code, 1);
      // OpenZFS 2.3.9 names the hold; 2.1.11 says what zfs-fuse says.
      const base = `${f.dataset}@s1`;
      assert.equal(
        busy.stderr,
        openzfsVersion?.includes("zfs-2.1.")
          ? `cannot destroy snapshot ${base}: dataset is busy\n`
          : `cannot destroy snapshot ${base}: it's being held. ` +
            `Run 'zfs holds -r ${base}' to see holders.\n`,
      );
      await guest(["zfs", "release", tag, `${f.dataset}@s1`]);
      await guest(["zfs", "destroy", `${f.dataset}@s1`]);

      await f.snap("s2", "b", "head -c 1048576 /dev/urandom");
      const second = await f.z3(["backup"]);
      ok(second);
      assert.ok(second.stderr.includes(`sending incremental from ${mark1}`), second.stderr);
      const s2 = await f.bucket.head(objectKey(f.dataset, "s2"));
      assert.equal(s2.metadata.parent, `${f.dataset}@s1`);
      const marks = await guestText([
        "zfs",
        "list",
        "-H",
        "-t",
        "bookmark",
        "-o",
        "name",
        f.dataset,
      ]);
      assert.deepEqual(marks.trimEnd().split("\n"), [`${f.dataset}#z3-${tag.slice(3)}-s2`]);

      const back = `${f.pool}/restored`;
      ok(await f.z3(["restore", "s2", "--target", back]));
      assert.deepEqual(
        await digests(`/${back}`, ["a", "b"]),
        await digests(`/${f.dataset}`, ["a", "b"]),
      );
    });
  },
  { missing },
);

openzfsTest(
  "z3 restore onto a real target with a newer snapshot: refused before any download (exit 5) naming it, then --force (-F) rolls it back and destroys it",
  async () => {
    await withDataset("force", [], async (f) => {
      await f.snap("s1", "a", "head -c 262144 /dev/urandom");
      ok(await f.z3(["backup"]));
      const back = `${f.pool}/back`;
      ok(await f.z3(["restore", "s1", "--target", back]));
      // The target moves on by itself: a file and a snapshot of its own.
      await guest(["run", "sh", "-c", 'echo local > "$1"', "sh", `/${back}/local`]);
      await guest(["zfs", "snapshot", `${back}@t2`]);
      await f.snap("s2", "b", "head -c 262144 /dev/urandom");
      ok(await f.z3(["backup"]));

      const refused = await f.z3(["restore", "s2", "--target", back]);
      console.error(`restore without --force: exit ${refused.code}: ${refused.stderr.trim()}`);
      // z3 sees the newer snapshot itself, before any download (zfs would refuse it as exit 3).
      failure(refused, 5, /it has 1 snapshot\(s\) newer than "s1".*--force/);
      const snaps = ["zfs", "list", "-H", "-t", "snapshot", "-o", "name", back];
      assert.deepEqual((await guestText(snaps)).trimEnd().split("\n"), [
        `${back}@s1`,
        `${back}@t2`,
      ]);

      ok(await f.z3(["restore", "s2", "--target", back, "--force"]));
      // -F rolled the target back to s1, destroying t2 and the local file, then received s2.
      assert.deepEqual((await guestText(snaps)).trimEnd().split("\n"), [
        `${back}@s1`,
        `${back}@s2`,
      ]);
      const files = await guestText(["run", "ls", `/${back}`]);
      assert.deepEqual(files.trimEnd().split("\n"), ["a", "b"]);
      assert.deepEqual(
        await digests(`/${back}`, ["a", "b"]),
        await digests(`/${f.dataset}`, ["a", "b"]),
      );
    });
  },
  { missing },
);
