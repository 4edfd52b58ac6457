/**
 * Real ZFS for tests: Debian's zfs-fuse, installed (as root) and started when missing. Each test
 * makes its own pool on a sparse image file with a unique name and destroys it afterwards; no
 * other pool is ever touched.
 *
 * @module
 */

import { INSTALL_TIMEOUT_MS, isRoot, run } from "./run.ts";

const POOL_DIR = "/var/tmp/z3-test-pools";

/** Which ZFS the tests ran on, for the test output. */
export let zfsFlavour = "unknown";

const PIDFILE = "/var/run/zfs-fuse.pid";

/**
 * Clears what a killed zfs-fuse leaves behind (as at the end of a session, before CI runs on the
 * same machine): its pidfile, which makes a new daemon exit 1 without a word, and its kstat FUSE
 * mount, now a dead endpoint. A pidfile whose process is still a live zfs-fuse is left alone.
 */
async function clearStaleDaemon(): Promise<void> {
  const pid = (await Deno.readTextFile(PIDFILE).catch(() => "")).trim();
  if (pid) {
    const comm = (await Deno.readTextFile(`/proc/${pid}/comm`).catch(() => "")).trim();
    if (comm !== "zfs-fuse") await Deno.remove(PIDFILE).catch(() => {});
  }
  try {
    await Deno.stat("/zfs-kstat");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      await run(["umount", "-l", "/zfs-kstat"], { allowFail: true });
    }
  }
}

async function zpoolWorks(): Promise<boolean> {
  try {
    await run(["zpool", "list", "-H", "-o", "name"]);
    return true;
  } catch {
    return false;
  }
}

async function hasCommand(name: string): Promise<boolean> {
  const out = await run(["sh", "-c", 'command -v "$1"', "sh", name], { allowFail: true });
  return out.trim() !== "";
}

/** Makes sure zfs works; returns undefined when ready, or the reason it cannot be had. */
export async function ensureZfs(): Promise<string | undefined> {
  if (!(await hasCommand("zpool"))) {
    if (!isRoot()) return "zfs is not installed and we are not root to install zfs-fuse";
    await run([
      "sh",
      "-c",
      "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zfs-fuse >/dev/null",
    ], { timeoutMs: INSTALL_TIMEOUT_MS });
  }
  if (!(await zpoolWorks())) {
    if (!(await hasCommand("zfs-fuse"))) return "zpool does not work and zfs-fuse is not installed";
    if (!isRoot()) return "the zfs daemon is not running and we are not root to start zfs-fuse";
    try {
      await Deno.stat("/dev/fuse");
    } catch {
      return "/dev/fuse is missing: zfs-fuse cannot run here";
    }
    await clearStaleDaemon();
    try {
      await run(["zfs-fuse", "--pidfile", PIDFILE]);
    } catch (err) {
      return `zfs-fuse would not start: ${(err as Error).message}`;
    }
    for (let i = 0; i < 50 && !(await zpoolWorks()); i++) {
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!(await zpoolWorks())) return "zfs-fuse was started but zpool still fails";
  }
  if (await hasCommand("zfs-fuse")) {
    const version = await run(["dpkg-query", "-W", "-f", "${Version}", "zfs-fuse"], {
      allowFail: true,
    });
    zfsFlavour = `zfs-fuse ${version.trim() || "(version unknown)"}`.trim();
  } else {
    zfsFlavour = "kernel ZFS";
  }
  return undefined;
}

/** A throwaway pool on an image file. */
export interface TestPool {
  /** Pool name, unique per test. */
  name: string;
  /** Where the pool's root dataset is mounted. */
  mountpoint: string;
  /** Creates a dataset and returns where it is mounted. */
  createDataset(relative: string): Promise<string>;
  /** Takes a snapshot `pool/relative@snap`. */
  snapshot(relative: string, snap: string): Promise<void>;
  /** Destroys the pool and removes its image. */
  destroy(): Promise<void>;
}

/** Creates a pool of `sizeMiB` on a sparse file. */
export async function createPool(sizeMiB = 512): Promise<TestPool> {
  await Deno.mkdir(POOL_DIR, { recursive: true });
  const name = `z3t${Deno.pid}x${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
  const image = `${POOL_DIR}/${name}.img`;
  const mountpoint = `${POOL_DIR}/${name}.mnt`;
  const f = await Deno.open(image, { create: true, write: true, truncate: true });
  await f.truncate(sizeMiB * 1024 * 1024);
  f.close();
  await run(["zpool", "create", "-m", mountpoint, name, image]);
  return {
    name,
    mountpoint,
    async createDataset(relative) {
      await run(["zfs", "create", `${name}/${relative}`]);
      return `${mountpoint}/${relative}`;
    },
    async snapshot(relative, snap) {
      await run(["zfs", "snapshot", `${name}/${relative}@${snap}`]);
    },
    async destroy() {
      // zfs-fuse may call a freshly received dataset busy for a moment.
      for (let i = 0;; i++) {
        try {
          await run(["zpool", "destroy", "-f", name]);
          break;
        } catch (err) {
          if (i >= 20) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
      await Deno.remove(image).catch(() => {});
      await Deno.remove(mountpoint, { recursive: true }).catch(() => {});
    },
  };
}

/** A `zfs` that logs each run; see {@linkcode loggingZfs}. */
export interface LoggingZfs {
  /** The wrapper's path, for `Z3_ZFS_COMMAND`. */
  path: string;
  /**
   * What ran so far, one line per run (its arguments), each successful `zfs receive` followed by
   * `  has DATASET@SNAP` lines: the snapshots its target held right after.
   */
  lines(): Promise<string[]>;
  /** Removes the wrapper. */
  remove(): Promise<void>;
}

/** Makes a wrapper around the real `zfs` that logs each run and then does it. */
export async function loggingZfs(): Promise<LoggingZfs> {
  const real = (await run(["sh", "-c", "command -v zfs"])).trim();
  const dir = await Deno.makeTempDir({ prefix: "z3-zfs-log-" });
  const log = `${dir}/log`;
  const path = `${dir}/zfs`;
  await Deno.writeTextFile(
    path,
    `#!/bin/bash
echo "$*" >> '${log}'
if [ "$1" = receive ]; then
  '${real}' "$@"
  status=$?
  if [ $status = 0 ]; then
    '${real}' list -H -o name -t snapshot -r "\${@: -1}" | sed 's/^/  has /' >> '${log}'
  fi
  exit $status
fi
exec '${real}' "$@"
`,
    { mode: 0o755 },
  );
  return {
    path,
    async lines() {
      const text = await Deno.readTextFile(log).catch(() => "");
      return text.split("\n").filter((l) => l !== "");
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
