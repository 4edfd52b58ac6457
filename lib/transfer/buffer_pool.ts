/**
 * Part buffers, reused so that no part allocates: a fresh 8 MiB `ArrayBuffer` per part halved
 * throughput (PERF-NOTES). Part sizes only grow along a schedule, so a buffer of another size
 * than the one asked for is let go: outgrown buffers cannot pile up.
 *
 * @module
 */

/** A pool of part buffers; see the module doc. */
export class BufferPool {
  #free: ArrayBuffer[] = [];

  /** A buffer of exactly `size` bytes, reused when one is free. */
  take(size: number): Uint8Array {
    this.#free = this.#free.filter((b) => b.byteLength === size);
    return new Uint8Array(this.#free.pop() ?? new ArrayBuffer(size));
  }

  /** Gives a buffer back once its bytes are no longer needed. */
  give(buf: ArrayBuffer): void {
    this.#free.push(buf);
  }

  /** Buffers free for reuse now. */
  get free(): number {
    return this.#free.length;
  }
}
