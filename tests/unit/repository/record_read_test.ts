/**
 * Reading a check record over a scripted HTTP server: an answer cut short is a transport failure
 * (retried, then an S3 error, exit 4), never the integrity verdict "not what z3 writes".
 *
 * @module
 */

import assert from "node:assert/strict";
import { EXIT, IntegrityError, S3Error } from "../../../lib/base/errors.ts";
import { S3Store } from "../../../lib/backend/s3.ts";
import { readCheck } from "../../../lib/repository/check_records.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const RECORD = JSON.stringify({ etag: "e", size: 3 }) + "\n";
const ok = (body: string, method: string) =>
  `HTTP/1.1 200 OK\r\nETag: "r"\r\nContent-Length: ${body.length}\r\n\r\n` +
  (method === "HEAD" ? "" : body);

/** The first half of the record, sent with its length, then chunked without the last chunk. */
const CUTS = [
  ok(RECORD, "GET").slice(0, -RECORD.length / 2),
  `HTTP/1.1 200 OK\r\nETag: "r"\r\nTransfer-Encoding: chunked\r\n\r\n` +
  `5\r\n${RECORD.slice(0, 5)}\r\n`,
];

/** A server whose GETs are cut short `cuts` times (each way in turn), then answered whole. */
async function withRecordServer(cuts: number, fn: (store: S3Store) => Promise<void>) {
  let gets = 0;
  const server = scriptedServer((head) => {
    const method = head.split(" ")[0];
    if (method === "GET" && ++gets <= cuts) return { cut: CUTS[gets % 2] };
    return ok(RECORD, method);
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

Deno.test("readCheck() retries a record whose answer was cut, and reads it whole", async () => {
  await withRecordServer(2, async (store) => {
    assert.deepEqual(await readCheck(store, "p/", "tank@a", 5), { etag: "e", size: 3 });
  });
});

Deno.test("readCheck() fails a record whose answer is always cut as S3 (exit 4), not integrity", async () => {
  await withRecordServer(99, async (store) => {
    const err = await readCheck(store, "p/", "tank@a", 3).then(
      () => assert.fail("readCheck() succeeded"),
      (e) => e,
    );
    assert.ok(!(err instanceof IntegrityError), String(err));
    assert.ok(err instanceof S3Error, String(err));
    assert.equal(err.exitCode, EXIT.s3);
  });
});
