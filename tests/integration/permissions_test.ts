/**
 * Issue #6: z3 and pput run with exactly the Deno permission flags that README.md documents
 * (never `-A`), and a permission left out ends in one line on stderr that names it and the flag
 * that grants it. The flags live once in tests/bed/permission_flags.ts (re-exported here), and
 * tests/unit/permission_flags_test.ts holds README.md and the `compile` task to them.
 *
 * Issue #11: these runs go to the bed's HTTPS endpoint, with the bed's private CA in
 * `S3_CA_FILE` inside the config directory, so the README's flags are shown to carry TLS too.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { integration } from "../bed/bed.ts";
import { type CliResult, runPput, runZ3 } from "../bed/cli.ts";
import { pseudoRandom, treeDigest } from "../bed/files.ts";
import { freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import { S3Store } from "../../lib/backend/s3.ts";
import {
  localize,
  LOCK_DIR,
  PPUT_PERMISSIONS,
  README_CONFIG_DIR,
  README_S3_HOST,
  Z3_PERMISSIONS,
} from "../bed/permission_flags.ts";

export { localize, LOCK_DIR, PPUT_PERMISSIONS, README_CONFIG_DIR, README_S3_HOST, Z3_PERMISSIONS };

const MiB = 1024 * 1024;
const DATA = "perm data";
const S3_ONLY = { zfs: false };

/** A config directory holding `z3.conf` (mode 600) that points at `bucket` on the bed. */
async function configDir(s3: S3Env, bucket: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "z3-perm-" });
  await Deno.copyFile(s3.S3_TLS_CA, `${dir}/ca.pem`);
  const lines = [
    "[main]",
    `BUCKET=${bucket}`,
    `HOST=${s3.S3_TLS_ENDPOINT}`,
    `S3_CA_FILE=${dir}/ca.pem`,
    `S3_REGION=${s3.S3_REGION}`,
    `S3_KEY_ID=${s3.S3_KEY_ID}`,
    `S3_SECRET=${s3.S3_SECRET}`,
  ];
  await Deno.writeTextFile(`${dir}/z3.conf`, lines.join("\n") + "\n", { mode: 0o600 });
  return dir;
}

/** What the test needs to run a CLI the way the README says, against the bed. */
interface PermFixture {
  /** The config directory, standing in for /etc/z3_backup. */
  dir: string;
  /** The bed's S3 `host:port`, standing in for s3.example.com. */
  net: string;
  /** The environment: only the config file's path (the bed adds PATH and HOME). */
  env: Record<string, string>;
}

async function withConfig(
  s3: S3Env,
  label: string,
  fn: (f: PermFixture, bucket: string) => Promise<void>,
): Promise<void> {
  const store = await freshBucket(s3, label);
  const dir = await configDir(s3, store.bucket);
  try {
    await fn(
      { dir, net: new URL(s3.S3_TLS_ENDPOINT).host, env: { Z3_CONFIG: `${dir}/z3.conf` } },
      store.bucket,
    );
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Asserts exit 0 and nothing from Deno itself on stderr; returns stdout's lines. */
function ok(result: CliResult): string[] {
  assert.deepEqual(result.code, 0, `exit status; stderr: ${result.stderr}`);
  assert.doesNotMatch(
    result.stderr.replaceAll("\u001b", ""),
    /^(?:\[[0-9;]*m)*(?:Info|Warning|warning|error)\b/m,
    "Deno printed nothing of its own",
  );
  return result.stdout.trimEnd().split("\n").filter((l) => l !== "");
}

/** Asserts a failure with `code`, nothing on stdout and exactly one line on stderr. */
function oneLineFailure(result: CliResult, code: number, name: string): string {
  assert.deepEqual(result.code, code, `exit status; stderr: ${result.stderr}`);
  assert.deepEqual(result.stdout, "", "a failed run prints nothing on stdout");
  const lines = result.stderr.trimEnd().split("\n");
  assert.deepEqual(lines.length, 1, `expected one line on stderr, got: ${result.stderr}`);
  assert.ok(lines[0].startsWith(`${name}: `), lines[0]);
  return lines[0];
}

integration("z3 backup, status and restore --target run with exactly the README's flags", async (
  bed,
) => {
  await withConfig(bed.s3, "perm-z3", async (f) => {
    const pool = await createPool(256);
    try {
      const dir = await pool.createDataset(DATA);
      const dataset = `${pool.name}/${DATA}`;
      const flags = localize(Z3_PERMISSIONS, f.net, f.dir);
      const z3 = (args: string[]) =>
        runZ3([...args, "--filesystem", dataset], f.env, { permissions: flags });

      await Deno.writeTextFile(`${dir}/text.txt`, "z3 keeps to its permissions\n".repeat(20_000));
      await Deno.writeFile(`${dir}/noise.bin`, pseudoRandom(MiB, 61));
      await pool.snapshot(DATA, "s1");
      // zstd runs as a child: --allow-run must admit it as well as zfs.
      assert.match(ok(await z3(["backup", "--compressor", "zstd"]))[0], /@s1: full, /);
      await Deno.writeFile(`${dir}/more.bin`, pseudoRandom(256 * 1024, 62));
      await pool.snapshot(DATA, "s2");
      const incremental = ok(await z3(["backup", "--compressor", "gzip"]));
      assert.match(incremental[0], /@s2: incremental from .*@s1, /);

      const rows = JSON.parse(ok(await z3(["status", "--json"])).join("\n")) as {
        name: string;
        health: string;
      }[];
      assert.deepEqual(rows.map((r) => [r.name, r.health]), [["s1", "ok"], ["s2", "ok"]]);

      const target = `${pool.name}/restored`;
      assert.deepEqual(ok(await z3(["restore", "s2", "--target", target])), [
        `received ${target}@s1`,
        `received ${target}@s2`,
      ]);
      assert.deepEqual(
        await treeDigest(`${pool.mountpoint}/restored`),
        await treeDigest(dir),
        "the restored files are byte for byte the originals",
      );
    } finally {
      await pool.destroy();
    }
  });
}, { commands: ["zstd", "lz4"] });

integration("pput stores stdin with exactly the README's flags", async (bed) => {
  await withConfig(bed.s3, "perm-pput", async (f, bucket) => {
    const data = pseudoRandom(6 * MiB + 123, 63);
    const result = await runPput(["--chunk-size", "5M", "perm/key"], {
      env: f.env,
      stdin: data,
      permissions: localize(PPUT_PERMISSIONS, f.net, f.dir),
    });
    const json = JSON.parse(ok(result)[0]) as { status: string; bytes: number; parts: number };
    assert.deepEqual([json.status, json.bytes, json.parts], ["success", data.length, 2]);
    const store = storeFor(bed.s3, bucket);
    try {
      const got = await new Response(await store.get("perm/key")).bytes();
      assert.ok(Buffer.from(got).equals(data), "the object holds exactly the bytes sent");
    } finally {
      store.close();
    }
  });
}, S3_ONLY);

integration("z3 backup without the S3 host in --allow-net names it and the flag", async (bed) => {
  await withConfig(bed.s3, "perm-nonet", async (f) => {
    const pool = await createPool(128);
    try {
      await pool.createDataset(DATA);
      await pool.snapshot(DATA, "s1");
      // The README's flags as they stand: s3.example.com, not the bed's host.
      const flags = localize(Z3_PERMISSIONS, README_S3_HOST, f.dir);
      const result = await runZ3(["backup", "--filesystem", `${pool.name}/${DATA}`], f.env, {
        permissions: flags,
      });
      const line = oneLineFailure(result, 4, "z3");
      assert.ok(
        line.endsWith(
          `not permitted: Deno needs net access to "${f.net}"; grant it with --allow-net=${f.net}`,
        ),
        line,
      );
    } finally {
      await pool.destroy();
    }
  });
});

integration("pput without the S3 host in --allow-net names it and the flag", async (bed) => {
  await withConfig(bed.s3, "perm-nonet-pput", async (f) => {
    const result = await runPput(["perm/key"], {
      env: f.env,
      stdin: pseudoRandom(1000, 64),
      permissions: localize(PPUT_PERMISSIONS, README_S3_HOST, f.dir),
    });
    const line = oneLineFailure(result, 4, "pput");
    assert.ok(
      line.includes(
        `not permitted: Deno needs net access to "${f.net}"; grant it with --allow-net=${f.net}`,
      ),
      line,
    );
  });
}, S3_ONLY);

integration("z3 backup without zfs in --allow-run names zfs and the flag", async (bed) => {
  await withConfig(bed.s3, "perm-norun", async (f) => {
    const pool = await createPool(128);
    try {
      await pool.createDataset(DATA);
      await pool.snapshot(DATA, "s1");
      const flags = localize(Z3_PERMISSIONS, f.net, f.dir).map((flag) =>
        flag.startsWith("--allow-run=") ? "--allow-run=zstd" : flag
      );
      const result = await runZ3(["backup", "--filesystem", `${pool.name}/${DATA}`], f.env, {
        permissions: flags,
      });
      const line = oneLineFailure(result, 3, "z3");
      assert.match(line, /^z3: Cannot run zfs /);
      assert.ok(
        line.endsWith(
          'not permitted: Deno needs run access to "zfs"; grant it with --allow-run=zfs',
        ),
        line,
      );
    } finally {
      await pool.destroy();
    }
  });
});

/** A store for the existing `bucket` on the bed, over HTTPS. */
function storeFor(s3: S3Env, bucket: string): S3Store {
  return new S3Store({
    bucket,
    endpoint: s3.S3_TLS_ENDPOINT,
    caCerts: [Deno.readTextFileSync(s3.S3_TLS_CA)],
    region: s3.S3_REGION,
    keyId: s3.S3_KEY_ID,
    secret: s3.S3_SECRET,
  });
}
