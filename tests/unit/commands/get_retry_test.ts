/**
 * `z3 get`'s HEAD is retried like every other read, against a scripted server: a single 503 does
 * not fail it, and one that never stops fails as an S3 error naming the status, not "Unknown".
 *
 * @module
 */

import assert from "node:assert/strict";
import { findObject } from "../../../lib/commands/restore.ts";
import { resolveConfig } from "../../../lib/config/config.ts";
import { EXIT } from "../../../lib/base/errors.ts";
import { S3Store } from "../../../lib/backend/s3.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const UNAVAILABLE = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
const NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
const FOUND = 'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 7\r\n\r\n';

async function withServer(failures: number, fn: (store: S3Store) => Promise<void>) {
  let heads = 0;
  const server = scriptedServer((head) => {
    // The name is given with its prefix: under S3_PREFIX again, there is nothing.
    if (head.includes("/z3-backup/z3-backup/")) return NOT_FOUND;
    return ++heads <= failures ? UNAVAILABLE : FOUND;
  });
  const store = new S3Store({
    bucket: "b",
    endpoint: `http://127.0.0.1:${server.port}`,
    keyId: "k",
    secret: "s",
  });
  try {
    await fn(store);
  } finally {
    store.close();
    await server.close();
  }
}

const config = resolveConfig({ env: { S3_PREFIX: "z3-backup/", MAX_RETRIES: "2" } });

Deno.test("findObject() retries a HEAD answered 503", async () => {
  await withServer(1, async (store) => {
    const found = await findObject(config, store, "z3-backup/tank/data@s1");
    assert.equal(found?.key, "z3-backup/tank/data@s1");
    assert.equal(found?.size, 7);
  });
});

Deno.test("findObject() fails a HEAD that is always 503 as S3 (exit 4), naming the status", async () => {
  await withServer(99, async (store) => {
    const err = await findObject(config, store, "z3-backup/tank/data@s1").then(
      () => assert.fail("findObject() succeeded"),
      (e) => e,
    );
    assert.equal(err.exitCode, EXIT.s3);
    assert.match(err.message, /HTTP 503/);
    assert.doesNotMatch(err.message, /Unknown/);
  });
});
