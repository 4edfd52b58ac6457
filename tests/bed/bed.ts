/**
 * One entry point for integration tests. Importing this module brings the test bed up (once per
 * test process): zfs-fuse and the local S3 server. `integration(name, fn, needs)` then registers
 * a test that runs against it, or is ignored with a one-line reason when the bed cannot be had.
 * Under CI (`CI=true`) a missing bed fails the test instead.
 *
 * @module
 */

import { ensureS3, type S3Env } from "./s3_bed.ts";
import { ensureZfs, zfsFlavour } from "./zfs_bed.ts";
import { underCI } from "./run.ts";

/** What an integration test needs. */
export interface BedNeeds {
  /** @default {true} */
  zfs?: boolean;
  /** @default {true} */
  s3?: boolean;
}

/** The bed as the test sees it. */
export interface Bed {
  s3: S3Env;
  /** "zfs-fuse" or "kernel ZFS". */
  zfsFlavour: string;
}

const zfsWhy = await ensureZfs().catch((err) => `zfs setup failed: ${err.message}`);
const s3 = await ensureS3().catch((err) => `S3 setup failed: ${err.message}`);
console.error(zfsWhy ? `test bed: ZFS is missing: ${zfsWhy}` : `test bed: ZFS is ${zfsFlavour}`);
console.error(
  typeof s3 === "string"
    ? `test bed: S3 is missing: ${s3}`
    : `test bed: S3 is Ceph radosgw at ${s3.S3_ENDPOINT}`,
);

function missing(needs: BedNeeds): string | undefined {
  if (needs.zfs !== false && zfsWhy) return `zfs: ${zfsWhy}`;
  if (needs.s3 !== false && typeof s3 === "string") return `s3: ${s3}`;
  return undefined;
}

/** Registers an integration test (see module doc). */
export function integration(
  name: string,
  fn: (bed: Bed, t: Deno.TestContext) => Promise<void>,
  needs: BedNeeds = {},
): void {
  const why = missing(needs);
  if (why && !underCI()) {
    Deno.test({ name: `${name} (skipped: ${why})`, ignore: true, fn() {} });
    return;
  }
  Deno.test({
    name,
    // The SDK keeps pooled keep-alive sockets per client between tests.
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      if (why) throw new Error(`integration test bed missing under CI: ${why}`);
      await fn({ s3: s3 as S3Env, zfsFlavour }, t);
    },
  });
}
