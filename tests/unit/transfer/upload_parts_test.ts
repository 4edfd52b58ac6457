/**
 * The jobs `uploadStream` is made of, each alone: the hex helper, the buffer pool and the hashing
 * pipeline (with a send function standing in for UploadPart; no S3 involved).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BufferPool } from "../../../lib/transfer/buffer_pool.ts";
import { S3Error, UsageError } from "../../../lib/base/errors.ts";
import { toBase64, toHex } from "../../../lib/base/hex.ts";
import { Md5Lanes } from "../../../lib/transfer/md5_lanes.ts";
import { type HashedPart, sendParts } from "../../../lib/transfer/part_pipeline.ts";

const md5 = (b: Uint8Array) => new Uint8Array(createHash("md5").update(b).digest());

Deno.test("toHex() and toBase64() write bytes as S3 wants them", () => {
  assert.deepEqual(toHex(new Uint8Array([0, 1, 0xab, 0xff])), "0001abff");
  assert.deepEqual(toHex(new Uint8Array()), "");
  const digest = md5(new TextEncoder().encode("z3"));
  assert.deepEqual(toHex(digest), createHash("md5").update("z3").digest("hex"));
  assert.deepEqual(toBase64(digest), createHash("md5").update("z3").digest("base64"));
});

Deno.test("BufferPool reuses a given-back buffer and lets outgrown sizes go", () => {
  const pool = new BufferPool();
  const a = pool.take(16);
  pool.give(a.buffer as ArrayBuffer);
  assert.equal(pool.take(16).buffer, a.buffer, "the same memory again");
  pool.give(a.buffer as ArrayBuffer);
  const b = pool.take(32);
  assert.equal(b.length, 32);
  assert.equal(pool.free, 0, "the 16-byte buffer was dropped, not kept beside the 32-byte ones");
});

/** `count` parts of `size` bytes, distinct contents. */
function partsOf(count: number, size: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => new Uint8Array(size).fill(i + 1));
}

/** Runs the pipeline over `parts` with `send`; tracks buffers in use and parts in flight. */
async function pipeline(
  parts: Uint8Array[],
  send: (n: number, part: HashedPart) => Promise<void> | undefined,
  concurrency = 2,
  maxParts = 100,
  stats = { taken: 0 },
) {
  const pool = new BufferPool();
  let next = 2;
  let taken = 2;
  let inUse = 2;
  let mostInUse = 2;
  const given = pool.give.bind(pool);
  pool.give = (buf) => {
    inUse--;
    given(buf);
  };
  const result = await sendParts(parts.slice(0, 2), {
    key: "k",
    readPart: () => {
      if (next >= parts.length) return Promise.resolve(undefined);
      taken++;
      stats.taken = taken;
      inUse++;
      mostInUse = Math.max(mostInUse, inUse);
      return Promise.resolve(parts[next++]);
    },
    ended: () => next >= parts.length,
    pool,
    hasher: new Md5Lanes(),
    concurrency,
    maxParts,
    send,
  });
  return { result, taken, mostInUse };
}

Deno.test("sendParts() sends every part once, in bounded flight, with its MD5, and frees buffers", async () => {
  const parts = partsOf(11, 1000);
  const sent = new Map<number, string>();
  let flying = 0;
  let mostFlying = 0;
  const { result, mostInUse } = await pipeline(parts, async (n, part) => {
    flying++;
    mostFlying = Math.max(mostFlying, flying);
    await new Promise((r) => setTimeout(r, 2));
    sent.set(n, toHex(part.md5));
    flying--;
  }, 2);
  assert.deepEqual([...sent.keys()].sort((a, b) => a - b), parts.map((_, i) => i + 1));
  assert.deepEqual(result.md5s.map(toHex), parts.map((p) => toHex(md5(p))));
  assert.deepEqual([...sent.values()], [...sent.keys()].map((n) => toHex(md5(parts[n - 1]))));
  assert.equal(result.bytes, 11_000);
  assert.ok(mostFlying <= 2, `${mostFlying} parts in flight at once`);
  assert.ok(mostInUse <= 4, `${mostInUse} buffers in use at once (concurrency + 2)`);
});

Deno.test("sendParts() frees the buffer of a part that needs no sending (resumed)", async () => {
  const parts = partsOf(6, 100);
  const { result, mostInUse } = await pipeline(parts, () => undefined, 1);
  assert.equal(result.md5s.length, 6);
  assert.ok(mostInUse <= 3);
});

Deno.test("sendParts() stops after a failed part and names every failed part in one error", async () => {
  const parts = partsOf(8, 100);
  const fail = (n: number) =>
    Promise.reject(new S3Error(`Cannot upload part ${n} of "k": SlowDown (HTTP 503)`));
  await assert.rejects(
    pipeline(parts, (n) => (n === 1 || n === 2 ? fail(n) : Promise.resolve()), 2),
    (err: Error) => err.message === `Cannot upload "k": parts 1, 2: SlowDown (HTTP 503)`,
  );
  const stats = { taken: 0 };
  const slowOk = () => new Promise<void>((r) => setTimeout(r, 5));
  await assert.rejects(
    pipeline(parts, (n) => (n === 1 ? fail(n) : slowOk()), 1, 100, stats),
    /part 1 of "k"/,
  );
  assert.ok(stats.taken < parts.length, `read ${stats.taken} of ${parts.length} parts`);
});

Deno.test("sendParts() refuses a stream that needs more than maxParts parts", async () => {
  await assert.rejects(
    pipeline(partsOf(5, 10), () => Promise.resolve(), 2, 4),
    (err: Error) => err instanceof UsageError && /more than 4 parts/.test(err.message),
  );
});
