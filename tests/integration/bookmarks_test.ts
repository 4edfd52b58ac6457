/**
 * Bookmarks of the base: through the OpenZFS 2.x shim (which keeps bookmarks in its state and
 * simulates a destroyed snapshot by hiding it from `list`/`get`), a backup whose base snapshot
 * is gone sends from z3's bookmark; on plain zfs-fuse, which has no bookmarks, and through the
 * shim playing a pool without feature `bookmarks`, one line says so and the hold still goes on.
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
import { type OpenzfsShim, openzfsShim } from "../bed/openzfs_shim_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { bookmarkFor } from "../../lib/zfs/bookmarks.ts";

const DATA = "marked data";

const VIAS = ["the OpenZFS shim", "zfs-fuse", "the OpenZFS shim, pool without the feature"];
for (const via of VIAS) {
  integration(
    `backup bookmarks its base and sends from the bookmark once the base is gone (${via})`,
    async (bed) => {
      const pool = await createPool(256);
      const shim: OpenzfsShim | undefined = via === "zfs-fuse"
        ? undefined
        : await openzfsShim({ bookmarkFeature: via === VIAS[0] });
      let store: S3Store | undefined;
      await withCleanup(
        [() => store?.close(), () => pool.destroy(), async () => await shim?.remove()],
        async () => {
          store = await freshBucket(bed.s3, "bookmarks");
          const bucket = store.bucket;
          const dir = await pool.createDataset(DATA);
          const dataset = `${pool.name}/${DATA}`;
          let n = 0;
          const snap = async (name: string) => {
            await Deno.writeFile(`${dir}/f${++n}`, pseudoRandom(48 * 1024, n));
            await pool.snapshot(DATA, name);
            return await treeDigest(dir);
          };
          const z3 = (args: string[]): Promise<CliResult> =>
            runZ3(args, {
              ...childEnv(bed.s3, bucket),
              FILESYSTEM: dataset,
              COMPRESSOR: "none",
              ...(shim ? { Z3_ZFS_COMMAND: shim.path } : {}),
            });
          const noBookmarks = via === VIAS[1]
            ? /not bookmarked: this zfs has no bookmarks/g
            : /not bookmarked: the pool lacks feature bookmarks/g;
          const mark1 = bookmarkFor(bucket, "z3-backup/", `${dataset}@s1`);
          const mark2 = bookmarkFor(bucket, "z3-backup/", `${dataset}@s2`);

          await snap("s1");
          const first = await z3(["backup"]);
          ok(first);
          if (via !== VIAS[0]) {
            assert.equal(first.stderr.match(noBookmarks)?.length, 1, first.stderr);
            assert.match(first.stderr, /held \(zfs hold z3:/);
            const refs = await run([
              "zfs",
              "get",
              "-H",
              "-p",
              "-o",
              "value",
              "userrefs",
              `${dataset}@s1`,
            ]);
            assert.equal(refs.trim(), "1", "the hold still goes on without bookmarks");
            return;
          }
          assert.ok(shim);
          assert.match(first.stderr, new RegExp(`bookmarked as ${mark1}`));
          assert.doesNotMatch(first.stderr, noBookmarks);

          await shim.hide(`${dataset}@s1`); // "destroyed" by a snapshot tool
          const s2 = await snap("s2");
          const second = await z3(["backup"]);
          ok(second);
          assert.match(second.stderr, new RegExp(`sending incremental from ${mark1}`));
          const log = await shim.log();
          const sent = log.filter((l) => l.argv[0] === "send" && !l.argv.includes("-n"));
          assert.deepEqual(sent.map((l) => l.argv), [
            ["send", `${dataset}@s1`],
            ["send", "-i", mark1, `${dataset}@s2`],
          ]);
          // The new bookmark exists before the old one is destroyed.
          const marks = log.filter((l) => l.argv[0] === "bookmark" || l.argv[1]?.includes("#"))
            .map((l) => l.argv);
          assert.deepEqual(marks, [
            ["bookmark", `${dataset}@s1`, mark1],
            ["bookmark", `${dataset}@s2`, mark2],
            ["destroy", mark1],
          ]);
          const info = await store.head(`z3-backup/${dataset}@s2`);
          assert.equal(info?.metadata.parent, `${dataset}@s1`);

          const restored = await z3(["restore", "s2", "--target", `${pool.name}/restored`]);
          ok(restored);
          assert.deepEqual(await treeDigest(`${pool.mountpoint}/restored`), s2);
        },
      );
    },
  );
}
