/**
 * The OpenZFS 2.x paths (raw sends of encrypted datasets, SEND_FLAGS, `send -nvP` estimates)
 * run through the shim (`tests/bed/openzfs_shim.ts`), which does the real work on zfs-fuse; and
 * the same commands on plain zfs-fuse, which has no `encryption` property at all.
 */
import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import { type OpenzfsShim, openzfsShim } from "../bed/openzfs_shim_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "secret data";

interface Fixture {
  pool: TestPool;
  store: S3Store;
  shim: OpenzfsShim;
  dataset: string;
  dir: string;
  /** Writes a file and takes snapshot `snap`; returns the tree's digest at it. */
  snap(snap: string): Promise<Map<string, string>>;
  /** Runs z3 through the shim (COMPRESSOR=none: object bytes are the stream's). */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** An object's metadata. */
  meta(snap: string): Promise<Record<string, string>>;
}

async function withShim(
  s3: S3Env,
  label: string,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(256);
  const shim = await openzfsShim({ estimateFactor: 1.5 });
  let store: S3Store | undefined;
  await withCleanup([() => store?.close(), () => pool.destroy(), () => shim.remove()], async () => {
    store = await freshBucket(s3, label);
    const theStore = store;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    let n = 0;
    await fn({
      pool,
      store: theStore,
      shim,
      dataset,
      dir,
      async snap(snap) {
        await Deno.writeFile(`${dir}/file ${++n}.bin`, pseudoRandom(96 * 1024, n));
        await pool.snapshot(DATA, snap);
        return await treeDigest(dir);
      },
      z3: (args, env = {}) =>
        runZ3(args, {
          ...childEnv(s3, theStore.bucket),
          FILESYSTEM: dataset,
          COMPRESSOR: "none",
          Z3_ZFS_COMMAND: shim.path,
          ...env,
        }),
      async meta(snap) {
        const info = await theStore.head(`z3-backup/${dataset}@${snap}`);
        assert.ok(info, `object of ${snap}`);
        return info.metadata;
      },
    });
  });
}

/** The send argvs the shim saw (estimates included), each as given by z3. */
async function sends(shim: OpenzfsShim): Promise<string[][]> {
  return (await shim.log()).filter((l) => l.argv[0] === "send").map((l) => l.argv);
}

integration(
  "an encrypted dataset goes up raw (send -w, z3-send-flags -w) and restores byte for byte, with the load-key hint",
  async (bed) => {
    await withShim(bed.s3, "oz-raw", async (f) => {
      await f.shim.setEncryption(f.dataset, "aes-256-gcm");
      await f.snap("s1");
      const s2 = await f.snap("s2");
      ok(await f.z3(["backup", "--snapshot", "s1"]));
      ok(await f.z3(["backup"]));
      assert.equal((await f.meta("s1"))["z3-send-flags"], "-w");
      assert.equal((await f.meta("s2"))["z3-send-flags"], "-w");
      const sent = (await sends(f.shim)).filter((a) => !a.includes("-n"));
      assert.deepEqual(sent, [
        ["send", "-w", `${f.dataset}@s1`],
        ["send", "-w", "-i", `${f.dataset}@s1`, `${f.dataset}@s2`],
      ]);
      // The estimate is 2.x's `send -nvP` (with -w) from the real stream, times 1.5.
      const info = await f.store.head(`z3-backup/${f.dataset}@s1`);
      assert.equal(info?.metadata.size, String(Math.round(info!.size * 1.5)));
      assert.ok(
        (await sends(f.shim)).some((a) => a.join(" ") === `send -n -v -P -w ${f.dataset}@s1`),
      );

      const target = `${f.pool.name}/restored`;
      const restored = await f.z3(["restore", "s2", "--target", target]);
      ok(restored);
      assert.match(restored.stderr, /zfs load-key "[^"]*\/restored"/);
      const receives = (await f.shim.log()).filter((l) => l.argv[0] === "receive");
      assert.deepEqual(receives.map((l) => l.argv), [["receive", target], ["receive", target]]);
      assert.deepEqual(receives.map((l) => l.received?.raw), [true, true]);
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/restored`), s2);

      // verify --zfs receives the raw chain with a plain `zfs receive -u` (no -w, no key asked
      // for, nothing mounted).
      const before = (await f.shim.log()).length;
      const verified = await f.z3(["verify", "--zfs", f.pool.name]);
      ok(verified);
      const checks = (await f.shim.log()).slice(before).filter((l) => l.argv[0] === "receive");
      assert.equal(checks.length, 2, verified.stderr);
      assert.ok(
        checks.every((l) => l.argv.length === 3 && l.argv[1] === "-u" && l.received?.raw),
        verified.stderr,
      );
      assert.doesNotMatch(verified.stderr, /load-key/);
    });
  },
);

integration(
  "a raw stream never goes onto a non-raw one: backup refuses mid-chain (exit 5, says --full), restore refuses before zfs runs",
  async (bed) => {
    await withShim(bed.s3, "oz-mix", async (f) => {
      await f.snap("s1");
      ok(await f.z3(["backup"]));
      assert.equal((await f.meta("s1"))["z3-send-flags"], undefined, "plain send, no flags");
      // The shim's dataset turns encrypted: the next send must be raw, on top of a plain s1.
      await f.shim.setEncryption(f.dataset, "aes-256-gcm");
      await f.snap("s2");
      failure(await f.z3(["backup"]), 5, /on top of ".*@s1": it was sent not raw.*--full/);
      assert.equal(await f.store.head(`z3-backup/${f.dataset}@s2`), undefined);
      ok(await f.z3(["backup", "--full"]));
      assert.equal((await f.meta("s2"))["z3-send-flags"], "-w");

      const target = `${f.pool.name}/plain`;
      ok(await f.z3(["restore", "s1", "--target", target]));
      const before = (await f.shim.log()).length;
      failure(
        await f.z3(["restore", "s2", "--target", target, "--force"]),
        5,
        /Cannot restore ".*@s2" into ".*\/plain": it is a raw .*Can't perform a raw receive on top of a non-raw receive/,
      );
      const after = (await f.shim.log()).slice(before);
      assert.ok(after.every((l) => l.argv[0] !== "receive"), "zfs receive never ran");
    });
  },
);

integration(
  "SEND_FLAGS reaches zfs send and metadata, --dry-run shows the argv, -L may not change mid-chain, others exit 2",
  async (bed) => {
    await withShim(bed.s3, "oz-flags", async (f) => {
      await f.snap("s1");
      ok(await f.z3(["backup"], { SEND_FLAGS: "-c -L" }));
      assert.equal((await f.meta("s1"))["z3-send-flags"], "-L -c");
      const s2 = await f.snap("s2");
      const dry = ok(await f.z3(["backup", "--dry-run", "--send-flags=-Lc"]));
      assert.match(dry[0], /\/zfs send -L -c -i '[^']*@s1' '[^']*@s2' \| upload s3:\/\//);
      assert.match(dry[1], /\/zfs hold z3:[0-9a-f]{12} '[^']*@s2'$/);
      assert.match(dry[2], /\/zfs release z3:[0-9a-f]{12} '[^']*@s1'$/);
      // ... and the bookmark a real run makes of s2 and the one of s1 it destroys.
      assert.match(dry[3], /\/zfs bookmark '[^']*@s2' '[^']*#z3-[0-9a-f]{12}-s2'$/);
      assert.match(dry[4], /\/zfs destroy '[^']*#z3-[0-9a-f]{12}-s1'$/);
      assert.equal(dry.length, 5);
      assert.deepEqual(
        (await f.shim.log()).filter((l) => l.argv[0] === "bookmark").length,
        1,
        "--dry-run makes no bookmark",
      );
      failure(
        await f.z3(["backup"], { SEND_FLAGS: "-c" }),
        5,
        /-L \(--large-block\), to match previous receive.*z3 backup --full/,
      );
      failure(await f.z3(["backup"], { SEND_FLAGS: "-L -R" }), 2, /SEND_FLAGS .*"-R"/);
      ok(await f.z3(["backup"], { SEND_FLAGS: "-L" })); // -c may change, -L stays
      assert.equal((await f.meta("s2"))["z3-send-flags"], "-L");
      const real = (await sends(f.shim)).filter((a) => !a.includes("-n"));
      assert.deepEqual(real.map((a) => a.slice(0, 3)), [["send", "-L", "-c"], [
        "send",
        "-L",
        "-i",
      ]]);
      ok(await f.z3(["restore", "s2", "--target", `${f.pool.name}/back`]));
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back`), s2);
    });
  },
);

integration(
  "on plain zfs-fuse (no encryption property) the dataset counts as unencrypted: plain send, no flags recorded, restore equal",
  async (bed) => {
    await withShim(bed.s3, "oz-fuse", async (f) => {
      // zfs-fuse itself refuses the property ("bad property list: invalid property
      // 'encryption'"): getEncryption() must read that as off.
      assert.equal(await zfs.getEncryption(f.dataset), "off");
      const s1 = await f.snap("s1");
      const plain = { Z3_ZFS_COMMAND: undefined };
      ok(await f.z3(["backup"], plain));
      assert.equal((await f.meta("s1"))["z3-send-flags"], undefined);
      assert.equal((await f.meta("s1")).size, undefined, "zfs-fuse has no send -nvP");
      ok(await f.z3(["restore", "s1", "--target", `${f.pool.name}/back`], plain));
      assert.deepEqual(await treeDigest(`${f.pool.mountpoint}/back`), s1);
      assert.deepEqual(await f.shim.log(), [], "the shim never ran");
    });
  },
);
