/**
 * Issue #11: lib/backend/http.ts against servers that behave like real ones. Each test puts a rude peer
 * (tests/bed/rude_proxy.ts) in front of the real Ceph gateway, or in place of it, and asserts
 * what a user would see: the exit status, the one error line naming the real cause, the bytes
 * stored, and how many requests reached the wire.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { integration } from "../bed/bed.ts";
import { type CliResult, runPput, spawnPput } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { hangingServer, rudeProxy, type RudeProxyOptions } from "../bed/rude_proxy.ts";
import { childEnv, freshBucket } from "../bed/s3_bed.ts";
import type { S3Env } from "../bed/s3_bed.ts";
import type { S3Store } from "../../lib/backend/s3.ts";

const MiB = 1024 * 1024;
const S3_ONLY = { zfs: false };

/** Asserts exit `code`, nothing on stdout, one `pput:` line on stderr; returns it. */
function oneLine(result: CliResult, code: number): string {
  assert.deepEqual(result.code, code, `exit status; stderr: ${result.stderr}`);
  assert.deepEqual(result.stdout, "", "a failed run prints nothing on stdout");
  const lines = result.stderr.trimEnd().split("\n");
  assert.deepEqual(lines.length, 1, `one line on stderr, got: ${result.stderr}`);
  assert.ok(lines[0].startsWith("pput: "), lines[0]);
  return lines[0];
}

/** A fresh bucket and a rude proxy in front of the bed; both cleaned up after `fn`. */
async function withRudeProxy(
  s3: S3Env,
  label: string,
  options: RudeProxyOptions,
  fn: (env: Record<string, string>, store: S3Store, proxy: ReturnType<typeof rudeProxy>) => Promise<
    void
  >,
): Promise<void> {
  const store = await freshBucket(s3, label);
  const proxy = rudeProxy(s3.S3_ENDPOINT, options);
  try {
    await fn({ ...childEnv(s3, store.bucket), HOST: proxy.endpoint }, store, proxy);
    assert.deepEqual(proxy.errors, [], "the proxy met nothing it could not parse");
  } finally {
    await proxy.close();
    for await (const u of store.listMultipartUploads("")) {
      await store.abortMultipart(u.key, u.uploadId);
    }
    store.close();
  }
}

async function pendingUploads(store: S3Store): Promise<number> {
  return (await Array.fromAsync(store.listMultipartUploads(""))).length;
}

integration(
  "an early 403 before the body is reported as AccessDenied with the credentials hint, not retried",
  async (bed) => {
    await withRudeProxy(bed.s3, "early403", {
      early: (kind) => kind === "UploadPart" ? { status: 403, code: "AccessDenied" } : undefined,
    }, async (env, store, proxy) => {
      const result = await runPput(["--chunk-size", "8M", "--concurrency", "1", "early/key"], {
        env,
        stdin: pseudoRandom(17 * MiB, 71),
      });
      const line = oneLine(result, 4);
      assert.match(line, /AccessDenied \(HTTP 403\)/);
      assert.match(line, /check S3_KEY_ID \/ S3_SECRET and the bucket policy/);
      assert.doesNotMatch(line, /pipe|ECONNRESET|EPIPE/i);
      assert.deepEqual(proxy.count("UploadPart"), 1, "a 403 is not retried");
      assert.ok(proxy.earlyAnswers >= 1);
      assert.deepEqual(await store.head("early/key"), undefined, "no object");
      assert.deepEqual(await pendingUploads(store), 0, "the upload was aborted");
    });
  },
  S3_ONLY,
);

integration(
  "an early 503 SlowDown before the body is retried and the object stored",
  async (bed) => {
    await withRudeProxy(bed.s3, "early503", {
      early: (kind, nth) =>
        kind === "UploadPart" && nth <= 2 ? { status: 503, code: "SlowDown" } : undefined,
    }, async (env, store, proxy) => {
      const data = pseudoRandom(17 * MiB + 5, 72);
      const result = await runPput(["--chunk-size", "8M", "--concurrency", "1", "slow/key"], {
        env,
        stdin: data,
      });
      assert.deepEqual(result.code, 0, result.stderr);
      assert.deepEqual(
        proxy.count("UploadPart"),
        3 + 2,
        "three parts, two of them tried twice more",
      );
      const got = await new Response(await store.get("slow/key")).bytes();
      assert.ok(Buffer.from(got).equals(data), "the object holds exactly the bytes sent");
    });
  },
  S3_ONLY,
);

integration(
  "early 503s on every try end in one line naming SlowDown, not a broken pipe",
  async (bed) => {
    await withRudeProxy(bed.s3, "storm503", {
      early: (kind) => kind === "UploadPart" ? { status: 503, code: "SlowDown" } : undefined,
    }, async (env, store, proxy) => {
      const result = await runPput(
        ["--chunk-size", "8M", "--concurrency", "1", "--max-retries", "2", "storm/key"],
        { env, stdin: pseudoRandom(9 * MiB, 73) },
      );
      const line = oneLine(result, 4);
      assert.match(line, /SlowDown \(HTTP 503\)/);
      assert.doesNotMatch(line, /pipe|ECONNRESET|EPIPE/i);
      assert.deepEqual(proxy.count("UploadPart"), 3, "the first try and two retries");
      assert.deepEqual(await pendingUploads(store), 0, "the upload was aborted");
    });
  },
  S3_ONLY,
);

integration(
  "a server that writes to idle keep-alive sockets: each PUT gets its own answer, bytes equal",
  async (bed) => {
    await withRudeProxy(bed.s3, "idle408", { idlePokeMs: 150 }, async (env, store, proxy) => {
      const part = 5 * MiB;
      const data = pseudoRandom(4 * part, 74);
      const child = spawnPput(["--chunk-size", "5M", "--concurrency", "1", "idle/key"], { env });
      // Slow stdin: the connection waits between parts long enough to be poked each time.
      for (let off = 0; off < data.length; off += part) {
        await child.write(data.subarray(off, off + part));
        await new Promise((r) => setTimeout(r, 600));
      }
      await child.closeStdin();
      const result = await child.result;
      assert.deepEqual(result.code, 0, result.stderr);
      assert.ok(proxy.pokes >= 3, `the proxy poked idle connections (${proxy.pokes})`);
      assert.deepEqual(proxy.afterPoke, 0, "no request was sent on a poked connection");
      assert.deepEqual(proxy.count("UploadPart"), 4, "every part answered on its first try");
      const got = await new Response(await store.get("idle/key")).bytes();
      assert.ok(Buffer.from(got).equals(data), "the object holds exactly the bytes sent");
    });
  },
  S3_ONLY,
);

integration("SIGTERM aborts a TLS connect that hangs: exit 143 at once", async (bed) => {
  const server = hangingServer();
  try {
    const child = spawnPput(["hang/key"], {
      env: { ...childEnv(bed.s3, "z3t-never-reached"), HOST: `https://127.0.0.1:${server.port}` },
    });
    await child.write(pseudoRandom(1000, 75));
    await child.closeStdin();
    for (let i = 0; server.accepted() === 0; i++) {
      assert.ok(i < 300, "pput connected within 30 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    child.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), 30_000));
    const first = await Promise.race([child.result, late]);
    clearTimeout(timer);
    if (first === "late") child.kill("SIGKILL");
    const result = await child.result;
    const seconds = (Date.now() - t0) / 1000;
    assert.deepEqual(result.code, 143, result.stderr);
    // Expected well under a second; without the abort the connect would run to its 30 s bound.
    assert.ok(seconds < 15, `exited ${seconds} s after SIGTERM`);
  } finally {
    await server.close();
  }
}, S3_ONLY);

integration("a TLS handshake that hangs fails after S3_TIMEOUT, naming the host", async (bed) => {
  const server = hangingServer();
  try {
    const t0 = Date.now();
    const result = await runPput(["--max-retries", "0", "hang/key"], {
      env: {
        ...childEnv(bed.s3, "z3t-never-reached"),
        HOST: `https://127.0.0.1:${server.port}`,
        S3_TIMEOUT: "2",
      },
      stdin: pseudoRandom(1000, 76),
    });
    const line = oneLine(result, 4);
    assert.match(line, new RegExp(`no connection to 127\\.0\\.0\\.1:${server.port} within 2 s`));
    assert.ok((Date.now() - t0) / 1000 < 60, "bounded by S3_TIMEOUT, not the default 120 s");
  } finally {
    await server.close();
  }
}, S3_ONLY);
