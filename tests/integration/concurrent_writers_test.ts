/**
 * Two uploads racing to one key (two hosts backing up one dataset to one prefix): run A's
 * read-back finds run B's completed object. A fails, and B's object stays: z3 deletes only the
 * version it wrote (a versioned bucket), or nothing (a bucket without versioning). Made
 * deterministic by a store that runs B's whole upload when A first reads its object back.
 * And prune, which deletes, takes the dataset's lock before it lists what it plans on.
 */
import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { pseudoRandom } from "../bed/files.ts";
import { childEnv, freshBucket, freshLockedBucket } from "../bed/s3_bed.ts";
import { runZ3 } from "../bed/cli.ts";
import { faultProxy } from "../bed/fault_proxy.ts";
import { IntegrityError } from "../../lib/base/errors.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { uploadStream } from "../../lib/transfer/upload.ts";
import { planSchedule } from "../../lib/transfer/part_size.ts";

const MiB = 1024 * 1024;
const KEY = "z3-backup/pool/data@s1";

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** `store`, except that its first HEAD of `key` runs `first` before it is answered. */
function beforeFirstHead(store: S3Store, key: string, first: () => Promise<unknown>): S3Store {
  let ran = false;
  return new Proxy(store, {
    get(target, name) {
      if (name === "head") {
        return async (k: string, signal?: AbortSignal) => {
          if (k === key && !ran) {
            ran = true;
            await first();
          }
          return await target.head(k, signal);
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Runs A's upload of `a` to KEY, with B's upload of `b` landing between A's write and read-back. */
async function race(store: S3Store, a: Uint8Array, b: Uint8Array) {
  const schedule = planSchedule({ partSize: 5 * MiB });
  let etagB = "";
  const runB = async () => {
    etagB = (await uploadStream(store, KEY, streamOf(b), { schedule, attempts: 1 })).etag;
  };
  const raced = beforeFirstHead(store, KEY, runB);
  const errA = await uploadStream(raced, KEY, streamOf(a), { schedule, attempts: 1 }).then(
    () => undefined,
    (err) => err as Error,
  );
  return { errA, etagB };
}

for (const size of [1024, 6 * MiB]) {
  const how = size < 5 * MiB ? "single PUTs" : "multipart uploads";
  integration(
    `two ${how} racing to one key without versioning: the loser fails and the winner's object stays`,
    async (bed) => {
      const store = await freshBucket(bed.s3, "race-plain");
      try {
        const { errA, etagB } = await race(store, pseudoRandom(size, 1), pseudoRandom(size, 2));
        assert.ok(errA instanceof IntegrityError, `A fails as an integrity error: ${errA}`);
        assert.match(errA.message, new RegExp(`ETag "${etagB}", ${size} bytes.*was left in place`));
        assert.equal((await store.head(KEY))?.etag, etagB, "B's completed object is still there");
      } finally {
        store.close();
      }
    },
    { zfs: false },
  );
}

integration(
  "two multipart uploads racing to one key in a versioned bucket: the loser deletes only its own version",
  async (bed) => {
    const { store, remove } = await freshLockedBucket(bed.s3, "race-versioned");
    try {
      const { errA, etagB } = await race(store, pseudoRandom(6 * MiB, 3), pseudoRandom(6 * MiB, 4));
      assert.ok(errA instanceof IntegrityError, `A fails as an integrity error: ${errA}`);
      assert.match(errA.message, /the version this run wrote \(.+\) was deleted/);
      assert.match(errA.message, /current version \(.+\) is another upload's and was left/);
      const now = await store.head(KEY);
      assert.equal(now?.etag, etagB, "B's completed object is still there");
      const versions = await store.versions(KEY);
      assert.deepEqual(versions.map((v) => v.versionId), [now?.versionId], "only B's version");
    } finally {
      store.close();
      await remove();
    }
  },
  { zfs: false },
);

integration(
  "prune takes the dataset's lock before it lists the bucket: a held lock stops it before any request",
  async (bed) => {
    const store = await freshBucket(bed.s3, "prune-lock");
    const lockDir = await Deno.makeTempDir({ prefix: "z3-prune-lock-" });
    const proxy = faultProxy(bed.s3.S3_ENDPOINT);
    try {
      const dataset = "pool/data";
      // Another run's lock on the dataset, as host_lock.ts takes it: flock on the file, its PID.
      using held = await Deno.open(`${lockDir}/backup-${encodeURIComponent(dataset)}.lock`, {
        create: true,
        write: true,
      });
      await held.lock(true);
      await held.write(new TextEncoder().encode("4242\n"));
      const env = { ...childEnv(bed.s3, store.bucket), HOST: proxy.endpoint };
      const result = await runZ3(["prune", "--keep-last", "1"], {
        ...env,
        FILESYSTEM: dataset,
        Z3_LOCK_DIR: lockDir,
      });
      assert.equal(result.code, 8, result.stderr);
      assert.match(result.stderr, /another z3 run \(pid 4242\) is running/);
      const kinds = proxy.log.map((l) => l.kind);
      assert.ok(!kinds.includes("ListObjects"), `nothing was listed: ${kinds}`);
      assert.ok(!kinds.includes("GetObject"), `no record was read: ${kinds}`);
      await held.unlock();
    } finally {
      await proxy.close();
      store.close();
      await Deno.remove(lockDir, { recursive: true });
    }
  },
  { zfs: false },
);
