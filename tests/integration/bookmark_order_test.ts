/**
 * Snapshot order when two snapshots share a creation second (`creation` has 1 s resolution):
 * z3 must order by `createtxg`, as zfs does, also for a base it knows only by its bookmark.
 * Through the OpenZFS 2.x shim: s1 and s2 are made in the same second, `backup --snapshot s1`
 * uploads and bookmarks s1, s1 is then "destroyed" (hidden by the shim), and the next backup must
 * send s2 from s1's bookmark, not call the bucket up to date because s1 sorted after s2.
 */
import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import { openzfsShim } from "../bed/openzfs_shim_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { bookmarkFor } from "../../lib/zfs/bookmarks.ts";

const DATA = "same second";

integration(
  "backup orders by createtxg: s1 and s2 in one second, s1 gone, s2 goes from s1's bookmark (the OpenZFS shim)",
  async (bed) => {
    const pool = await createPool(256);
    const shim = await openzfsShim();
    let store: S3Store | undefined;
    await withCleanup(
      [() => store?.close(), () => pool.destroy(), () => shim.remove()],
      async () => {
        store = await freshBucket(bed.s3, "bookmark-order");
        const bucket = store.bucket;
        const dir = await pool.createDataset(DATA);
        const dataset = `${pool.name}/${DATA}`;
        const creation = async (snap: string) =>
          (await run(["zfs", "get", "-H", "-p", "-o", "value", "creation", `${dataset}@${snap}`]))
            .trim();
        // Both snapshots right after a second starts; again if zfs-fuse was slow to take them.
        let s2 = new Map<string, string>();
        for (let attempt = 1;; attempt++) {
          await new Promise((r) => setTimeout(r, 1000 - Date.now() % 1000 + 20));
          await Deno.writeFile(`${dir}/f1`, pseudoRandom(48 * 1024, attempt));
          await pool.snapshot(DATA, "s1");
          await Deno.writeFile(`${dir}/f2`, pseudoRandom(48 * 1024, attempt + 100));
          await pool.snapshot(DATA, "s2");
          if (await creation("s1") === await creation("s2")) {
            s2 = await treeDigest(dir);
            break;
          }
          assert.ok(attempt < 5, "could not take two snapshots within one second");
          await run(["zfs", "destroy", `${dataset}@s2`]);
          await run(["zfs", "destroy", `${dataset}@s1`]);
        }
        const z3 = (args: string[]): Promise<CliResult> =>
          runZ3(args, {
            ...childEnv(bed.s3, bucket),
            FILESYSTEM: dataset,
            COMPRESSOR: "none",
            Z3_ZFS_COMMAND: shim.path,
          });
        const mark1 = bookmarkFor(bucket, "z3-backup/", `${dataset}@s1`);

        const first = await z3(["backup", "--snapshot", "s1"]);
        ok(first);
        assert.match(first.stderr, new RegExp(`bookmarked as ${mark1}`));

        await shim.hide(`${dataset}@s1`); // "destroyed" by a snapshot tool
        const second = await z3(["backup"]);
        ok(second);
        assert.match(second.stderr, new RegExp(`@s2: sending incremental from ${mark1}`));
        assert.equal(
          (await store.head(`z3-backup/${dataset}@s2`))?.metadata.parent,
          `${dataset}@s1`,
        );

        const restored = await z3(["restore", "s2", "--target", `${pool.name}/restored`]);
        ok(restored);
        assert.deepEqual(await treeDigest(`${pool.mountpoint}/restored`), s2);
      },
    );
  },
);
