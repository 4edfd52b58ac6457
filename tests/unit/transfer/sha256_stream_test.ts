import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Sha256Stream } from "../../../lib/transfer/sha256_stream.ts";

Deno.test("Sha256Stream passes chunks unchanged and hashes them all", async () => {
  const chunks = [new Uint8Array([1, 2, 3]), new Uint8Array(0), new Uint8Array(70_000).fill(7)];
  const hasher = new Sha256Stream();
  const out = await new Response(ReadableStream.from(chunks).pipeThrough(hasher)).bytes();
  const whole = new Uint8Array([...chunks[0], ...chunks[2]]);
  assert.deepEqual(out, whole);
  assert.equal(hasher.hex, createHash("sha256").update(whole).digest("hex"));
  assert.equal(hasher.bytes, whole.length);
});

Deno.test("Sha256Stream of nothing is SHA-256 of the empty string", async () => {
  const hasher = new Sha256Stream();
  await ReadableStream.from<Uint8Array>([]).pipeThrough(hasher).pipeTo(new WritableStream());
  // FIPS 180-2's SHA-256 of "" (also `sha256sum </dev/null`).
  assert.equal(hasher.hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});

Deno.test("Sha256Stream refuses to give a digest before the stream has ended", async () => {
  const hasher = new Sha256Stream();
  const writer = hasher.writable.getWriter();
  const reader = hasher.readable.getReader();
  const written = writer.write(new Uint8Array([1]));
  await reader.read();
  await written;
  assert.throws(() => hasher.hex, /before it has ended/);
  await writer.abort(new Error("cut"));
  await reader.cancel().catch(() => {});
  assert.throws(() => hasher.hex, /before it has ended/);
});
