/**
 * MD5 of up to four byte arrays at once (one per SIMD lane of the md5x4 WebAssembly kernel,
 * `wasm/md5x4.c`). Upload parts are hashed in groups: four parts cost about what 1.3 cost with
 * Node's scalar MD5, and MD5 is most of pput's CPU (Content-MD5 for every part). One array is
 * hashed with `node:crypto`, which is faster than one lane alone.
 *
 * The bytes are copied through a small window in the module's memory (the kernel cannot see
 * JavaScript buffers), a few blocks per lane at a time, yielding to the event loop between
 * steps so in-flight uploads keep moving while a group of large parts is hashed.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { setImmediate } from "node:timers";
import { MD5X4_WASM } from "./md5x4_wasm.ts";

/** Arrays hashed together at most. */
export const LANES = 4;

const WINDOW = 64 * 1024; // bytes per lane per kernel call
const STATE = 128 * 1024; // the kernel's stack sits below this
const SLOTS = STATE + 64; // LANES windows follow the state
const PAGES = Math.ceil((SLOTS + LANES * WINDOW) / 65536);
/** Bytes hashed (all lanes together) between yields to the event loop. */
const YIELD_EVERY = 8 * 1024 * 1024;
const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

/** An instance of the kernel with its own memory. */
interface Kernel {
  run: (s: number, p0: number, p1: number, p2: number, p3: number, n: number) => void;
  memory: WebAssembly.Memory;
}

let compiled: WebAssembly.Module | undefined;

function kernel(): Kernel {
  compiled ??= new WebAssembly.Module(Uint8Array.from(atob(MD5X4_WASM), (c) => c.charCodeAt(0)));
  const memory = new WebAssembly.Memory({ initial: PAGES, maximum: PAGES });
  const instance = new WebAssembly.Instance(compiled, { env: { memory } });
  return { run: instance.exports.md5x4 as Kernel["run"], memory };
}

/**
 * What MD5 appends to `length` bytes of input (RFC 1321, 3.1-3.2): 0x80, zeros up to 56 mod 64,
 * then the length in bits as 64 bits, little-endian. Exported for its test: bit lengths of 2^32
 * and more (parts of 512 MiB and up) need the high word.
 */
export function md5Tail(length: number): Uint8Array {
  const tail = new Uint8Array(Math.ceil((length + 9) / 64) * 64 - length);
  tail[0] = 0x80;
  const bits = new DataView(tail.buffer);
  bits.setUint32(tail.length - 8, (length * 8) >>> 0, true);
  bits.setUint32(tail.length - 4, Math.floor(length / 2 ** 29), true);
  return tail;
}

/** One input as the kernel sees it: its bytes, then MD5's padding and bit length. */
class Lane {
  pos = 0;
  readonly total: number;
  readonly #data: Uint8Array;
  readonly #tail: Uint8Array;

  constructor(data: Uint8Array) {
    this.#data = data;
    this.#tail = md5Tail(data.length);
    this.total = data.length + this.#tail.length;
  }

  /** Copies the next `n` bytes of the padded input to `to` and advances. */
  copy(to: Uint8Array, n: number): void {
    const len = this.#data.length;
    const fromData = Math.max(0, Math.min(n, len - this.pos));
    if (fromData > 0) to.set(this.#data.subarray(this.pos, this.pos + fromData));
    if (fromData < n) {
      const t = this.pos + fromData - len;
      to.set(this.#tail.subarray(t, t + n - fromData), fromData);
    }
    this.pos += n;
  }
}

/** Hashes byte arrays with MD5, several at once; not for use by two callers at a time. */
export class Md5Lanes {
  #k: Kernel | undefined;
  #busy = false;

  /**
   * `simd: false`, or a runtime whose WebAssembly has no SIMD (V8 needs SSE4.1 on x86), hashes
   * every array with `node:crypto`, one after another: the same digests, more CPU.
   */
  constructor(options: { simd?: boolean } = {}) {
    if (options.simd === false) return;
    try {
      this.#k = kernel();
    } catch {
      this.#k = undefined;
    }
  }

  /** Whether the SIMD kernel is in use. */
  get simd(): boolean {
    return this.#k !== undefined;
  }

  /** The MD5 digests of `arrays` (any number; hashed in groups of {@linkcode LANES}). */
  async digest(arrays: Uint8Array[]): Promise<Uint8Array[]> {
    if (this.#busy) throw new Error("Md5Lanes.digest() is already running");
    this.#busy = true;
    try {
      const out: Uint8Array[] = [];
      for (let i = 0; i < arrays.length; i += LANES) {
        const group = arrays.slice(i, i + LANES);
        const one = group.length === 1 || !this.#k;
        out.push(...(one ? group.map(scalar) : await this.#group(this.#k!, group)));
      }
      return out;
    } finally {
      this.#busy = false;
    }
  }

  async #group(k: Kernel, arrays: Uint8Array[]): Promise<Uint8Array[]> {
    const mem = k.memory.buffer;
    const bytes = new Uint8Array(mem);
    const state = new Uint32Array(mem, STATE, 4 * LANES);
    for (let w = 0; w < 4; w++) state.fill(INIT[w], w * LANES, (w + 1) * LANES);
    const lanes = arrays.map((a) => new Lane(a));
    const slot = (i: number) => SLOTS + i * WINDOW;
    const saved = new Uint32Array(state.length);
    let sinceYield = 0;
    for (;;) {
      const active = lanes.filter((l) => l.pos < l.total);
      if (active.length === 0) break;
      const n = Math.min(WINDOW, ...active.map((l) => l.total - l.pos));
      lanes.forEach((l, i) => {
        if (l.pos < l.total) l.copy(bytes.subarray(slot(i), slot(i) + n), n);
      });
      // Lanes with nothing to hash (finished, or unused) run on whatever is in their window;
      // their state is put back afterwards.
      saved.set(state);
      k.run(STATE, slot(0), slot(1), slot(2), slot(3), n / 64);
      for (let i = 0; i < LANES; i++) {
        if (active.includes(lanes[i])) continue;
        for (let w = 0; w < 4; w++) state[w * LANES + i] = saved[w * LANES + i];
      }
      sinceYield += n * active.length;
      if (sinceYield >= YIELD_EVERY) {
        sinceYield = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    return arrays.map((_, i) => {
      const digest = new Uint8Array(16);
      const view = new DataView(digest.buffer);
      for (let w = 0; w < 4; w++) view.setUint32(w * 4, state[w * LANES + i], true);
      return digest;
    });
  }
}

function scalar(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("md5").update(bytes).digest());
}
