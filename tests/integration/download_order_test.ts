/**
 * The parallel download of a restore, end to end on zfs-fuse and Ceph, when its ranges complete
 * out of order: later parts arrive (and are hashed, in the download's MD5 worker) while the first
 * one is held up on the wire; zfs receive must still get the bytes in order, and a part that
 * arrives corrupted meanwhile must be fetched again, not passed on.
 */
import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { ok } from "../bed/expect.ts";
import { runZ3 } from "../bed/cli.ts";
import { type Fault, faultProxy, type ProxiedRequest } from "../bed/fault_proxy.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";

const MiB = 1024 * 1024;
const PART = 5 * MiB;

/** The first byte of a ranged GET of `key`, or undefined for any other request. */
function rangeStart(req: { kind: string; target: string; range?: string }, key: string) {
  if (
    req.kind !== "GetObject" || !decodeURIComponent(req.target.split("?")[0]).endsWith(`/${key}`)
  ) {
    return undefined;
  }
  const m = /^bytes=(\d+)-/.exec(req.range ?? "");
  return m ? Number(m[1]) : undefined;
}

/** How {@linkcode restoreOutOfOrder} holds ranges back. */
interface Hold {
  /** Ranges (by first byte) held back on the wire until released. @default {the first} */
  held?: (start: number) => boolean;
  /** Release once the range starting here has been asked for (and 1.5 s more). @default {part 4} */
  until?: number;
  /** CONCURRENCY of the restore. @default {4} */
  concurrency?: number;
}

/**
 * Backs up 22 MiB of noise in 5 MiB parts (five parts), then restores it through a fault proxy
 * that holds ranges back (`hold`: by default the first, until the next three have been asked for
 * and answered), with `faults` for the other requests; `check` gets the restore's result, whether
 * the tree came back byte for byte, the proxy's log and how many ranged GETs of the object it had
 * seen when it let the held ones go.
 */
async function restoreOutOfOrder(
  s3: S3Env,
  label: string,
  faults: (req: ProxiedRequest, key: string) => Fault | undefined,
  check: (
    r: { code: number; stderr: string },
    same: boolean,
    log: string[],
    rangesBeforeRelease: number,
  ) => void,
  hold: Hold = {},
): Promise<void> {
  const held = hold.held ?? ((start) => start === 0);
  const pool = await createPool(512);
  let store: S3Store | undefined;
  await withCleanup([() => store?.close(), () => pool.destroy()], async () => {
    store = await freshBucket(s3, label);
    const dir = await pool.createDataset("data");
    const dataset = `${pool.name}/data`;
    await Deno.writeFile(`${dir}/noise.bin`, pseudoRandom(22 * MiB, 3));
    await pool.snapshot("data", "s1");
    const source = await treeDigest(dir);
    const env = { ...childEnv(s3, store.bucket), FILESYSTEM: dataset, COMPRESSOR: "none" };
    ok(await runZ3(["backup", "--chunk-size", "5M"], env));
    const key = `z3-backup/${dataset}@s1`;
    let holding = true;
    const proxy = faultProxy(s3.S3_ENDPOINT, {
      faults: (req) => {
        const start = rangeStart({ ...req, range: req.headers.get("range") }, key);
        return holding && start !== undefined && held(start)
          ? { kind: "stall", ms: 60_000 }
          : faults(req, key);
      },
    });
    try {
      const target = `${pool.name}/restored`;
      const running = runZ3(["restore", "s1", "--target", target], {
        ...env,
        HOST: proxy.endpoint,
        CHUNK_SIZE: "5M",
        CONCURRENCY: String(hold.concurrency ?? 4),
      });
      // By default parts 2 to 4 are asked for alongside part 1; give them time to arrive, then
      // let part 1 go.
      await proxy.waitFor((e) => rangeStart(e, key) === (hold.until ?? 3 * PART), 30_000);
      await new Promise((r) => setTimeout(r, 1500));
      const before = proxy.log.filter((e) => rangeStart(e, key) !== undefined).length;
      holding = false;
      proxy.releaseStalls();
      const result = await running;
      const same = result.code === 0 &&
        JSON.stringify([...(await treeDigest(`${pool.mountpoint}/restored`))]) ===
          JSON.stringify([...source]);
      assert.ok(
        proxy.injected().some((e) => rangeStart(e, key) !== undefined),
        "a range was held back",
      );
      const log = proxy.log.map((e) => `${e.kind} ${e.range ?? ""} ${e.fault ?? ""}`);
      check(result, same, log, before);
    } finally {
      proxy.releaseStalls();
      await proxy.close();
    }
  });
}

integration(
  "parts that arrive out of order (the first held back on the wire) reach zfs receive in order",
  async (bed) => {
    await restoreOutOfOrder(bed.s3, "dl-order", () => undefined, (result, same) => {
      assert.equal(result.code, 0, result.stderr);
      assert.ok(same, "the restored tree is byte for byte the source");
      assert.doesNotMatch(result.stderr, /fetching it again/);
    });
  },
);

integration(
  "a part corrupted in transit while the first is held back is fetched again, and the restore is byte for byte",
  async (bed) => {
    let flipped = 0;
    await restoreOutOfOrder(
      bed.s3,
      "dl-order-flip",
      // The first download of part 3 has one byte flipped, 1 MiB in.
      (req, key) =>
        rangeStart({ ...req, range: req.headers.get("range") }, key) === 2 * PART &&
          !flipped++
          ? { kind: "flipResponse", atByte: MiB }
          : undefined,
      (result, same, log) => {
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, /part 3 hashes to MD5 [0-9a-f]{32}, not its recorded one/);
        assert.ok(same, "the restored tree is byte for byte the source");
        assert.equal(
          log.filter((l) => l.startsWith(`GetObject bytes=${2 * PART}-`)).length,
          2,
          `part 3 was fetched twice: ${log.join("; ")}`,
        );
      },
    );
  },
);

integration(
  "at most CONCURRENCY ranges are fetched at once (the memory bound): with all held, only 2 are asked for",
  async (bed) => {
    await restoreOutOfOrder(
      bed.s3,
      "dl-bound",
      () => undefined,
      (result, same, log, before) => {
        assert.equal(before, 2, `ranged GETs while every range was held: ${log.join("; ")}`);
        assert.equal(result.code, 0, result.stderr);
        assert.ok(same, "the restored tree is byte for byte the source");
      },
      { held: () => true, until: PART, concurrency: 2 },
    );
  },
);
