/**
 * `S3Store.getInto` (the ranged read of a restore) through the SDK and lib/backend/http.ts, against a
 * scripted HTTP/1.1 server on 127.0.0.1 that answers every GET with the same body: the bytes land
 * in the caller's buffer, whether the body reaches it as lib/backend/http.ts's byte stream (read straight
 * from the socket) or wrapped by the SDK's checksum validation (copied chunk by chunk).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import { S3Store } from "../../../lib/backend/s3.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const decoder = new TextDecoder();

/** Answers each GET with `body` (206, ETag "e"), plus `extra` header lines. */
function server(body: string, extra: string) {
  return scriptedServer(() =>
    `HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\nETag: "e"\r\n${extra}\r\n${body}`
  );
}

const text = Array.from({ length: 300_000 }, (_, i) => String.fromCharCode(33 + (i * 7) % 94))
  .join("");
const crc = Buffer.alloc(4);
crc.writeUInt32BE(crc32(text));

for (
  const [what, extra, checksums] of [
    ["a byte stream", "", "when_required"],
    [
      "a body wrapped by the SDK's checksum check",
      `x-amz-checksum-crc32: ${crc.toString("base64")}\r\n`,
      "when_supported",
    ],
  ] as const
) {
  Deno.test(`S3Store.getInto fills the caller's buffer from ${what}, and tells a body too long`, async () => {
    const s = server(text, extra);
    const store = new S3Store({
      bucket: "b",
      endpoint: `http://127.0.0.1:${s.port}`,
      keyId: "k",
      secret: "s",
      checksums,
      stallMs: 5000,
    });
    try {
      // The whole body into a buffer of its size, 5 bytes into a larger ArrayBuffer.
      const into = new Uint8Array(new ArrayBuffer(text.length + 5), 5, text.length);
      const got = await store.getInto("k", into, { start: 0, end: text.length - 1, etag: "e" });
      assert.deepEqual([got.filled, got.more], [text.length, false]);
      assert.deepEqual(decoder.decode(got.bytes), text);
      // A buffer one byte short of the body: filled, and `more`.
      const short = await store.getInto("k", new Uint8Array(text.length - 1), {
        start: 0,
        end: text.length - 2,
        etag: "e",
      });
      assert.deepEqual([short.filled, short.more], [text.length - 1, true]);
      assert.deepEqual(decoder.decode(short.bytes), text.slice(0, -1));
    } finally {
      store.close();
      await s.close();
    }
  });
}
