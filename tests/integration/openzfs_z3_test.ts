/**
 * z3 against real OpenZFS 2.3 (the guest of `tests/bed/openzfs_vm.sh`), through its CLI only,
 * with `Z3_ZFS_COMMAND` pointing at the guest's `zfs`.
 */
import assert from "node:assert/strict";
import { withCleanup } from "../bed/cleanup.ts";
import { runZ3 } from "../bed/cli.ts";
import { ok } from "../bed/expect.ts";
import { guest, guestPool, guestText, OPENZFS_ZFS, openzfsTest } from "../bed/openzfs_bed.ts";
import { s3Settings, tempBucket } from "../bed/s3_bucket_bed.ts";

const s3 = await s3Settings();
const missing = typeof s3 === "string" ? `s3: ${s3}` : undefined;

const PASSPHRASE = new TextEncoder().encode("correct horse battery staple\n");

/** `sha256sum` of each file, as the guest computes it, by file name. */
async function digests(dir: string, names: string[]): Promise<Record<string, string>> {
  const out = await guestText(["run", "sha256sum", ...names.map((n) => `${dir}/${n}`)]);
  return Object.fromEntries(
    out.trimEnd().split("\n").map((l) => [l.slice(l.lastIndexOf("/") + 1), l.split(" ")[0]]),
  );
}

openzfsTest(
  "z3 backup sends a real encrypted dataset raw; restore and zfs load-key open it; verify --zfs needs no key",
  async () => {
    const pool = await guestPool({ name: "raw" });
    const bucket = await tempBucket(s3 as Record<string, string>, "openzfs-raw");
    await withCleanup([() => pool.destroy(), () => bucket.remove()], async () => {
      const src = `${pool.name}/secret data`;
      await guest([
        "zfs",
        "create",
        "-o",
        "encryption=on",
        "-o",
        "keyformat=passphrase",
        "-o",
        "keylocation=prompt",
        src,
      ], { stdin: PASSPHRASE });
      const write = (name: string, bytes: number) =>
        guest(["run", "sh", "-c", 'head -c "$1" /dev/urandom > "$2"', "sh", `${bytes}`, name]);
      await write(`/${src}/a`, 2 * 1024 * 1024);
      await guest(["zfs", "snapshot", `${src}@s1`]);
      await write(`/${src}/b`, 1024 * 1024);
      await guest(["zfs", "snapshot", `${src}@s2`]);
      const env = { ...bucket.env, FILESYSTEM: src, Z3_ZFS_COMMAND: OPENZFS_ZFS };

      ok(await runZ3(["backup"], env));
      const keys = await bucket.keys();
      for (const snap of ["s1", "s2"]) {
        // The object (S3_PREFIX + dataset@snap), not its check record under `….z3/`.
        const key = keys.find((k) => k.endsWith(`/${src}@${snap}`) && !k.includes(".z3/"));
        assert.ok(key, `no object for ${src}@${snap} in ${keys.join(", ")}`);
        assert.equal((await bucket.metadata(key))["z3-send-flags"], "-w", key);
      }
      // The hold on the base, as the real `zfs holds` lists it, and its bookmark.
      const holds = await guestText(["zfs", "holds", "-H", `${src}@s2`]);
      assert.match(holds, new RegExp(`^${src}@s2\\tz3:[0-9a-f]{12}\\t`, "m"));
      const marks = await guestText(["zfs", "list", "-H", "-t", "bookmark", "-o", "name", src]);
      assert.match(marks, new RegExp(`^${src}#z3-[0-9a-f]{12}-s2$`, "m"));

      const copy = `${pool.name}/copy`;
      const restore = await runZ3(["restore", "s2", "--target", copy], env);
      ok(restore);
      assert.match(restore.stderr, /zfs load-key/);
      const keystatus = ["zfs", "get", "-H", "-o", "value", "keystatus", copy];
      assert.equal((await guestText(keystatus)).trim(), "unavailable");
      await guest(["zfs", "load-key", copy], { stdin: PASSPHRASE });
      await guest(["zfs", "mount", copy]);
      assert.deepEqual(await digests(`/${copy}`, ["a", "b"]), await digests(`/${src}`, ["a", "b"]));

      // Raw objects received into a throwaway dataset, whose key is never loaded.
      const verify = ok(await runZ3(["verify", "--zfs", pool.name], env));
      assert.equal(verify.filter((l) => /\bok\b/.test(l)).length, 2, verify.join("\n"));
    });
  },
  { missing },
);
