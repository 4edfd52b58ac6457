/**
 * The commands integration tests run besides zfs (the compressors), installed with apt (as root)
 * where missing, as the bed does for zfs-fuse and Ceph, so that a fresh machine runs every test.
 *
 * @module
 */

import { commandPath, INSTALL_TIMEOUT_MS, isRoot, run } from "./run.ts";

/** The Debian package of each command a test may declare in `BedNeeds.commands`. */
export const COMMAND_PACKAGES: Readonly<Record<string, string>> = {
  zstd: "zstd",
  lz4: "lz4",
  pigz: "pigz",
  age: "age",
};

/**
 * Makes sure every command of {@linkcode COMMAND_PACKAGES} is on PATH, installing the missing
 * ones' packages in one apt run when root. Returns, per command still missing, the reason.
 */
export async function ensureCommands(): Promise<Map<string, string>> {
  const names = Object.keys(COMMAND_PACKAGES);
  const missing = async () => {
    const out: string[] = [];
    for (const name of names) if (!(await commandPath(name))) out.push(name);
    return out;
  };
  const before = await missing();
  const why = new Map<string, string>();
  if (before.length === 0) return why;
  if (!isRoot()) {
    for (const name of before) why.set(name, `${name} is not installed and we are not root`);
    return why;
  }
  const packages = before.map((name) => COMMAND_PACKAGES[name]);
  let failed = "";
  try {
    await run([
      "sh",
      "-c",
      'apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null',
      "sh",
      ...packages,
    ], { timeoutMs: INSTALL_TIMEOUT_MS });
  } catch (err) {
    failed = `: ${(err as Error).message}`;
  }
  for (const name of await missing()) {
    why.set(name, `${name} is missing: apt-get install ${COMMAND_PACKAGES[name]} failed${failed}`);
  }
  return why;
}
