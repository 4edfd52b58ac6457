/**
 * `S3Store.head()` against a scripted server: a 404 is "no such object" only while the bucket
 * exists; a missing bucket is an S3 error naming it (exit 4), never an absent object.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../../../lib/base/errors.ts";
import { S3RequestError, S3Store } from "../../../lib/backend/s3.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const NOT_FOUND = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
const OK = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

/** Runs `fn` against a server where every object is absent and the bucket is `bucketThere`. */
async function withServer(
  bucketThere: boolean,
  fn: (store: S3Store, requests: string[]) => Promise<void>,
) {
  const requests: string[] = [];
  const server = scriptedServer((head) => {
    const line = head.split("\r\n")[0];
    requests.push(line);
    const bucketOnly = /^HEAD \/b\/? HTTP/.test(line);
    return bucketOnly && bucketThere ? OK : NOT_FOUND;
  });
  const store = new S3Store({
    bucket: "b",
    endpoint: `http://127.0.0.1:${server.port}`,
    keyId: "k",
    secret: "s",
  });
  try {
    await fn(store, requests);
  } finally {
    store.close();
    await server.close();
  }
}

Deno.test("S3Store.head() answers undefined for a missing object in a bucket that exists", async () => {
  await withServer(true, async (store, requests) => {
    assert.equal(await store.head("k"), undefined);
    assert.equal(await store.head("other"), undefined);
    // The bucket is asked about once, not for every absent object.
    assert.equal(requests.filter((r) => /^HEAD \/b\/? HTTP/.test(r)).length, 1);
  });
});

Deno.test("S3Store.head() fails naming the bucket when the bucket does not exist", async () => {
  await withServer(false, async (store) => {
    const err = await store.head("k").then(() => assert.fail("head() succeeded"), (e) => e);
    assert.ok(err instanceof S3RequestError, String(err));
    assert.equal(err.exitCode, EXIT.s3);
    assert.equal(err.code, "NoSuchBucket");
    assert.equal(err.retryable, false);
    assert.match(err.message, /bucket "b" does not exist/);
  });
});
