import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";

/** A dataset name with a space, so that any shell or argv slip shows. */
const DATA = "my data";

interface Fixture {
  pool: TestPool;
  store: S3Store;
  dataset: string;
  dir: string;
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
}

async function withFixture(
  s3: S3Env,
  label: string,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(256);
  let store: S3Store | undefined;
  await withCleanup([() => store?.close(), () => pool.destroy()], async () => {
    store = await freshBucket(s3, label);
    const bucket = store.bucket;
    const dir = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    await fn({
      pool,
      store,
      dataset,
      dir,
      z3: (args, env = {}) => runZ3(args, { ...childEnv(s3, bucket), FILESYSTEM: dataset, ...env }),
    });
  });
}

/** Asserts exit `code` with nothing but the result on stdout (no `z3:` error line). */
function exits(result: CliResult, code: number): string[] {
  assert.deepEqual(
    result.code,
    code,
    `exit status; stdout: ${result.stdout} stderr: ${result.stderr}`,
  );
  assert.doesNotMatch(result.stderr, /^z3: /m, "check reports, it does not fail");
  return result.stdout.trimEnd().split("\n");
}

async function snapshotWithData(f: Fixture, snap: string, seed: number) {
  await Deno.writeFile(`${f.dir}/${snap}.bin`, pseudoRandom(64 * 1024, seed));
  await f.pool.snapshot(DATA, snap);
}

integration("z3 check is STALE (exit 9) on an empty bucket, without running zfs", async (bed) => {
  const store = await freshBucket(bed.s3, "check-empty");
  await withCleanup([() => store.close()], async () => {
    const env = { ...childEnv(bed.s3, store.bucket), FILESYSTEM: "tank/nowhere" };
    const lines = exits(await runZ3(["check"], env), 9);
    assert.deepEqual(lines, ["STALE\ttank/nowhere\t-\tno healthy backup in the bucket"]);
    const json = JSON.parse(exits(await runZ3(["check", "--json"], env), 9).join("\n"));
    assert.deepEqual(json, {
      datasets: [{
        dataset: "tank/nowhere",
        state: "STALE",
        maxAgeSeconds: 26 * 3600,
        detail: "no healthy backup in the bucket",
      }],
    });
  });
}, { zfs: false });

integration(
  "z3 check is OK (exit 0) after a backup, STALE (exit 9) past --max-age",
  async (bed) => {
    await withFixture(bed.s3, "check-fresh", async (f) => {
      await snapshotWithData(f, "s1", 1);
      // The snapshot is 3 s older than its upload, so which of the two check counts from shows.
      await new Promise((r) => setTimeout(r, 3000));
      ok(await f.z3(["backup"]));
      const [line] = exits(await f.z3(["check"]), 0);
      assert.match(line, new RegExp(`^OK\\t${f.dataset}\\t\\d+s\\tnewest ${f.dataset}@s1$`));
      const json = JSON.parse(
        exits(await f.z3(["check", "--json", "--max-age", "1h"]), 0).join("\n"),
      );
      assert.deepEqual(json.datasets.length, 1);
      assert.deepEqual(json.datasets[0].state, "OK");
      assert.deepEqual(json.datasets[0].newest, `${f.dataset}@s1`);
      assert.deepEqual(json.datasets[0].maxAgeSeconds, 3600);
      // The upload time (LastModified), not the snapshot's creation.
      const created = Number(
        (await run(["zfs", "get", "-Hp", "-o", "value", "creation", `${f.dataset}@s1`])).trim(),
      );
      const uploaded = Date.parse(json.datasets[0].uploaded) / 1000;
      assert.ok(uploaded >= created + 2, `uploaded ${uploaded}, created ${created}`);

      await new Promise((r) => setTimeout(r, 2000));
      const [stale] = exits(await f.z3(["check", "--max-age", "1s"]), 9);
      assert.match(
        stale,
        new RegExp(`^STALE\\t${f.dataset}\\t\\d+s\\tnewest ${f.dataset}@s1 is older than 1s$`),
      );
      // Seconds as `cleanup --max-age` takes them, and a bad one is a usage error.
      exits(await f.z3(["check", "--max-age", "90s"]), 0);
      const bad = await f.z3(["check", "--max-age", "soon"]);
      assert.deepEqual(bad.code, 2);
      assert.match(bad.stderr, /^z3: Cannot parse --max-age "soon": /m);
    });
  },
);

integration(
  "z3 check is BROKEN (exit 5) when a middle object of the chain is gone",
  async (bed) => {
    await withFixture(bed.s3, "check-broken", async (f) => {
      for (const [i, snap] of ["s1", "s2", "s3"].entries()) await snapshotWithData(f, snap, i + 1);
      ok(await f.z3(["backup"]));
      exits(await f.z3(["check"]), 0);
      await f.store.delete(`z3-backup/${f.dataset}@s2`);
      const [line] = exits(await f.z3(["check"]), 5);
      // s1 is still healthy (the newest one that is); s3 lost its parent.
      assert.match(
        line,
        new RegExp(
          `^BROKEN\\t${f.dataset}\\t\\d+s\\t1 object\\(s\\) of a broken chain, first missing parent: ` +
            `"${f.dataset}@s3" needs "${f.dataset}@s2", which is not in the bucket$`,
        ),
      );
    });
  },
);

integration("z3 check is BROKEN (exit 5) when an object's check record is gone", async (bed) => {
  await withFixture(bed.s3, "check-record", async (f) => {
    await snapshotWithData(f, "s1", 1);
    ok(await f.z3(["backup"]));
    await f.store.delete(`z3-backup.z3/${f.dataset}@s1`);
    const [line] = exits(await f.z3(["check"]), 5);
    assert.match(
      line,
      new RegExp(
        `^BROKEN\\t${f.dataset}\\t-\\t1 object\\(s\\) of a broken chain, first record missing: `,
      ),
    );
  });
});
