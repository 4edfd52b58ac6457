import assert from "node:assert/strict";
import { Fletcher4 } from "../../../lib/zfs/fletcher4.ts";

const MASK = (1n << 64n) - 1n;

/** The loop of `fletcher_4_scalar_native` (module/zcommon/zfs_fletcher.c, zfs-2.4.4), in BigInt. */
function reference(bytes: Uint8Array, littleEndian: boolean): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let a = 0n, b = 0n, c = 0n, d = 0n;
  for (let i = 0; i + 4 <= bytes.length; i += 4) {
    a = (a + BigInt(view.getUint32(i, littleEndian))) & MASK;
    b = (b + a) & MASK;
    c = (c + b) & MASK;
    d = (d + c) & MASK;
  }
  return [a, b, c, d];
}

function noise(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

Deno.test("Fletcher4 matches the OpenZFS loop in both byte orders, however the bytes are split", () => {
  const data = noise(300_001);
  for (const littleEndian of [true, false]) {
    const whole = new Fletcher4(littleEndian);
    whole.update(data);
    assert.deepEqual(whole.digest(), reference(data, littleEndian));
    const pieces = new Fletcher4(littleEndian);
    const sizes = [1, 2, 3, 5, 4096, 7, 65_537, 13];
    for (let at = 0, i = 0; at < data.length; i++) {
      const end = Math.min(data.length, at + sizes[i % sizes.length]);
      pieces.update(data.subarray(at, end));
      at = end;
    }
    assert.deepEqual(pieces.digest(), reference(data, littleEndian));
  }
});

Deno.test("Fletcher4 stays exact over 2 MiB of 0xffffffff words (the most each step can add)", () => {
  const ones = new Uint8Array(2 << 20).fill(0xff);
  const sum = new Fletcher4(true);
  sum.update(ones);
  assert.deepEqual(sum.digest(), reference(ones, true));
});

Deno.test("Fletcher4 reads unaligned views and drops a cut word at endRegion, as OpenZFS does", () => {
  const backing = noise(1027);
  const view = backing.subarray(3, 1023); // byteOffset 3: not 4-byte aligned
  const sum = new Fletcher4(true);
  sum.update(view);
  assert.deepEqual(sum.digest(), reference(view, true));

  // Two buffers of 6 bytes: each one's last 2 bytes are not summed.
  const regions = new Fletcher4(true);
  regions.update(backing.subarray(0, 6));
  regions.endRegion();
  regions.update(backing.subarray(6, 12));
  regions.endRegion();
  const expected = new Uint8Array([...backing.subarray(0, 4), ...backing.subarray(6, 10)]);
  assert.deepEqual(regions.digest(), reference(expected, true));
});

Deno.test("Fletcher4.equals() compares with a zio_cksum_t in either byte order", () => {
  const data = noise(4096, 7);
  for (const littleEndian of [true, false]) {
    const sum = new Fletcher4(littleEndian);
    sum.update(data);
    const record = new DataView(new ArrayBuffer(40));
    reference(data, littleEndian).forEach((word, i) =>
      record.setBigUint64(8 + 8 * i, word, littleEndian)
    );
    assert.equal(sum.equals(record, 8, littleEndian), true);
    assert.equal(sum.equals(record, 8, !littleEndian), false);
    record.setUint8(39, record.getUint8(39) ^ 1);
    assert.equal(sum.equals(record, 8, littleEndian), false);
  }
});
