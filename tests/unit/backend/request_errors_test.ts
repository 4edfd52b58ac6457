/**
 * How `S3Store` classifies a request that could not be built or that failed: a header value
 * with a control character is refused before it is sent and is never retried (a bug, exit 1),
 * nor is any `TypeError`; a network error stays retryable.
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT } from "../../../lib/base/errors.ts";
import { classifyError, S3RequestError, S3Store } from "../../../lib/backend/s3.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

Deno.test("S3Store.put() refuses a header value with a control character, unsent and not retryable", async () => {
  let requests = 0;
  const server = scriptedServer(() => {
    requests++;
    return 'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 0\r\n\r\n';
  });
  const store = new S3Store({
    bucket: "b",
    endpoint: `http://127.0.0.1:${server.port}`,
    keyId: "k",
    secret: "s",
  });
  try {
    for (const options of [{ metadata: { a: "b\r\nc" } }, { storageClass: "X\u0001" }]) {
      const err = await store.put("k", new Uint8Array(3), "", options).then(
        () => assert.fail("put() succeeded"),
        (e) => e,
      );
      assert.ok(err instanceof S3RequestError, String(err));
      assert.equal(err.retryable, false);
      assert.equal(err.exitCode, EXIT.bug);
      assert.match(err.message, /control character/);
    }
    assert.equal(requests, 0);
  } finally {
    store.close();
    await server.close();
  }
});

Deno.test("classifyError() never retries a TypeError or RangeError, and still retries a network error", () => {
  for (const thrown of [new TypeError("bad argument"), new RangeError("out of range")]) {
    const err = classifyError('list bucket "b"', thrown);
    assert.equal(err.retryable, false);
    assert.equal(err.exitCode, EXIT.bug);
  }
  const refused = classifyError('list bucket "b"', new Deno.errors.ConnectionRefused("refused"));
  assert.equal(refused.retryable, true);
  assert.equal(refused.exitCode, EXIT.s3);
});
