/**
 * Test data: deterministic pseudo-random files, and a byte-exact comparison of two trees.
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

/** Map of relative path → sha256 of every regular file under `root`. */
export async function treeDigest(root: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  async function walk(dir: string, rel: string) {
    for await (const entry of Deno.readDir(dir)) {
      const path = `${dir}/${entry.name}`;
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory) await walk(path, relPath);
      else if (entry.isFile) {
        result.set(relPath, createHash("sha256").update(await Deno.readFile(path)).digest("hex"));
      }
    }
  }
  await walk(root, "");
  return result;
}
