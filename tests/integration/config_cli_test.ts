import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { runZ3 } from "../bed/cli.ts";
import { failure, ok } from "../bed/expect.ts";
import { freshBucket } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";

/** Asserts one line on stderr, nothing on stdout, and the exit code. */
function oneLineFailure(result: { code: number; stdout: string; stderr: string }, code: number) {
  assert.equal(result.code, code, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  return lines[0];
}

async function tempConf(text: string, mode = 0o600): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "z3-conf-" });
  const path = `${dir}/z3.conf`;
  await Deno.writeTextFile(path, text);
  await Deno.chmod(path, mode);
  return path;
}

integration(
  "z3 reads BUCKET and secrets from --config, [fs:] over [main], and warns on a world-readable secret",
  async (bed) => {
    const pool = await createPool(256);
    const store = await freshBucket(bed.s3, "cfg");
    try {
      await pool.createDataset("d");
      await pool.snapshot("d", "s1");
      const conf = await tempConf(
        [
          "[main]",
          `BUCKET=${store.bucket}`,
          `HOST=${bed.s3.S3_ENDPOINT}`,
          `S3_KEY_ID=${bed.s3.S3_KEY_ID}`,
          `S3_SECRET=${bed.s3.S3_SECRET}`,
          `FILESYSTEM=${pool.name}/d`,
          "S3_PREFIX=main-prefix/",
          `[fs:${pool.name}/d]`,
          "S3_PREFIX=fs-prefix/",
          "",
        ].join("\n"),
        0o644,
      );
      const result = await runZ3(["backup", "--config", conf], { Z3_CONFIG: undefined });
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(`warning: ${conf} holds S3_SECRET and is readable by other users`),
      );
      assert.ok(await store.head(`fs-prefix/${pool.name}/d@s1`), "[fs:DATASET] beat [main]");
      assert.ok(
        !result.stderr.includes(bed.s3.S3_SECRET) && !result.stdout.includes(bed.s3.S3_SECRET),
      );
      // The environment beats the file.
      const env = await runZ3(["status", "--json", "--config", conf], {
        S3_PREFIX: "main-prefix/",
      });
      assert.equal(env.code, 0, env.stderr);
      assert.equal(JSON.parse(env.stdout)[0].type, "missing", "nothing under the env's prefix");
    } finally {
      store.close();
      await pool.destroy();
    }
  },
);

integration("z3 config errors name the file and line, and a missing named file", async () => {
  const bad = await tempConf("[main]\nCONCURRENCY=abc\n");
  let line = oneLineFailure(await runZ3(["status", "--config", bad]), 2);
  assert.equal(line, `z3: Cannot parse CONCURRENCY "abc" from ${bad}:2: expected a whole number`);
  const unknown = await tempConf("[main]\nBUKCET=x\n");
  line = oneLineFailure(await runZ3(["status", "--config", unknown]), 2);
  assert.equal(line, `z3: Cannot use unknown key BUKCET in ${unknown}:2`);
  line = oneLineFailure(await runZ3(["status", "--config", "/nonexistent/z3.conf"]), 2);
  assert.match(line, /Cannot read config file \/nonexistent\/z3.conf: it does not exist/);
  line = oneLineFailure(await runZ3(["status", "--bucket", "x"]), 2);
  assert.match(line, /Unknown option '--bucket'/, "BUCKET cannot come from argv");
  line = oneLineFailure(await runZ3(["backup", "--concurrency", "0"], { FILESYSTEM: "p/d" }), 2);
  assert.match(line, /CONCURRENCY "0" from --concurrency: expected 1 to 64/);
  line = oneLineFailure(await runZ3(["bogus"]), 2);
  assert.match(line, /unknown command "bogus"/);
}, { zfs: false, s3: false });

integration("a failing S3 call with --debug never shows the secret", async (bed) => {
  const secret = `${bed.s3.S3_SECRET.slice(0, 10)}WRONG${bed.s3.S3_SECRET.slice(15)}`;
  // cleanup speaks to S3 only (ListMultipartUploads): this test needs no ZFS.
  const result = await runZ3(["cleanup", "--dry-run", "--debug"], {
    BUCKET: "no-such-bucket-for-z3",
    HOST: bed.s3.S3_ENDPOINT,
    S3_KEY_ID: bed.s3.S3_KEY_ID,
    S3_SECRET: secret,
  });
  // The request reached the server and was refused for its signature: the secret was used.
  failure(result, 4, /no-such-bucket-for-z3.*SignatureDoesNotMatch \(HTTP 403\)/);
  for (const s of [secret, bed.s3.S3_SECRET]) {
    assert.ok(!result.stderr.includes(s), "secret in stderr");
    assert.ok(!result.stdout.includes(s), "secret in stdout");
  }
}, { zfs: false });

integration("z3 takes the key id and secret from S3_KEY_ID_FILE / S3_SECRET_FILE", async (bed) => {
  const store = await freshBucket(bed.s3, "cfg-file");
  try {
    const dir = await Deno.makeTempDir({ prefix: "z3-secrets-" });
    await Deno.writeTextFile(`${dir}/id`, `${bed.s3.S3_KEY_ID}\n`);
    await Deno.writeTextFile(`${dir}/secret`, `${bed.s3.S3_SECRET}\n`);
    const env = {
      BUCKET: store.bucket,
      HOST: bed.s3.S3_ENDPOINT,
      S3_KEY_ID_FILE: `${dir}/id`,
      S3_SECRET_FILE: `${dir}/secret`,
    };
    // A signed request (ListMultipartUploads) succeeds only with the files' key id and secret.
    const result = await runZ3(["cleanup", "--dry-run"], env);
    assert.deepEqual(ok(result), []);
    assert.match(result.stderr, /^dry run: 0 pending multipart upload\(s\)/m);
    const missing = await runZ3(["cleanup", "--dry-run"], {
      ...env,
      S3_SECRET_FILE: `${dir}/nope`,
    });
    assert.equal(
      oneLineFailure(missing, 2),
      `z3: Cannot read S3_SECRET_FILE ${dir}/nope: it does not exist`,
    );
    await Deno.remove(dir, { recursive: true });
  } finally {
    store.close();
  }
}, { zfs: false });
