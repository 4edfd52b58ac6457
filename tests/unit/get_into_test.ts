/**
 * `S3Store.getInto` (the ranged read of a restore) through the SDK and lib/http.ts, against a
 * scripted HTTP/1.1 server on 127.0.0.1 that answers every GET with the same body: the bytes land
 * in the caller's buffer, whether the body reaches it as lib/http.ts's byte stream (read straight
 * from the socket) or wrapped by the SDK's checksum validation (copied chunk by chunk).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { crc32 } from "node:zlib";
import { S3Store } from "../../lib/s3.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Answers each GET with `body` (206, ETag "e"), plus `extra` header lines; HEAD not needed. */
function server(body: string, extra: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving: Promise<void>[] = [];
  const conns = new Set<Deno.Conn>();
  const accepting = (async () => {
    for await (const c of listener) {
      conns.add(c);
      serving.push((async () => {
        const chunk = new Uint8Array(64 * 1024);
        let buf = "";
        try {
          for (;;) {
            const at = buf.indexOf("\r\n\r\n");
            if (at < 0) {
              const n = await c.read(chunk);
              if (n === null) break;
              buf += decoder.decode(chunk.subarray(0, n));
              continue;
            }
            buf = buf.slice(at + 4);
            const bytes = encoder.encode(
              `HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\n` +
                `ETag: "e"\r\n${extra}\r\n${body}`,
            );
            for (let off = 0; off < bytes.length;) off += await c.write(bytes.subarray(off));
          }
        } catch { /* the client went away */ }
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      })());
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await accepting.catch(() => {});
      await Promise.all(serving);
    },
  };
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
