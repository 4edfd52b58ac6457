/**
 * One entry point for integration tests. Importing this module brings the test bed up (once per
 * test process): zfs-fuse, the local S3 server and the compressors. `integration(name, fn,
 * needs)` then registers a test that runs against it, or is ignored with a one-line reason when
 * the bed cannot be had. Under CI (`underCI()`) a missing bed fails the test instead.
 *
 * A test gets only what it declares: without `zfs` its `zfs` and `zpool` are stand-ins that fail
 * the test (so a test cannot lean on ZFS while claiming it needs none), and without `s3` reading
 * `bed.s3` throws.
 *
 * @module
 */

import { withCleanup } from "./cleanup.ts";
import { COMMAND_PACKAGES, ensureCommands } from "./commands_bed.ts";
import { ensureS3, type S3Env } from "./s3_bed.ts";
import { ensureZfs, zfsFlavour } from "./zfs_bed.ts";
import { underCI } from "./run.ts";

/** What an integration test needs. */
export interface BedNeeds {
  /** @default {true} */
  zfs?: boolean;
  /** @default {true} */
  s3?: boolean;
  /** Commands the test runs besides zfs (`zstd`, `lz4`, `pigz`, `age`). @default {[]} */
  commands?: string[];
}

/** The bed as the test sees it. */
export interface Bed {
  s3: S3Env;
  /** "zfs-fuse" or "kernel ZFS". */
  zfsFlavour: string;
}

const zfsWhy = await ensureZfs().catch((err) => `zfs setup failed: ${err.message}`);
const s3 = await ensureS3().catch((err) => `S3 setup failed: ${err.message}`);
const commandsWhy = await ensureCommands().catch((err) =>
  new Map(Object.keys(COMMAND_PACKAGES).map((c) => [c, `setup failed: ${err.message}`]))
);
console.error(zfsWhy ? `test bed: ZFS is missing: ${zfsWhy}` : `test bed: ZFS is ${zfsFlavour}`);
console.error(
  typeof s3 === "string"
    ? `test bed: S3 is missing: ${s3}`
    : `test bed: S3 is Ceph radosgw at ${s3.S3_ENDPOINT}`,
);
for (const why of commandsWhy.values()) console.error(`test bed: ${why}`);

/** Stand-ins for `zfs` and `zpool` put first on PATH while a test that needs no ZFS runs. */
const NO_ZFS = Deno.makeTempDirSync({ prefix: "z3-no-zfs-" });
const NO_ZFS_LOG = `${NO_ZFS}/ran`;
for (const name of ["zfs", "zpool"]) {
  Deno.writeTextFileSync(
    `${NO_ZFS}/${name}`,
    `#!/bin/sh\necho "${name} $*" >> '${NO_ZFS_LOG}'\n` +
      `echo "${name}: this test declared { zfs: false } (test bed stand-in)" >&2\nexit 127\n`,
    { mode: 0o755 },
  );
}
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(NO_ZFS, { recursive: true });
  } catch { /* already gone */ }
});

/** Runs `fn` with the ZFS stand-ins first on PATH; fails when anything ran them. */
async function withoutZfs(fn: () => Promise<void>): Promise<void> {
  const path = Deno.env.get("PATH") ?? "/usr/bin:/bin";
  Deno.env.set("PATH", `${NO_ZFS}:${path}`);
  await Deno.remove(NO_ZFS_LOG).catch(() => {});
  await withCleanup([async () => {
    Deno.env.set("PATH", path);
    const ran = await Deno.readTextFile(NO_ZFS_LOG).catch(() => "");
    if (ran) {
      throw new Error(
        `this test ran ZFS without declaring it (its needs say zfs: false): ${ran.trim()}`,
      );
    }
  }], fn);
}

function missing(needs: BedNeeds): string | undefined {
  if (needs.zfs !== false && zfsWhy) return `zfs: ${zfsWhy}`;
  if (needs.s3 !== false && typeof s3 === "string") return `s3: ${s3}`;
  for (const command of needs.commands ?? []) {
    if (!(command in COMMAND_PACKAGES)) return `${command}: the bed does not provide it`;
    const why = commandsWhy.get(command);
    if (why) return `${command}: ${why}`;
  }
  return undefined;
}

/** The bed as a test that declared `needs` sees it. */
function bedFor(needs: BedNeeds): Bed {
  return {
    get s3(): S3Env {
      if (needs.s3 === false) {
        throw new Error("this test uses S3 without declaring it (its needs say s3: false)");
      }
      return s3 as S3Env;
    },
    zfsFlavour,
  };
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
      const body = () => fn(bedFor(needs), t);
      await (needs.zfs === false ? withoutZfs(body) : body());
    },
  });
}
