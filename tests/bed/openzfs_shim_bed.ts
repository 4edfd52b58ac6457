/**
 * Sets up the OpenZFS 2.x shim (`openzfs_shim.ts`) for one test: a wrapper executable for
 * `Z3_ZFS_COMMAND`, its state file (which datasets are encrypted, the `send -nvP` error factor)
 * and its log.
 *
 * @module
 */

import { run } from "./run.ts";
import type { ShimLogLine, ShimState } from "./openzfs_shim.ts";

/** A running shim's handles; see {@linkcode openzfsShim}. */
export interface OpenzfsShim {
  /** The wrapper's path, for `Z3_ZFS_COMMAND`. */
  path: string;
  /** Sets `dataset`'s `encryption` as the shim reports it (`off`, `aes-256-gcm`, …). */
  setEncryption(dataset: string, value: string): Promise<void>;
  /** What the shim reports as `encryption` now, by dataset. */
  encryption(): Promise<Record<string, string>>;
  /** Hides `snapshot` from `list` and `get`, as if destroyed (it stays in zfs-fuse). */
  hide(snapshot: string): Promise<void>;
  /** Every run so far, oldest first. */
  log(): Promise<ShimLogLine[]>;
  /** Removes the wrapper, state and log. */
  remove(): Promise<void>;
}

const SHIM = new URL("./openzfs_shim.ts", import.meta.url).pathname;

/**
 * Makes a shim in a fresh temporary directory; `estimateFactor` scales `send -nvP`'s size;
 * `bookmarkFeature: false` makes `zfs bookmark` fail as on a pool without the feature.
 */
export async function openzfsShim(
  options: { estimateFactor?: number; bookmarkFeature?: boolean } = {},
): Promise<OpenzfsShim> {
  const real = (await run(["sh", "-c", "command -v zfs"])).trim();
  const dir = await Deno.makeTempDir({ prefix: "z3-openzfs-shim-" });
  const statePath = `${dir}/state.json`;
  const state: ShimState = {
    real,
    log: `${dir}/log`,
    encryption: {},
    estimateFactor: options.estimateFactor ?? 1,
    bookmarkFeature: options.bookmarkFeature,
  };
  await Deno.writeTextFile(statePath, JSON.stringify(state));
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const path = `${dir}/zfs`;
  // z3 runs zfs with PATH and LC_ALL only: the wrapper brings what Deno needs itself.
  const home = Deno.env.get("HOME") ?? "/root";
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nHOME=${quote(home)} exec ${quote(Deno.execPath())} run --quiet --no-prompt ` +
      `--allow-all ${quote(SHIM)} ${quote(statePath)} "$@"\n`,
    { mode: 0o755 },
  );
  const read = async () => JSON.parse(await Deno.readTextFile(statePath)) as ShimState;
  return {
    path,
    async setEncryption(dataset, value) {
      const now = await read();
      now.encryption[dataset] = value;
      await Deno.writeTextFile(statePath, JSON.stringify(now));
    },
    encryption: async () => (await read()).encryption,
    async hide(snapshot) {
      const now = await read();
      now.hidden = [...now.hidden ?? [], snapshot];
      await Deno.writeTextFile(statePath, JSON.stringify(now));
    },
    async log() {
      const text = await Deno.readTextFile(state.log).catch(() => "");
      return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as ShimLogLine);
    },
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}
