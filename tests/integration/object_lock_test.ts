/**
 * S3 Object Lock against the real Ceph gateway: every object z3 writes is locked, ancestors are
 * extended so a chain cannot be cut, prune keeps what is locked and deletes expired versions for
 * good, and a bucket without Object Lock is refused before anything is uploaded. Locks are
 * GOVERNANCE only, so the bed can remove them (bypass, in setup and teardown only).
 */

import assert from "node:assert/strict";
import {
  GetObjectRetentionCommand,
  ListObjectVersionsCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { type CliResult, runPput, runZ3, spawnPput } from "../bed/cli.ts";
import { faultProxy } from "../bed/fault_proxy.ts";
import { failure, ok } from "../bed/expect.ts";
import { rewriteProxy } from "../bed/rewrite_proxy.ts";
import { pseudoRandom } from "../bed/files.ts";
import { childEnv, freshBucket, freshLockedBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { S3RequestError } from "../../lib/backend/s3.ts";
import { deleteVersions } from "../../lib/repository/prune_versions.ts";
import { createHash } from "node:crypto";

const DATA = "my data";
const DAY = 86_400_000;
/** How far a lock date may be from the one expected (the run's own clock, the request time). */
const SLACK = 10 * 60_000;

interface Fixture {
  pool: TestPool;
  store: S3Store;
  client: S3Client;
  dataset: string;
  dir: string;
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** Object key and check-record key of `snap`. */
  keys(snap: string): { object: string; record: string };
}

/** A lock-enabled bucket and a plain client for it, removed after (pput tests need no pool). */
async function withLockedBucket(
  s3: S3Env,
  label: string,
  fn: (f: Pick<Fixture, "client" | "store">) => Promise<void>,
): Promise<void> {
  const client = new S3Client({
    endpoint: s3.S3_ENDPOINT,
    region: s3.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.S3_KEY_ID, secretAccessKey: s3.S3_SECRET },
  });
  let bucket: Awaited<ReturnType<typeof freshLockedBucket>> | undefined;
  await withCleanup([
    () => bucket?.store.close(),
    () => bucket?.remove(),
    () => client.destroy(),
  ], async () => {
    bucket = await freshLockedBucket(s3, label);
    await fn({ client, store: bucket.store });
  });
}

async function withLockedFixture(
  s3: S3Env,
  label: string,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const pool = await createPool(256);
  await withCleanup(
    [() => pool.destroy()],
    () =>
      withLockedBucket(s3, label, async ({ client, store }) => {
        const dir = await pool.createDataset(DATA);
        const dataset = `${pool.name}/${DATA}`;
        await fn({
          pool,
          store,
          client,
          dataset,
          dir,
          z3: (args, env = {}) =>
            runZ3(args, {
              ...childEnv(s3, store.bucket),
              FILESYSTEM: dataset,
              COMPRESSOR: "none",
              CHUNK_SIZE: "5M",
              HOLD: "false",
              ...env,
            }),
          keys: (snap) => ({
            object: `z3-backup/${dataset}@${snap}`,
            record: `z3-backup.z3/${dataset}@${snap}`,
          }),
        });
      }),
  );
}

async function snapshotWithData(f: Fixture, snap: string, bytes: number, seed: number) {
  await Deno.writeFile(`${f.dir}/${snap}.bin`, pseudoRandom(bytes, seed));
  await f.pool.snapshot(DATA, snap);
}

/** The retention of `key`'s current version (or `versionId`), as `aws s3api get-object-retention` shows it. */
async function retentionOf(
  f: Pick<Fixture, "client" | "store">,
  key: string,
  versionId?: string,
) {
  try {
    const out = await f.client.send(
      new GetObjectRetentionCommand({ Bucket: f.store.bucket, Key: key, VersionId: versionId }),
    );
    return { mode: out.Retention?.Mode, until: out.Retention?.RetainUntilDate?.getTime() ?? 0 };
  } catch (err) {
    // Ceph 16's answer for an object without retention.
    if ((err as Error).name !== "ObjectLockConfigurationNotFoundError") throw err;
    return { mode: undefined, until: 0 };
  }
}

function near(actual: number, expected: number, what: string) {
  assert.ok(
    Math.abs(actual - expected) < SLACK,
    `${what}: ${new Date(actual).toISOString()}, expected about ${
      new Date(expected).toISOString()
    }`,
  );
}

/** Shortens a retention with the governance bypass: test setup only, never z3. */
async function shorten(f: Fixture, key: string, until: Date) {
  await f.client.send(
    new PutObjectRetentionCommand({
      Bucket: f.store.bucket,
      Key: key,
      Retention: { Mode: "GOVERNANCE", RetainUntilDate: until },
      BypassGovernanceRetention: true,
    }),
  );
}

integration(
  "backup with OBJECT_LOCK_DAYS locks every object and its check record, leaves no pending record, and extends the ancestors",
  async (bed) => {
    await withLockedFixture(bed.s3, "lock-backup", async (f) => {
      // 7 MiB of noise in 5 MiB parts: s1 is a multipart upload, s2 a single PutObject.
      await snapshotWithData(f, "s1", 7 * 1024 * 1024, 1);
      const t1 = Date.now();
      ok(await f.z3(["backup"], { OBJECT_LOCK_DAYS: "1" }));
      for (const key of Object.values(f.keys("s1"))) {
        const r = await retentionOf(f, key);
        assert.equal(r.mode, "GOVERNANCE", key);
        near(r.until, t1 + DAY, key);
      }
      // The full's properties sidecar (for restore --properties) is locked like its full.
      const properties = `${f.keys("s1").record}#properties`;
      const p = await retentionOf(f, properties);
      assert.equal(p.mode, "GOVERNANCE", properties);
      near(p.until, t1 + DAY, properties);
      // The pending record of the multipart upload is written unlocked (it protects nothing once
      // the upload completes) and deleted for good: no version and no delete marker is left.
      const pendingKey = `${f.keys("s1").record}#upload`;
      const versions = await f.client.send(
        new ListObjectVersionsCommand({ Bucket: f.store.bucket, Prefix: pendingKey }),
      );
      assert.deepEqual(versions.Versions ?? [], [], "no version of the pending record");
      assert.deepEqual(versions.DeleteMarkers ?? [], [], "no delete marker of the pending record");

      await snapshotWithData(f, "s2", 64 * 1024, 2);
      const t2 = Date.now();
      const second = await f.z3(["backup"], { OBJECT_LOCK_DAYS: "2" });
      ok(second);
      const s2 = await retentionOf(f, f.keys("s2").object);
      near(s2.until, t2 + 2 * DAY, "s2");
      for (const key of [...Object.values(f.keys("s1")), f.keys("s2").record]) {
        const r = await retentionOf(f, key);
        assert.equal(r.mode, "GOVERNANCE", key);
        assert.ok(r.until >= s2.until, `${key} is locked at least as long as s2`);
      }
      assert.match(
        second.stderr,
        /object lock: extended the retention of 1 ancestor\(s\) to \S+ \(2 PutObjectRetention request\(s\)\)/,
      );

      // The dry run says what lock a third backup would set, and that two ancestors need it.
      await snapshotWithData(f, "s3", 64 * 1024, 3);
      const dry = ok(await f.z3(["backup", "--dry-run"], { OBJECT_LOCK_DAYS: "3" }));
      assert.ok(
        dry.some((l) =>
          /^object lock: GOVERNANCE until \S+ on each new object and its check record; 2 ancestor\(s\) to extend$/
            .test(l)
        ),
        dry.join("\n"),
      );
      // The same with --json, as data; the step builds on s2.
      const t = Date.now();
      const data = JSON.parse(
        ok(await f.z3(["backup", "--dry-run", "--json"], { OBJECT_LOCK_DAYS: "3" })).join("\n"),
      ) as {
        lock: { mode: string; until: string; ancestorsToExtend: number };
        steps: { snapshot: string; parent?: string }[];
      };
      assert.equal(data.lock.mode, "GOVERNANCE");
      assert.equal(data.lock.ancestorsToExtend, 2);
      near(Date.parse(data.lock.until), t + 3 * DAY, "the dry run's lock");
      assert.deepEqual(data.steps.map((s) => [s.snapshot, s.parent]), [
        [`${f.dataset}@s3`, `${f.dataset}@s2`],
      ]);

      // status shows each object's lock as the server holds it; verify finds the chain whole.
      const rows = JSON.parse(ok(await f.z3(["status", "--json"])).join("\n"));
      for (const snap of ["s1", "s2"]) {
        const row = rows.find((r: { name: string }) => r.name === snap);
        const r = await retentionOf(f, f.keys(snap).object);
        assert.equal(row.lockMode, "GOVERNANCE", snap);
        assert.equal(row.lockUntil, new Date(r.until).toISOString(), snap);
      }
      assert.equal(rows.find((r: { name: string }) => r.name === "s3").lockMode, undefined);
      const table = ok(await f.z3(["status"]));
      assert.match(table[0], / \| LOCK$/);
      assert.match(table.find((l) => l.startsWith("s1 "))!, / \| GOVERNANCE until \S+Z$/);
      ok(await f.z3(["verify"]));

      // s1 locked for less than s2, which builds on it (bypass, test setup only): verify says so.
      await shorten(f, f.keys("s1").object, new Date(Date.now() + 3_600_000));
      const short = await f.z3(["verify"]);
      assert.equal(short.code, 6, short.stderr);
      const s1Line = short.stdout.split("\n").find((l) => l.startsWith(`${f.dataset}@s1\t`));
      assert.match(
        s1Line ?? "",
        /\tunprotected\tits retention \(GOVERNANCE until \S+\) ends before that of "[^"]+@s2"/,
      );
      assert.match(short.stdout, /@s2\tok\t/);
      // GOVERNANCE locks where OBJECT_LOCK_MODE asks COMPLIANCE: the dates suffice, the mode not.
      const mode = await f.z3(["verify"], { OBJECT_LOCK_MODE: "compliance" });
      assert.equal(mode.code, 6, mode.stderr);
      assert.match(
        mode.stdout,
        /@s2\tunprotected\tits retention \(GOVERNANCE until \S+\) is GOVERNANCE, but OBJECT_LOCK_MODE is COMPLIANCE/,
      );

      // The server itself refuses to delete a locked version.
      const info = await f.store.head(f.keys("s1").object);
      await assert.rejects(
        () => f.store.deleteVersion(f.keys("s1").object, info!.versionId!),
        (err) => err instanceof S3RequestError && err.status === 403,
      );
    });
  },
);

integration(
  "backup with OBJECT_LOCK_DAYS refuses a bucket without Object Lock before anything is uploaded (exit 2)",
  async (bed) => {
    const store = await freshBucket(bed.s3, "lock-none");
    await withCleanup([() => store.close()], async () => {
      const result = await runZ3(["backup"], {
        ...childEnv(bed.s3, store.bucket),
        FILESYSTEM: "tank/nowhere",
        OBJECT_LOCK_DAYS: "7",
      });
      failure(
        result,
        2,
        new RegExp(
          `^z3: Cannot lock backups in bucket "${store.bucket}": Object Lock is not enabled on it`,
        ),
      );
      assert.deepEqual(await Array.fromAsync(store.list("")), [], "nothing was uploaded");
      assert.deepEqual(await Array.fromAsync(store.listMultipartUploads("")), []);
    });
  },
  { zfs: false },
);

/** Backs up s1 (full) and s2 (incremental), then s3 as a new full, all locked for a day. */
async function lockedChainThenNewFull(f: Fixture) {
  await snapshotWithData(f, "s1", 64 * 1024, 1);
  await snapshotWithData(f, "s2", 64 * 1024, 2);
  ok(await f.z3(["backup", "--snapshot", "s2"], { OBJECT_LOCK_DAYS: "1" }));
  await snapshotWithData(f, "s3", 64 * 1024, 3);
  ok(await f.z3(["backup", "--full"], { OBJECT_LOCK_DAYS: "1" }));
}

/** Every version and delete marker of exactly `key`. */
async function versionsOf(f: Fixture, key: string) {
  const out = await f.client.send(
    new ListObjectVersionsCommand({ Bucket: f.store.bucket, Prefix: key }),
  );
  return [...(out.Versions ?? []), ...(out.DeleteMarkers ?? [])].filter((v) => v.Key === key);
}

integration(
  "prune after a new full keeps the old chain while it is locked, says why, and exits 0",
  async (bed) => {
    await withLockedFixture(bed.s3, "lock-prune-keep", async (f) => {
      await lockedChainThenNewFull(f);
      for (const args of [["prune", "--dry-run"], ["prune"]]) {
        const result = await f.z3(args, { KEEP_LAST: "1" });
        const lines = ok(result);
        assert.equal(lines.length, 3, result.stdout);
        for (const snap of ["s1", "s2"]) {
          const line = lines.find((l) => l.startsWith(`keep\t${f.dataset}@${snap}\t`));
          assert.match(line ?? "", /\tlocked until \d{4}-\d\d-\d\dT\S+Z/, `${args}: ${snap}`);
        }
        assert.ok(
          lines.includes(
            `keep\t${f.dataset}@s3\tlast, locked until ${
              new Date((await retentionOf(f, f.keys("s3").object)).until).toISOString()
            }`,
          ),
          result.stdout,
        );
        assert.doesNotMatch(result.stderr, /deleting/, "nothing locked is even tried");
      }
      for (const snap of ["s1", "s2", "s3"]) {
        assert.ok(await f.store.head(f.keys(snap).object), `${snap} is still there`);
        assert.ok(await f.store.head(f.keys(snap).record), `${snap}'s record is still there`);
      }
    });
  },
);

integration(
  "prune deletes an expired chain for good (every version, no delete marker) and keeps the locked one",
  async (bed) => {
    await withLockedFixture(bed.s3, "lock-prune-expired", async (f) => {
      await lockedChainThenNewFull(f);
      // The old chain's retention ends in two seconds (governance bypass: test setup only).
      const soon = new Date(Date.now() + 2_000);
      for (const snap of ["s1", "s2"]) {
        for (const key of Object.values(f.keys(snap))) await shorten(f, key, soon);
      }
      const properties = `${f.keys("s1").record}#properties`;
      await shorten(f, properties, soon);
      await new Promise((r) => setTimeout(r, 3_000));
      const result = await f.z3(["prune"], { KEEP_LAST: "1" });
      const lines = ok(result);
      assert.ok(lines.includes(`delete\t${f.dataset}@s1\t`), result.stdout);
      assert.ok(lines.includes(`delete\t${f.dataset}@s2\t`), result.stdout);
      assert.match(
        lines.find((l) => l.includes("@s3")) ?? "",
        /^keep\t[^\t]+@s3\tlast, locked until /,
      );
      for (const snap of ["s1", "s2"]) {
        for (const key of Object.values(f.keys(snap))) {
          assert.deepEqual(await versionsOf(f, key), [], `no version of ${key} is left`);
        }
      }
      assert.deepEqual(await versionsOf(f, properties), [], "no version of s1's properties left");
      assert.equal((await versionsOf(f, f.keys("s3").object)).length, 1);
      assert.equal((await versionsOf(f, f.keys("s3").record)).length, 1);
    });
  },
);

integration(
  "deleteVersions() keeps a locked current version, and hides a locked noncurrent one under a delete marker",
  async (bed) => {
    const { store, remove } = await freshLockedBucket(bed.s3, "lock-versions");
    await withCleanup([() => store.close(), () => remove()], async () => {
      const body = new TextEncoder().encode("bytes\n");
      const md5 = createHash("md5").update(body).digest("base64");
      const lock = { mode: "GOVERNANCE" as const, until: new Date(Date.now() + 3_600_000) };
      const options = { attempts: 1 };

      // A locked current version: refused by the server, kept, its noncurrent one deleted.
      await store.put("a", body, md5);
      await store.put("a", body, md5, { lock });
      const a = await store.head("a");
      const kept = await deleteVersions(store, "a", a!.versionId, options);
      assert.match(kept.refused ?? "", /AccessDenied \(HTTP 403\)/);
      assert.equal((await store.head("a"))?.versionId, a!.versionId, "still the current version");
      assert.deepEqual((await store.versions("a")).map((v) => v.versionId), [a!.versionId]);

      // A locked noncurrent version under an expired current one: the current one goes for
      // good, the locked one stays, but under a delete marker, never current again.
      await store.put("b", body, md5, { lock });
      await store.put("b", body, md5);
      const b = await store.head("b");
      assert.deepEqual(await deleteVersions(store, "b", b!.versionId, options), { stuck: 1 });
      assert.equal(await store.head("b"), undefined, "the key is gone from listings");
      const left = await store.versions("b");
      assert.equal(left.length, 2);
      assert.ok(left.find((v) => v.isLatest)?.deleteMarker, "a delete marker on top");
      assert.ok(!left.some((v) => v.versionId === b!.versionId), "the expired version is gone");

      // A key that changed since it was listed is left alone.
      const changed = await deleteVersions(store, "a", "some-other-version", options);
      assert.match(changed.refused ?? "", /changed since it was listed/);
    });
  },
  { zfs: false },
);

integration(
  "prune keeps an object whose delete the server refuses (the bucket said its lock had ended), and what it builds on",
  async (bed) => {
    await withLockedFixture(bed.s3, "lock-prune-refused", async (f) => {
      await lockedChainThenNewFull(f);
      // The lock headers of s1 and s2 claim a date long past; the server still holds them.
      const proxy = rewriteProxy(bed.s3.S3_ENDPOINT, (req, res) => {
        const path = decodeURIComponent(req.target.split("?")[0]);
        if (req.method !== "HEAD" || !/@s[12]$/.test(path)) return;
        res.headers = res.headers.map(([name, value]) =>
          name.toLowerCase() === "x-amz-object-lock-retain-until-date"
            ? [name, "2000-01-01T00:00:00.000Z"]
            : [name, value]
        );
      });
      try {
        const result = await f.z3(["prune"], { KEEP_LAST: "1", HOST: proxy.endpoint });
        const lines = ok(result);
        assert.match(
          lines.find((l) => l.startsWith(`keep\t${f.dataset}@s2\t`)) ?? "",
          /\tdelete refused: Cannot delete version "[^"]+" of "[^"]+@s2" .*AccessDenied \(HTTP 403\)/,
        );
        assert.ok(
          lines.includes(
            `keep\t${f.dataset}@s1\tneeded by ${f.dataset}@s2, whose delete was refused`,
          ),
          result.stdout,
        );
        assert.doesNotMatch(result.stderr, /deleting [^\n]*@s1/, "s1 was not even tried");
      } finally {
        await proxy.close();
      }
      for (const snap of ["s1", "s2", "s3"]) {
        assert.ok(await f.store.head(f.keys(snap).object), `${snap} is still there`);
        assert.ok(await f.store.head(f.keys(snap).record), `${snap}'s record is still there`);
      }
    });
  },
);

integration(
  "verify --repair with OBJECT_LOCK_DAYS writes the missing check record locked",
  async (bed) => {
    await withLockedFixture(bed.s3, "lock-repair", async (f) => {
      await snapshotWithData(f, "s1", 64 * 1024, 1);
      ok(await f.z3(["backup"], { OBJECT_LOCK_DAYS: "1" }));
      // A plain delete hides the locked record under a delete marker: it reads as missing.
      await f.store.delete(f.keys("s1").record);
      const t = Date.now();
      const repaired = await f.z3(["verify", "--repair"], { OBJECT_LOCK_DAYS: "1" });
      assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr);
      assert.match(repaired.stdout, /@s1\trepaired\t/);
      const r = await retentionOf(f, f.keys("s1").record);
      assert.equal(r.mode, "GOVERNANCE");
      near(r.until, t + DAY, "the record written again");
    });
  },
);

integration(
  "backup never locks weaker than the bucket's default retention rule, and says so",
  async (bed) => {
    await withLockedFixture(bed.s3, "lock-rule", async (f) => {
      await f.client.send(
        new PutObjectLockConfigurationCommand({
          Bucket: f.store.bucket,
          ObjectLockConfiguration: {
            ObjectLockEnabled: "Enabled",
            Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 2 } },
          },
        }),
      );
      await snapshotWithData(f, "s1", 64 * 1024, 1);
      const t = Date.now();
      const result = await f.z3(["backup"], { OBJECT_LOCK_DAYS: "1" });
      ok(result);
      assert.match(
        result.stderr,
        /object lock: the bucket's default rule \(GOVERNANCE, 2 days\) is stricter than OBJECT_LOCK_DAYS=1 OBJECT_LOCK_MODE=GOVERNANCE: using GOVERNANCE, 2 days/,
      );
      for (const key of Object.values(f.keys("s1"))) {
        near((await retentionOf(f, key)).until, t + 2 * DAY, key);
      }
    });
  },
);

integration(
  "pput with OBJECT_LOCK_DAYS locks its multipart object (Ceph ignores the request's headers) and the server refuses its delete",
  async (bed) => {
    await withLockedBucket(bed.s3, "lock-pput", async (f) => {
      const data = pseudoRandom(7 * 1024 * 1024, 3);
      const t = Date.now();
      const result = await runPput(["--chunk-size", "5M", "piped/key"], {
        stdin: data,
        env: { ...childEnv(bed.s3, f.store.bucket), OBJECT_LOCK_DAYS: "1" },
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /"status":"success".*"parts":2/);
      const lock = await retentionOf(f, "piped/key");
      assert.equal(lock.mode, "GOVERNANCE");
      near(lock.until, t + DAY, "piped/key");
      const info = await f.store.head("piped/key");
      assert.equal(info?.size, data.length);
      await assert.rejects(
        () => f.store.deleteVersion("piped/key", info!.versionId!),
        (err) => err instanceof S3RequestError && err.status === 403,
      );
    });
  },
  { zfs: false },
);

integration(
  "pput with OBJECT_LOCK_DAYS counts the object's retention from its creation, not from the start of the run",
  async (bed) => {
    await withLockedBucket(bed.s3, "lock-pput-late", async (f) => {
      const data = pseudoRandom(7 * 1024 * 1024, 5);
      const child = spawnPput(["--chunk-size", "5M", "late/key"], {
        env: { ...childEnv(bed.s3, f.store.bucket), OBJECT_LOCK_DAYS: "1" },
      });
      // The run reads the bucket's lock configuration at once; the object exists 6 s later.
      await child.write(data.subarray(0, 1024 * 1024));
      await new Promise((resolve) => setTimeout(resolve, 6000));
      await child.write(data.subarray(1024 * 1024));
      await child.closeStdin();
      const result = await child.result;
      assert.equal(result.code, 0, result.stderr);
      const info = await f.store.head("late/key");
      const created = info!.lastModified!.getTime();
      const lock = await retentionOf(f, "late/key");
      assert.equal(lock.mode, "GOVERNANCE");
      assert.ok(
        lock.until >= created + DAY,
        `retained until ${new Date(lock.until).toISOString()}, created ${
          info!.lastModified!
            .toISOString()
        }: less than OBJECT_LOCK_DAYS from its creation`,
      );
    });
  },
  { zfs: false },
);

integration(
  "pput with OBJECT_LOCK_DAYS refuses a bucket without Object Lock before it reads stdin (exit 2)",
  async (bed) => {
    const store = await freshBucket(bed.s3, "lock-pput-none");
    await withCleanup([() => store.close()], async () => {
      const result = await runPput(["piped/key"], {
        stdin: new Uint8Array(1024),
        env: { ...childEnv(bed.s3, store.bucket), OBJECT_LOCK_DAYS: "7" },
      });
      failure(
        result,
        2,
        new RegExp(`Cannot lock backups in bucket "${store.bucket}": Object Lock is not enabled`),
        "pput",
      );
      assert.deepEqual(await Array.fromAsync(store.list("")), [], "nothing was uploaded");
      assert.deepEqual(await Array.fromAsync(store.listMultipartUploads("")), []);
    });
  },
  { zfs: false },
);

integration(
  "pput whose object cannot be locked deletes it: no unlocked object is left looking like a success",
  async (bed) => {
    await withLockedBucket(bed.s3, "lock-pput-fail", async (f) => {
      // Ceph 16 leaves a multipart object unlocked, and the proxy refuses PutObjectRetention.
      const proxy = faultProxy(bed.s3.S3_ENDPOINT, {
        faults: (req) =>
          req.method === "PUT" && req.query.has("retention")
            ? { kind: "error", status: 403, code: "AccessDenied", message: "Access Denied" }
            : undefined,
      });
      try {
        const result = await runPput(["--chunk-size", "5M", "piped/key"], {
          stdin: pseudoRandom(7 * 1024 * 1024, 4),
          env: {
            ...childEnv(bed.s3, f.store.bucket),
            HOST: proxy.endpoint,
            OBJECT_LOCK_DAYS: "1",
          },
        });
        failure(result, 4, /AccessDenied.*; the object was deleted$/, "pput");
        assert.equal(result.stdout, "", "no success line");
      } finally {
        await proxy.close();
      }
      const versions = await f.client.send(
        new ListObjectVersionsCommand({ Bucket: f.store.bucket, Prefix: "piped/" }),
      );
      assert.deepEqual(versions.Versions ?? [], [], "no version of the object is left");
    });
  },
  { zfs: false },
);
