/**
 * Issue #11: `S3_CA_FILE` against the bed's HTTPS endpoint, whose certificate a throwaway CA
 * signed (tests/bed/s3_server.sh). Without that CA, or with the wrong one, a run stops with one
 * line naming the host and `S3_CA_FILE` (exit 4); a file that cannot serve as a CA bundle stops
 * it before any request (exit 2). The round trips with the right CA are in permissions_test.ts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { dirname } from "node:path";
import { integration } from "../bed/bed.ts";
import { type CliResult, runPput, runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { childEnv, freshBucket } from "../bed/s3_bed.ts";

const S3_ONLY = { zfs: false };

/** Asserts exit `code`, nothing on stdout and exactly one `name:` line on stderr; returns it. */
function oneLine(result: CliResult, code: number, name: string): string {
  assert.deepEqual(result.code, code, `exit status; stderr: ${result.stderr}`);
  assert.deepEqual(result.stdout, "", "a failed run prints nothing on stdout");
  const lines = result.stderr.trimEnd().split("\n");
  assert.deepEqual(lines.length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.ok(lines[0].startsWith(`${name}: `), lines[0]);
  return lines[0];
}

integration("HTTPS without S3_CA_FILE, or with the wrong CA, names the host and S3_CA_FILE", async (
  bed,
) => {
  const store = await freshBucket(bed.s3, "https-ca");
  const host = new URL(bed.s3.S3_TLS_ENDPOINT).host;
  // The bed's server certificate is no CA: as a trust anchor it vouches for nothing.
  const wrongCa = `${dirname(bed.s3.S3_TLS_CA)}/server.pem`;
  const refused = new RegExp(
    `the TLS certificate of ${host.replaceAll(".", "\\.")} was refused \\(invalid peer ` +
      `certificate: UnknownIssuer\\); if a private CA signed it, set S3_CA_FILE to a PEM file`,
  );
  try {
    for (const caFile of [undefined, wrongCa]) {
      const env = {
        ...childEnv(bed.s3, store.bucket),
        HOST: bed.s3.S3_TLS_ENDPOINT,
        S3_CA_FILE: caFile,
      };
      const pput = await runPput(["ca/key"], { env, stdin: pseudoRandom(1000, 81) });
      assert.match(oneLine(pput, 4, "pput"), refused);
      const z3 = await runZ3(["cleanup", "--dry-run"], env);
      assert.match(oneLine(z3, 4, "z3"), refused);
    }
    // With the right CA the same command works.
    const env = {
      ...childEnv(bed.s3, store.bucket),
      HOST: bed.s3.S3_TLS_ENDPOINT,
      S3_CA_FILE: bed.s3.S3_TLS_CA,
    };
    const cleanup = await runZ3(["cleanup", "--dry-run"], env);
    assert.deepEqual(cleanup.code, 0, cleanup.stderr);
  } finally {
    store.close();
  }
}, S3_ONLY);

integration("an S3_CA_FILE that is missing, not PEM or not a certificate stops with exit 2", async (
  bed,
) => {
  const dir = await Deno.makeTempDir({ prefix: "z3-ca-" });
  try {
    await Deno.writeTextFile(`${dir}/notes.txt`, "no certificate here\n");
    await Deno.writeTextFile(
      `${dir}/bad.pem`,
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    );
    const cases: [string, RegExp][] = [
      [`${dir}/absent.pem`, /^pput: Cannot read S3_CA_FILE .*absent\.pem: it does not exist$/],
      [
        `${dir}/notes.txt`,
        /^pput: Cannot use S3_CA_FILE .*notes\.txt: it holds no PEM certificate/,
      ],
      [`${dir}/bad.pem`, /^pput: Cannot use S3_CA_FILE .*bad\.pem: certificate 1 does not parse/],
    ];
    for (const [path, pattern] of cases) {
      const result = await runPput(["ca/key", "--ca-file", path], {
        env: { ...childEnv(bed.s3, "z3t-never-reached"), HOST: bed.s3.S3_TLS_ENDPOINT },
        stdin: pseudoRandom(100, 82),
      });
      assert.match(oneLine(result, 2, "pput"), pattern);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, S3_ONLY);

/**
 * Issue #28: `S3_CA_FILE` adds to the built-in roots (`Deno.startTls`'s `caCerts` do); with
 * `S3_CA_ONLY=true` it is the only trust. `DENO_CERT` makes the bed's CA one of Deno's built-in
 * roots for the child, standing in for a public CA that would vouch for the endpoint.
 */
integration(
  "S3_CA_ONLY=true trusts S3_CA_FILE alone: a second CA among the roots is refused",
  async (
    bed,
  ) => {
    const store = await freshBucket(bed.s3, "https-pin");
    const host = new URL(bed.s3.S3_TLS_ENDPOINT).host;
    const otherCa = `${dirname(bed.s3.S3_TLS_CA)}/server.pem`;
    const env = (caOnly: string, caFile: string) => ({
      ...childEnv(bed.s3, store.bucket),
      HOST: bed.s3.S3_TLS_ENDPOINT,
      DENO_CERT: bed.s3.S3_TLS_CA,
      S3_CA_FILE: caFile,
      S3_CA_ONLY: caOnly,
    });
    try {
      // Without S3_CA_ONLY the built-in roots (here: the bed's CA) still vouch.
      const added = await runZ3(["cleanup", "--dry-run"], env("false", otherCa));
      assert.deepEqual(added.code, 0, added.stderr);
      // With it, only S3_CA_FILE does: the bed's CA among the roots no longer counts.
      const pinned = await runZ3(["cleanup", "--dry-run"], env("true", otherCa));
      assert.match(
        oneLine(pinned, 4, "z3"),
        new RegExp(`the TLS certificate of ${host.replaceAll(".", "\\.")} was refused`),
      );
      const pput = await runPput(["pin/key"], {
        env: env("true", otherCa),
        stdin: pseudoRandom(1000, 83),
      });
      assert.match(oneLine(pput, 4, "pput"), /was refused/);
      // The pinned CA itself works, for z3 and pput.
      const right = env("true", bed.s3.S3_TLS_CA);
      const ok = await runZ3(["cleanup", "--dry-run"], right);
      assert.deepEqual(ok.code, 0, ok.stderr);
      const put = await runPput(["pin/key"], { env: right, stdin: pseudoRandom(1000, 84) });
      assert.deepEqual(put.code, 0, put.stderr);
      assert.equal((await store.head("pin/key"))?.size, 1000);
    } finally {
      store.close();
    }
  },
  S3_ONLY,
);
