/**
 * Exit classes at the CLI edge, against a scripted server that counts the requests it gets:
 * a control character in a header value is usage (exit 2) before stdin is read or any request
 * is sent; a bad input path is usage, an I/O error while reading the input is exit 10.
 *
 * @module
 */

import assert from "node:assert/strict";
import { runPput, runZ3, spawnPput } from "../../bed/cli.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

/** Runs `fn` with the environment of a pput pointed at a scripted server that answers 500. */
async function withServer(
  fn: (env: Record<string, string>, requests: () => number) => Promise<void>,
): Promise<void> {
  let requests = 0;
  const server = scriptedServer(() => {
    requests++;
    return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
  });
  try {
    await fn({
      BUCKET: "b",
      HOST: `http://127.0.0.1:${server.port}`,
      S3_KEY_ID: "k",
      S3_SECRET: "s",
      MAX_RETRIES: "0",
      S3_TIMEOUT: "5",
    }, () => requests);
  } finally {
    await server.close();
  }
}

Deno.test("pput refuses a control character in --metadata or S3_STORAGE_CLASS as usage, before any request", async () => {
  await withServer(async (env, requests) => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [["--metadata", "a=b\r\nx-amz-acl: public-read"], {}, /metadata "a"/],
      [["--metadata", "a=b\u0007"], {}, /metadata "a"/],
      [["--storage-class", "STANDARD\nX"], {}, /S3_STORAGE_CLASS/],
      [[], { S3_STORAGE_CLASS: "STANDARD\rX" }, /S3_STORAGE_CLASS/],
    ];
    for (const [flags, extra, named] of cases) {
      const result = await runPput([...flags, "key"], {
        env: { ...env, ...extra },
        stdin: new TextEncoder().encode("data"),
      });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, named);
      assert.match(result.stderr, /control character/);
    }
    const long = await runPput(["k".repeat(1025)], { env, stdin: new TextEncoder().encode("d") });
    assert.equal(long.code, 2, long.stderr);
    assert.match(long.stderr, /1025 bytes, over S3's limit of 1024 bytes/);
    assert.equal(requests(), 0);
  });
});

Deno.test("pput: a file descriptor that is not open is usage (2), an I/O error reading it is exit 10", async () => {
  await withServer(async (env) => {
    const closed = await runPput(["--file-descriptor", "250", "key"], { env });
    assert.equal(closed.code, 2, closed.stderr);
    assert.match(closed.stderr, /Cannot read file descriptor 250/);
    // A directory opens, and then every read of it fails (EISDIR): an I/O error mid-read.
    const unreadable = await runPput(["--file-descriptor", "5", "key"], {
      env,
      redirect: "5</tmp",
    });
    assert.equal(unreadable.code, 10, unreadable.stderr);
    assert.match(unreadable.stderr, /Cannot read file descriptor 5/);
  });
});

Deno.test("z3 refuses an S3_PREFIX over S3's 1024-byte key limit as usage, in one short line, before any request", async () => {
  await withServer(async (env, requests) => {
    const dir = await Deno.makeTempDir({ prefix: "z3-prefix-" });
    try {
      const config = `${dir}/z3.conf`;
      await Deno.writeTextFile(config, `[main]\nS3_PREFIX = ${"p".repeat(10 * 1024 * 1024)}/\n`);
      const result = await runZ3(["status"], {
        ...env,
        FILESYSTEM: "tank/data",
        Z3_CONFIG: config,
      });
      assert.equal(result.code, 2, result.stderr.slice(0, 500));
      assert.match(result.stderr, /S3_PREFIX/);
      assert.match(result.stderr, /1024/);
      assert.ok(result.stderr.length < 1000, `${result.stderr.length} bytes of stderr`);
      assert.equal(requests(), 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("pput says it was interrupted by SIGTERM once, and exits 143", async () => {
  await withServer(async (env) => {
    const child = spawnPput(["key"], { env });
    // pput is waiting for stdin: the signal comes before any part is read.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill("SIGTERM");
    const result = await child.result;
    assert.equal(result.code, 143, result.stderr);
    assert.equal(result.stderr.match(/Interrupted by SIGTERM/g)?.length, 1, result.stderr);
  });
});
