import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { LANES, Md5Lanes, md5Tail } from "../../../lib/transfer/md5_lanes.ts";

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function random(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(b.subarray(o, o + 65536));
  return b;
}

Deno.test("Md5Lanes.digest() equals node:crypto at every padding boundary, lanes of unequal length", async () => {
  const lanes = new Md5Lanes();
  // 55/56/63/64/65: where MD5's padding needs one block or two; lengths spread over the lanes so
  // that lanes finish at different steps and idle lanes must keep their state.
  const lengths = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 65535, 65536, 65537];
  for (let shift = 0; shift < LANES; shift++) {
    const arrays = lengths.map((n, i) => random(n + ((i + shift) % 3)));
    const got = await lanes.digest(arrays);
    assert.deepEqual(got.map(hex), arrays.map(md5));
  }
});

Deno.test("Md5Lanes.digest() hashes multi-MiB parts, a short last part and a single array", async () => {
  const lanes = new Md5Lanes();
  const big = [random(3 << 20), random(3 << 20), random(3 << 20), random(777_777)];
  assert.deepEqual((await lanes.digest(big)).map(hex), big.map(md5));
  assert.deepEqual((await lanes.digest([big[3]])).map(hex), [md5(big[3])]);
  assert.deepEqual(await lanes.digest([]), []);
  // Two groups through one instance: the state is reset between groups.
  const six = [...big, big[0], big[1]];
  assert.deepEqual((await lanes.digest(six)).map(hex), six.map(md5));
});

Deno.test("Md5Lanes.digest() refuses to run twice at once on one instance", async () => {
  const lanes = new Md5Lanes();
  const parts = [random(9 << 20), random(9 << 20)];
  const first = lanes.digest(parts);
  await assert.rejects(() => lanes.digest(parts), /already running/);
  assert.deepEqual((await first).map(hex), parts.map(md5));
});

Deno.test("Md5Lanes uses the SIMD kernel here, and without it gives the same digests", async () => {
  assert.equal(new Md5Lanes().simd, true, "WebAssembly SIMD is available on this runtime");
  const scalar = new Md5Lanes({ simd: false });
  assert.equal(scalar.simd, false);
  const arrays = [random(100_000), random(64), random(0), random(5_000_001)];
  assert.deepEqual((await scalar.digest(arrays)).map(hex), arrays.map(md5));
});

Deno.test("md5Tail() pads to 64-byte blocks and ends in the 64-bit bit length, past 2^32 bits too", () => {
  // RFC 1321 3.1-3.2: 0x80, zeros to 56 mod 64, then length × 8 as a little-endian uint64.
  const reference = (length: number) => {
    const size = (length % 64 < 56 ? 64 : 128) - (length % 64);
    const tail = new Uint8Array(size);
    tail[0] = 0x80;
    new DataView(tail.buffer).setBigUint64(size - 8, BigInt(length) * 8n, true);
    return tail;
  };
  const lengths = [
    0,
    55,
    56,
    64,
    2 ** 29 - 1, // the last length whose bit length fits in 32 bits
    2 ** 29, // 512 MiB: bit length exactly 2^32
    2 ** 29 + 1,
    5 * 2 ** 30 + 7, // a 5 GiB part, S3's largest
    5 * 2 ** 40 + 13, // a 5 TiB stream, S3's largest object
  ];
  for (const length of lengths) {
    assert.deepEqual(hex(md5Tail(length)), hex(reference(length)), `length ${length}`);
  }
});
