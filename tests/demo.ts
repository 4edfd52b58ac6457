/**
 * `deno task demo`: a newcomer's first real backup on this machine. Brings up the test bed
 * (zfs-fuse and a local Ceph S3 server), makes a throwaway pool with a few snapshots, and runs
 * the real z3 commands against them, printing each one. Needs root (to run zfs-fuse/Ceph).
 *
 * @module
 */

import { ensureS3 } from "./bed/s3_bed.ts";
import { freshBucket } from "./bed/s3_bed.ts";
import { createPool, ensureZfs } from "./bed/zfs_bed.ts";
import { pseudoRandom, treeDigest } from "./bed/files.ts";

const main = new URL("../main.ts", import.meta.url).pathname;
const say = (s: string) => console.log(`\n\x1b[1m${s}\x1b[0m`);

const zfsWhy = await ensureZfs();
if (zfsWhy) throw new Error(`demo needs ZFS: ${zfsWhy}`);
say("Starting the local S3 server (Ceph radosgw; ~20 s the first time)…");
const s3 = await ensureS3();
if (typeof s3 === "string") throw new Error(`demo needs the S3 server: ${s3}`);
const pool = await createPool(512);
const store = await freshBucket(s3, "demo");
const dataset = `${pool.name}/data`;
const env = {
  PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: Deno.env.get("HOME") ?? "/root",
  Z3_CONFIG: "/dev/null",
  BUCKET: store.bucket,
  HOST: s3.S3_ENDPOINT,
  S3_KEY_ID: s3.S3_KEY_ID,
  S3_SECRET: s3.S3_SECRET,
  FILESYSTEM: dataset,
  COMPRESSOR: "zstd",
};

async function z3(...args: string[]) {
  say(`$ z3 ${args.join(" ")}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", main, ...args],
    env,
    clearEnv: true,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`z3 ${args.join(" ")} failed with exit ${out.code}`);
}

try {
  const dir = await pool.createDataset("data");
  say(
    `Pool ${pool.name} on an image file; dataset ${dataset}; bucket ${store.bucket} at ${s3.S3_ENDPOINT}`,
  );
  await Deno.writeFile(`${dir}/photos.bin`, pseudoRandom(20 * 1024 * 1024, 1));
  await pool.snapshot("data", "daily-1");
  await Deno.writeTextFile(`${dir}/notes.txt`, "day two\n");
  await pool.snapshot("data", "daily-2");
  await z3("status");
  await z3("backup", "--dry-run");
  await z3("backup");
  await Deno.writeFile(`${dir}/more.bin`, pseudoRandom(3 * 1024 * 1024, 3));
  await pool.snapshot("data", "daily-3");
  await z3("backup");
  await z3("backup");
  await z3("status");
  await z3("verify");
  await z3("restore", "daily-3", "--target", `${pool.name}/restored`);
  const same = JSON.stringify([...await treeDigest(dir)].sort()) ===
    JSON.stringify([...await treeDigest(`${pool.mountpoint}/restored`)].sort());
  say(
    same
      ? "Restored files are byte-identical to the source."
      : "MISMATCH between restored and source files!",
  );
  if (!same) Deno.exitCode = 1;
} finally {
  store.close();
  await pool.destroy();
  say(
    `Removed pool ${pool.name}. The S3 server keeps running (tests/bed/s3_server.sh stop stops it).`,
  );
}
