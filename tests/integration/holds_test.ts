/**
 * The hold on the base, for real on zfs-fuse (`zfs hold` / `zfs release`; zfs-fuse's `zfs holds`
 * cannot run, so the tests look at `zfs destroy` and `userrefs`), and the same through the
 * OpenZFS 2.x shim, which passes holds to zfs-fuse.
 */
import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import { openzfsShim } from "../bed/openzfs_shim_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { holdTag } from "../../lib/zfs/holds.ts";

const DATA = "held data";

/** `zfs destroy SNAPSHOT`: whether it worked, and zfs's stderr. */
async function destroy(snapshot: string): Promise<{ ok: boolean; stderr: string }> {
  const out = await new Deno.Command("zfs", { args: ["destroy", snapshot], stderr: "piped" })
    .output();
  return { ok: out.success, stderr: new TextDecoder().decode(out.stderr) };
}

async function userrefs(snapshot: string): Promise<string> {
  return (await run(["zfs", "get", "-H", "-p", "-o", "value", "userrefs", snapshot])).trim();
}

for (const via of ["zfs-fuse", "the OpenZFS shim"] as const) {
  integration(
    `backup holds the newest uploaded snapshot and releases the previous one (${via}); HOLD=false holds none`,
    async (bed) => {
      const pool = await createPool(256);
      const shim = via === "zfs-fuse" ? undefined : await openzfsShim();
      let store: S3Store | undefined;
      await withCleanup(
        [() => store?.close(), () => pool.destroy(), async () => await shim?.remove()],
        async () => {
          store = await freshBucket(bed.s3, "holds");
          const bucket = store.bucket;
          const dir = await pool.createDataset(DATA);
          const dataset = `${pool.name}/${DATA}`;
          let n = 0;
          const snap = async (name: string) => {
            await Deno.writeFile(`${dir}/f${++n}`, pseudoRandom(32 * 1024, n));
            await pool.snapshot(DATA, name);
            return `${dataset}@${name}`;
          };
          const z3 = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
            runZ3(args, {
              ...childEnv(bed.s3, bucket),
              FILESYSTEM: dataset,
              COMPRESSOR: "none",
              ...(shim ? { Z3_ZFS_COMMAND: shim.path } : {}),
              ...env,
            });
          const tag = holdTag(bucket, "z3-backup/");

          const s1 = await snap("s1");
          const first = await z3(["backup"]);
          ok(first);
          assert.match(first.stderr, new RegExp(`held \\(zfs hold ${tag}\\)`));
          assert.equal(await userrefs(s1), "1");
          const refused = await destroy(s1);
          assert.equal(refused.ok, false, "the held base cannot be destroyed");
          assert.match(refused.stderr, /dataset is busy/);
          const status = await z3(["status"]);
          ok(status);
          assert.match(status.stderr, new RegExp(`hold: ${s1} \\(tag ${tag}; userrefs 1\\)`));

          const s2 = await snap("s2");
          ok(await z3(["backup"]));
          assert.equal(await userrefs(s2), "1");
          assert.equal(await userrefs(s1), "0", "the previous base is released");
          assert.equal((await destroy(s1)).ok, true, "and can be destroyed now");
          assert.equal((await destroy(s2)).ok, false, "the new base cannot");

          const s3 = await snap("s3");
          ok(await z3(["backup"], { HOLD: "false" }));
          assert.equal(await userrefs(s3), "0", "HOLD=false holds nothing");
          assert.equal(await userrefs(s2), "0", "and lets go of the last hold");
          assert.match((await z3(["status"], { HOLD: "false" })).stderr, /hold: off/);
          if (shim) {
            const holds = (await shim.log()).filter((l) => l.argv[0] === "hold");
            assert.deepEqual(holds.map((l) => l.argv), [["hold", tag, s1], ["hold", tag, s2]]);
          }
        },
      );
    },
  );
}

integration(
  "backup --full refuses a key that holds an object (exit 5, nothing written), releases the previous hold, and status names every held snapshot",
  async (bed) => {
    const pool = await createPool(256);
    let store: S3Store | undefined;
    await withCleanup([() => store?.close(), () => pool.destroy()], async () => {
      store = await freshBucket(bed.s3, "holds-full");
      const bucket = store.bucket;
      const dir = await pool.createDataset(DATA);
      const dataset = `${pool.name}/${DATA}`;
      let n = 0;
      const snap = async (name: string) => {
        await Deno.writeFile(`${dir}/f${++n}`, pseudoRandom(32 * 1024, n));
        await pool.snapshot(DATA, name);
        return `${dataset}@${name}`;
      };
      const z3 = (args: string[]): Promise<CliResult> =>
        runZ3(args, { ...childEnv(bed.s3, bucket), FILESYSTEM: dataset, COMPRESSOR: "none" });
      const tag = holdTag(bucket, "z3-backup/");
      const key = (s: string) => `z3-backup/${s}`;

      const s1 = await snap("s1");
      const s2 = await snap("s2");
      ok(await z3(["backup"]));
      assert.equal(await userrefs(s2), "1");
      // --full over s2, already in the bucket with the same GUID: refused, never rewritten.
      const etag = (await store.head(key(s2)))?.etag;
      const over = await z3(["backup", "--full"]);
      assert.equal(over.code, 5, over.stderr);
      assert.match(over.stderr, /as a full: the bucket already holds it .*never writes over/);
      assert.match(over.stderr, /take a new snapshot and back that up with --full/);
      assert.equal((await store.head(key(s2)))?.etag, etag, "not rewritten");
      const s1etag = (await store.head(key(s1)))?.etag;
      failure(await z3(["backup", "--full", "--snapshot", "s1"]), 5, /already holds it/);
      assert.equal((await store.head(key(s1)))?.etag, s1etag, "the chain's full is untouched");

      // A periodic full moves the hold like any backup: s2 is released.
      const s3 = await snap("s3");
      ok(await z3(["backup", "--full"]));
      assert.equal(await userrefs(s3), "1", "the new full is held");
      assert.equal(await userrefs(s2), "0", "the previous base is released");
      assert.equal((await z3(["backup", "--full"])).code, 5, "and s3 is not written over");

      // A hold left on an older snapshot is named by status, not only the newest row's.
      await run(["zfs", "hold", tag, s1]);
      const status = await z3(["status"]);
      ok(status);
      assert.match(status.stderr, new RegExp(`hold: ${s3} \\(tag ${tag}; userrefs 1\\)`));
      assert.match(status.stderr, new RegExp(`also held: ${s1} \\(userrefs 1\\)`));
      await run(["zfs", "release", tag, s1]);
    });
  },
);
