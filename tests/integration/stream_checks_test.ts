/**
 * What the bucket cannot make z3 receive or call ok, on zfs-fuse and Ceph: a `zfs send -p`
 * stream, a stream of another snapshot under an object's GUID, a truncated and an empty object
 * (`restore` refuses before `zfs receive`; `verify` reads every stream through; `status` and
 * `check` never call a 0-byte object ok), and a forged or malformed properties sidecar.
 *
 * The forged objects have the shape of the original z3's (no `z3-version`, so no check record):
 * what an attacker who can write the bucket puts there.
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
import { propertiesKey } from "../../lib/pipeline/properties.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

const DATA = "stream checks";
const KiB = 1024;

interface Fixture {
  pool: TestPool;
  store: S3Store;
  /** `pool/stream checks`, with snapshots s1, s2 (1 MiB more) and s3. */
  dataset: string;
  z3(args: string[]): Promise<CliResult>;
  key(snap: string): string;
  /** `zfs send ARGS`, all of its stdout. */
  send(...args: string[]): Promise<Uint8Array>;
  guid(snap: string): Promise<string>;
  /** Puts `body` at the object key of `snap` with `metadata`, as one PUT. */
  forge(snap: string, body: Uint8Array, metadata: Record<string, string>): Promise<void>;
}

async function withFixture(s3: S3Env, label: string, fn: (f: Fixture) => Promise<void>) {
  const pool = await createPool(256);
  let store: S3Store | undefined;
  await withCleanup([() => store?.close(), () => pool.destroy()], async () => {
    store = await freshBucket(s3, label);
    const theStore = store;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    await Deno.writeFile(`${dir}/first`, pseudoRandom(64 * KiB, 1));
    await pool.snapshot(DATA, "s1");
    await Deno.writeFile(`${dir}/second`, pseudoRandom(1024 * KiB, 2));
    await pool.snapshot(DATA, "s2");
    await Deno.writeTextFile(`${dir}/third`, "s3\n");
    await pool.snapshot(DATA, "s3");
    await fn({
      pool,
      store: theStore,
      dataset,
      z3: (args) => runZ3(args, { ...childEnv(s3, theStore.bucket), FILESYSTEM: dataset }),
      key: (snap) => `z3-backup/${dataset}@${snap}`,
      async send(...args) {
        const out = await new Deno.Command("zfs", { args: ["send", ...args], stdout: "piped" })
          .output();
        assert.ok(out.success, `zfs send ${args.join(" ")}`);
        return out.stdout;
      },
      guid: async (snap) =>
        (await run(["zfs", "get", "-H", "-p", "-o", "value", "guid", `${dataset}@${snap}`]))
          .trim(),
      async forge(snap, body, metadata) {
        const md5 = createHash("md5").update(body).digest("base64");
        await theStore.put(`z3-backup/${dataset}@${snap}`, body, md5, { metadata });
      },
    });
  });
}

/** Snapshots of `dataset`, short names; [] when it does not exist. */
async function snapshotsOf(dataset: string): Promise<string[]> {
  if (!(await zfs.datasetExists(dataset))) return [];
  return (await zfs.listSnapshots(dataset)).map((s) => s.snapshot);
}

integration(
  "restore refuses a zfs send -p stream and a stream of another snapshot before zfs receive runs",
  async (bed) => {
    await withFixture(bed.s3, "sc-refuse", async (f) => {
      // A -p stream (DMU_COMPOUNDSTREAM, carries mountpoint and the like) as a full.
      await f.forge("s1", await f.send("-p", `${f.dataset}@s1`), { isfull: "true" });
      const compound = `${f.pool.name}/compound`;
      failure(
        await f.z3(["restore", "s1", "--target", compound]),
        6,
        /^z3: Cannot accept ".*@s1" as a zfs send stream: it is a replication or property stream/,
      );
      assert.equal(await zfs.datasetExists(compound), false, "no dataset was created");

      // s1 as it should be; s2's object holds s3's incremental under s2's GUIDs.
      await f.forge("s1", await f.send(`${f.dataset}@s1`), {
        isfull: "true",
        "z3-guid": await f.guid("s1"),
      });
      await f.forge("s2", await f.send("-i", "@s1", `${f.dataset}@s3`), {
        parent: `${f.dataset}@s1`,
        "z3-guid": await f.guid("s2"),
        "z3-parent-guid": await f.guid("s1"),
      });
      const target = `${f.pool.name}/copy`;
      assert.deepEqual(ok(await f.z3(["restore", "s1", "--target", target])), [
        `received ${target}@s1`,
      ]);
      failure(
        await f.z3(["restore", "s2", "--target", target]),
        6,
        new RegExp(
          `^z3: Cannot accept ".*@s2" as a zfs send stream: it recreates the snapshot with GUID ` +
            `${await f.guid("s3")}, not the expected ${await f.guid("s2")}`,
        ),
      );
      assert.deepEqual(await snapshotsOf(target), ["s1"], "the target is unchanged");

      // A full under an incremental's name: its fromguid is 0, not the parent's.
      await f.forge("s2", await f.send(`${f.dataset}@s2`), {
        parent: `${f.dataset}@s1`,
        "z3-guid": await f.guid("s2"),
        "z3-parent-guid": await f.guid("s1"),
      });
      failure(
        await f.z3(["restore", "s2", "--target", target]),
        6,
        /as a zfs send stream: it is a full stream, not an incremental from GUID/,
      );
      assert.deepEqual(await snapshotsOf(target), ["s1"], "the target is unchanged");
    });
  },
);

integration(
  "zfs receive -u on zfs-fuse leaves what it received unmounted under a mounted parent",
  async () => {
    const pool = await createPool(128);
    await withCleanup([() => pool.destroy()], async () => {
      const dir = await pool.createDataset("src");
      await Deno.writeTextFile(`${dir}/f`, "x\n");
      await pool.snapshot("src", "s1");
      const stream = await new Deno.Command("zfs", {
        args: ["send", `${pool.name}/src@s1`],
        stdout: "piped",
      }).output();
      const mounted = async (noMount: boolean) => {
        const target = `${pool.name}/${noMount ? "unmounted" : "mounted"}`;
        const receiver = zfs.receive(target, { noMount });
        await ReadableStream.from([stream.stdout]).pipeTo(receiver.stdin!);
        await receiver.done;
        assert.deepEqual(await snapshotsOf(target), ["s1"]);
        return (await run(["zfs", "get", "-H", "-o", "value", "mounted", target])).trim();
      };
      assert.equal(await mounted(false), "yes", "without -u zfs-fuse mounts it");
      assert.equal(await mounted(true), "no");
    });
  },
);

integration(
  "verify reads each stream through: truncated and empty objects are corrupt; status says empty, check BROKEN",
  async (bed) => {
    await withFixture(bed.s3, "sc-verify", async (f) => {
      ok(await f.z3(["backup", "--snapshot", "s1"]));
      const good = await f.z3(["verify", "--json", "--zfs", f.pool.name]);
      assert.equal(good.code, 0, good.stderr);
      const [s1] = JSON.parse(good.stdout) as { state: string; detail: string }[];
      assert.equal(s1.state, "ok");
      assert.match(s1.detail, /stream checked: BEGIN, END and its checksum/);

      // s2: its real incremental cut to its first 500,000 bytes (of about 1 MiB).
      const incremental = await f.send("-i", "@s1", `${f.dataset}@s2`);
      assert.ok(incremental.length > 1_000_000);
      await f.forge("s2", incremental.subarray(0, 500_000), { parent: `${f.dataset}@s1` });
      // s3: a 0-byte full.
      await f.forge("s3", new Uint8Array(0), { isfull: "true" });

      const verified = await f.z3(["verify", "--json"]);
      assert.equal(verified.code, 6, verified.stderr);
      const states = Object.fromEntries(
        (JSON.parse(verified.stdout) as { snapshot: string; state: string; detail: string }[])
          .map((r) => [r.snapshot.split("@")[1], r]),
      );
      assert.equal(states.s1.state, "ok");
      assert.equal(states.s2.state, "corrupt");
      assert.match(states.s2.detail, /ends after 500000 bytes .* without an END record/);
      assert.equal(states.s3.state, "corrupt");
      assert.match(states.s3.detail, /empty object \(0 bytes\)/);

      const status = await f.z3(["status", "--json"]);
      assert.match(status.stdout, /"name": "s3",[^}]*"health": "empty"/);
      const check = await f.z3(["check"]);
      assert.equal(check.code, 5, check.stderr);
      assert.match(check.stdout, /^BROKEN\t/);

      const target = `${f.pool.name}/cut`;
      failure(
        await f.z3(["restore", "s2", "--target", target]),
        6,
        /Cannot accept ".*@s2" as a zfs send stream: it ends after 500000 bytes/,
      );
      await new Promise((r) => setTimeout(r, 1000)); // zfs-fuse settles a failed receive
      assert.deepEqual(await snapshotsOf(target), ["s1"], "s2 was not received");
    });
  },
);

integration(
  "restore --properties sets only its list from a forged sidecar and names the rest; a malformed sidecar exits 6 before any receive",
  async (bed) => {
    await withFixture(bed.s3, "sc-props", async (f) => {
      ok(await f.z3(["backup", "--snapshot", "s1"]));
      const key = propertiesKey("z3-backup/", `${f.dataset}@s1`);
      const putSidecar = async (text: string) => {
        const body = new TextEncoder().encode(text);
        await f.store.put(key, body, createHash("md5").update(body).digest("base64"));
      };
      await putSidecar(JSON.stringify({
        properties: {
          compression: "on",
          sharenfs: "rw=@0.0.0.0/0,no_root_squash",
          setuid: "off",
          devices: "off",
          exec: "off",
          canmount: "noauto",
          "com.sun:auto-snapshot": "false",
        },
      }));
      const get = async (property: string, dataset: string) =>
        (await run(["zfs", "get", "-H", "-o", "value", property, dataset])).trim();
      const forged = `${f.pool.name}/forged`;
      const restored = await f.z3(["restore", "s1", "--target", forged, "--properties"]);
      ok(restored);
      assert.match(
        restored.stderr,
        /not set \(not on the list restore --properties sets; name each with --property NAME to set it\): sharenfs=rw=@0\.0\.0\.0\/0,no_root_squash, setuid=off, devices=off, exec=off, canmount=noauto, com\.sun:auto-snapshot=false/,
      );
      assert.equal(await get("compression", forged), "on");
      assert.equal(await get("sharenfs", forged), "off");
      assert.equal(await get("setuid", forged), "on");
      assert.equal(await get("exec", forged), "on");
      assert.equal(await get("canmount", forged), "on");
      assert.equal(await get("com.sun:auto-snapshot", forged), "-");

      // Named one by one, they are set.
      const named = `${f.pool.name}/named`;
      ok(await f.z3(["restore", "s1", "--target", named, "--property", "setuid,exec"]));
      assert.equal(await get("setuid", named), "off");
      assert.equal(await get("exec", named), "off");
      assert.equal(await get("devices", named), "on");

      await putSidecar(`{"properties": ["compression=on"]}`);
      const malformed = `${f.pool.name}/malformed`;
      failure(
        await f.z3(["restore", "s1", "--target", malformed, "--properties"]),
        6,
        /^z3: Cannot read the properties ".*#properties": not what z3 writes/,
      );
      assert.equal(await zfs.datasetExists(malformed), false, "nothing was received");
    });
  },
);
