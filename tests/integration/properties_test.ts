/**
 * Local properties, for real on zfs-fuse and through the OpenZFS 2.x shim (which passes `get` and
 * `set` to zfs-fuse): backup stores them beside each full (`.z3/…#properties`),
 * `restore --properties` sets them on the target (a user property or one off its list when named
 * with `--property`); one the target refuses is a warning line.
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
import { propertiesKey } from "../../lib/pipeline/properties.ts";
import { toBase64 } from "../../lib/base/hex.ts";
import { createHash } from "node:crypto";

const get = async (property: string, dataset: string) =>
  (await run(["zfs", "get", "-H", "-o", "value", property, dataset])).trim();

for (const via of ["zfs-fuse", "the OpenZFS shim"] as const) {
  integration(
    `restore --properties sets the full's stored local properties (compression, a user property); a refused one is a warning (${via})`,
    async (bed) => {
      const pool = await createPool(256);
      const shim: OpenzfsShim | undefined = via === "zfs-fuse" ? undefined : await openzfsShim();
      let store: S3Store | undefined;
      const cleanup = [
        () => store?.close(),
        () => pool.destroy(),
        async () => await shim?.remove(),
      ];
      await withCleanup(cleanup, async () => {
        store = await freshBucket(bed.s3, "props");
        const theStore = store;
        const dir = await pool.createDataset("data");
        const dataset = `${pool.name}/data`;
        await run(["zfs", "set", "compression=on", dataset]);
        await run(["zfs", "set", "z3test:x=1", dataset]);
        // Local now, at the same place: restore must not put the copy there.
        await run(["zfs", "set", `mountpoint=${dir}`, dataset]);
        await Deno.writeFile(`${dir}/f`, pseudoRandom(64 * 1024, 1));
        await pool.snapshot("data", "s1");
        const digest = await treeDigest(dir);
        const z3 = (args: string[]): Promise<CliResult> =>
          runZ3(args, {
            ...childEnv(bed.s3, theStore.bucket),
            FILESYSTEM: dataset,
            ...(shim ? { Z3_ZFS_COMMAND: shim.path } : {}),
          });
        ok(await z3(["backup"]));
        const key = propertiesKey("z3-backup/", `${dataset}@s1`);
        const stored = JSON.parse(await new Response(await theStore.get(key)).text());
        assert.equal(stored.properties.compression, "on");
        assert.equal(stored.properties["z3test:x"], "1");

        // Without --properties the copy has the defaults: a plain stream carries none.
        ok(await z3(["restore", "s1", "--target", `${pool.name}/plain`]));
        assert.equal(await get("compression", `${pool.name}/plain`), "off");
        assert.equal(await get("z3test:x", `${pool.name}/plain`), "-");

        // One the target cannot take (written into the sidecar here) is reported, the rest set.
        stored.properties["nosuchproperty"] = "1";
        const body = new TextEncoder().encode(JSON.stringify(stored));
        await theStore.put(
          key,
          body,
          toBase64(new Uint8Array(createHash("md5").update(body).digest())),
        );
        const target = `${pool.name}/restored`;
        // A user property and one not on the list are set only when named.
        const restored = await z3([
          "restore",
          "s1",
          "--target",
          target,
          "--properties",
          "--property",
          "z3test:x,nosuchproperty",
        ]);
        ok(restored);
        assert.match(restored.stderr, /warning: Cannot set nosuchproperty=1 on "[^"]*restored"/);
        assert.match(restored.stderr, new RegExp(`mountpoint=${dir} not set`));
        assert.notEqual(await get("mountpoint", target), dir);
        assert.equal(await get("compression", target), "on");
        assert.equal(await get("z3test:x", target), "1");
        assert.deepEqual(await treeDigest(`${pool.mountpoint}/restored`), digest);
        if (shim) {
          const log = await shim.log();
          assert.ok(
            log.some((l) =>
              l.argv.join(" ") === `get -H -p -s local -o property,value all ${dataset}`
            ),
          );
          assert.ok(log.some((l) => l.argv.join(" ") === `set compression=on ${target}`));
        }
      });
    },
  );
}

integration(
  "with AGE_RECIPIENTS no properties go to the bucket (they would be plaintext), and one line says so",
  async (bed) => {
    const pool = await createPool(256);
    const tmp = await Deno.makeTempDir({ prefix: "z3-props-age-" });
    let store: S3Store | undefined;
    await withCleanup([
      () => store?.close(),
      () => pool.destroy(),
      () => Deno.remove(tmp, { recursive: true }),
    ], async () => {
      store = await freshBucket(bed.s3, "props-age");
      const dir = await pool.createDataset("data");
      const dataset = `${pool.name}/data`;
      await run(["zfs", "set", "z3test:x=1", dataset]);
      await Deno.writeFile(`${dir}/f`, pseudoRandom(16 * 1024, 1));
      await pool.snapshot("data", "s1");
      await run(["age-keygen", "-o", `${tmp}/key.txt`]);
      const text = await Deno.readTextFile(`${tmp}/key.txt`);
      const recipient = text.match(/# public key: (age1\S+)/)![1];
      const result = await runZ3(["backup"], {
        ...childEnv(bed.s3, store.bucket),
        FILESYSTEM: dataset,
        AGE_RECIPIENTS: recipient,
      });
      ok(result);
      assert.match(result.stderr, /@s1: properties not stored: with AGE_RECIPIENTS/);
      assert.equal(await store.head(propertiesKey("z3-backup/", `${dataset}@s1`)), undefined);
    });
  },
);
