/**
 * Fletcher-4 as OpenZFS computes it for send streams: over 32-bit words, four running sums
 * `a += w; b += a; c += b; d += c`, each kept modulo 2^64 (`fletcher_4_scalar_native` and
 * `fletcher_4_scalar_byteswap` in module/zcommon/zfs_fletcher.c, OpenZFS tag zfs-2.4.4). A buffer
 * whose length is not a multiple of 4 has its last `length % 4` bytes left out, as there.
 *
 * Each 64-bit sum is held as two Numbers, a high and a low 32-bit half. The inner loop adds only
 * the low halves, without carrying, for {@linkcode BLOCK_WORDS} words; the high halves then
 * advance by the closed form of those steps and the carries move up. With every half below 2^32
 * at a block's start and words below 2^32, the low `d` ends a block below 2^32 × C(68, 4) < 2^52,
 * so Number arithmetic is exact (the unit test compares with BigInt over 0xffffffff words).
 *
 * @module
 */

const TWO_32 = 4294967296;
/** Words summed between carries; with all halves below 2^32 at its start, `d` stays below 2^52. */
const BLOCK_WORDS = 64;
/** Bytes copied at a time when a buffer is not 4-byte aligned or must be byte-swapped. */
const SCRATCH_BYTES = 64 * 1024;
const HOST_LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** A running Fletcher-4 checksum over words of one byte order. */
export class Fletcher4 {
  #aLo = 0;
  #aHi = 0;
  #bLo = 0;
  #bHi = 0;
  #cLo = 0;
  #cHi = 0;
  #dLo = 0;
  #dHi = 0;
  /** Bytes of a word cut by the end of the last `update`, kept until the next. */
  #partial = new Uint8Array(4);
  #partialLength = 0;
  #native: boolean;
  #scratch = new Uint8Array(SCRATCH_BYTES);

  /** @param littleEndian whether the words are little-endian (OpenZFS's "native" on x86) */
  constructor(littleEndian: boolean) {
    this.#native = littleEndian === HOST_LITTLE_ENDIAN;
  }

  /**
   * Adds `bytes` to the sum. A word may be split across calls; {@linkcode endRegion} drops the
   * bytes of an unfinished word, as OpenZFS does at the end of each buffer it sums.
   */
  update(bytes: Uint8Array): void {
    let pos = 0;
    if (this.#partialLength > 0) {
      while (this.#partialLength < 4 && pos < bytes.length) {
        this.#partial[this.#partialLength++] = bytes[pos++];
      }
      if (this.#partialLength < 4) return;
      if (!this.#native) swapWords(this.#partial, 4);
      this.#sumAligned(this.#partial, 0, 4);
      this.#partialLength = 0;
    }
    const whole = pos + ((bytes.length - pos) & ~3);
    if ((bytes.byteOffset + pos) % 4 === 0 && this.#native) {
      this.#sumAligned(bytes, pos, whole);
    } else {
      for (let at = pos; at < whole; at += SCRATCH_BYTES) {
        const end = Math.min(whole, at + SCRATCH_BYTES);
        this.#scratch.set(bytes.subarray(at, end));
        if (!this.#native) swapWords(this.#scratch, end - at);
        this.#sumAligned(this.#scratch, 0, end - at);
      }
    }
    for (let at = whole; at < bytes.length; at++) this.#partial[this.#partialLength++] = bytes[at];
  }

  /** Ends a buffer in OpenZFS's sense: bytes of an unfinished word are not summed. */
  endRegion(): void {
    this.#partialLength = 0;
  }

  /**
   * Whether the sum equals the four 64-bit words at `offset` in `view` (a `zio_cksum_t`), read in
   * the given byte order.
   */
  equals(view: DataView, offset: number, littleEndian: boolean): boolean {
    const halves = [
      [this.#aHi, this.#aLo],
      [this.#bHi, this.#bLo],
      [this.#cHi, this.#cLo],
      [this.#dHi, this.#dLo],
    ];
    return halves.every(([hi, lo], i) => {
      const at = offset + 8 * i;
      const [wantHi, wantLo] = littleEndian
        ? [view.getUint32(at + 4, true), view.getUint32(at, true)]
        : [view.getUint32(at, false), view.getUint32(at + 4, false)];
      return hi === wantHi && lo === wantLo;
    });
  }

  /** The four sums as unsigned 64-bit values, in the order a, b, c, d. */
  digest(): [bigint, bigint, bigint, bigint] {
    const join = (hi: number, lo: number) => (BigInt(hi) << 32n) | BigInt(lo);
    return [
      join(this.#aHi, this.#aLo),
      join(this.#bHi, this.#bLo),
      join(this.#cHi, this.#cLo),
      join(this.#dHi, this.#dLo),
    ];
  }

  /** Sums the 4-byte words of `bytes[from, to)`; `bytes.byteOffset + from` is 4-byte aligned. */
  #sumAligned(bytes: Uint8Array, from: number, to: number): void {
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset + from, (to - from) / 4);
    let a = this.#aLo, b = this.#bLo, c = this.#cLo, d = this.#dLo;
    let ah = this.#aHi, bh = this.#bHi, ch = this.#cHi, dh = this.#dHi;
    for (let i = 0; i < words.length;) {
      const end = Math.min(words.length, i + BLOCK_WORDS);
      const n = end - i;
      // n steps of b += a, c += b, d += c on the high halves, from their values before the block.
      const n2 = (n * (n + 1)) / 2;
      const n3 = (n * (n + 1) * (n + 2)) / 6;
      dh = (dh + n * ch + n2 * bh + n3 * ah) % TWO_32;
      ch = (ch + n * bh + n2 * ah) % TWO_32;
      bh = (bh + n * ah) % TWO_32;
      for (; i < end; i++) {
        a += words[i];
        b += a;
        c += b;
        d += c;
      }
      let carry = Math.floor(a / TWO_32);
      a -= carry * TWO_32;
      ah = (ah + carry) % TWO_32;
      carry = Math.floor(b / TWO_32);
      b -= carry * TWO_32;
      bh = (bh + carry) % TWO_32;
      carry = Math.floor(c / TWO_32);
      c -= carry * TWO_32;
      ch = (ch + carry) % TWO_32;
      carry = Math.floor(d / TWO_32);
      d -= carry * TWO_32;
      dh = (dh + carry) % TWO_32;
    }
    this.#aLo = a, this.#bLo = b, this.#cLo = c, this.#dLo = d;
    this.#aHi = ah, this.#bHi = bh, this.#cHi = ch, this.#dHi = dh;
  }
}

/** Reverses the bytes of each 4-byte word in `bytes[0, length)`. */
function swapWords(bytes: Uint8Array, length: number): void {
  for (let i = 0; i < length; i += 4) {
    const b0 = bytes[i], b1 = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b1;
    bytes[i + 3] = b0;
  }
}
