/**
 * Test data: deterministic pseudo-random files, and an exact comparison of two trees (bytes,
 * modes, symlinks, empty directories).
 *
 * @module
 */

import { createHash } from "node:crypto";

/** Deterministic bytes (xorshift) so failures reproduce; incompressible like real data. */
export function pseudoRandom(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  const words = new Uint32Array(out.buffer, 0, Math.floor(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < size; i++) out[i] = i & 0xff;
  return out;
}

/**
 * Map of relative path → what a restore must bring back of every entry under `root` (`root`
 * itself aside): `file MODE SHA256` for a regular file, `dir MODE` for a directory (so empty ones
 * count), `symlink -> TARGET` for a symbolic link, `other MODE` for anything else. MODE is the
 * permission bits in octal (setuid, setgid and sticky included).
 */
export async function treeDigest(root: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const mode = (info: Deno.FileInfo) => ((info.mode ?? 0) & 0o7777).toString(8).padStart(4, "0");
  async function walk(dir: string, rel: string) {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const info = await Deno.lstat(path);
      if (info.isSymlink) {
        result.set(relPath, `symlink -> ${await Deno.readLink(path)}`);
      } else if (info.isDirectory) {
        result.set(relPath, `dir ${mode(info)}`);
        await walk(path, relPath);
      } else if (info.isFile) {
        const sha = createHash("sha256").update(await Deno.readFile(path)).digest("hex");
        result.set(relPath, `file ${mode(info)} ${sha}`);
      } else {
        result.set(relPath, `other ${mode(info)}`);
      }
    }
  }
  await walk(root, "");
  return result;
}
