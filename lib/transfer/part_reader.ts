/**
 * Cuts a byte stream into parts: fills caller-supplied buffers by copying (BYOB reads where the
 * stream supports them, so the bytes land in the part buffer directly). Hashing is the caller's
 * (several parts at once: see `md5_lanes.ts`).
 *
 * @module
 */

import { InputError, Z3Error } from "../base/errors.ts";

/** Reads a stream part by part. */
export class PartReader {
  #byob: ReadableStreamBYOBReader | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #leftover: Uint8Array | undefined;
  #done = false;
  /** Bytes read so far. */
  bytesRead = 0;

  #label: string;

  /** `label` names the input in read errors (e.g. "standard input"). */
  constructor(source: ReadableStream<Uint8Array>, label = "the input stream") {
    this.#label = label;
    try {
      this.#byob = source.getReader({ mode: "byob" });
    } catch {
      this.#reader = source.getReader();
    }
  }

  /** True once the stream has ended. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Fills `buffer` (its whole length, unless the stream ends first) and returns the filled view,
   * or `undefined` when the stream had no more bytes. The buffer's memory is reused
   * for the returned view, so `buffer` itself must not be used afterwards: use `bytes.buffer`.
   */
  async fill(buffer: Uint8Array): Promise<Uint8Array | undefined> {
    let filled = 0;
    let buf = buffer;
    const size = buffer.length; // a BYOB read detaches `buf`: its length reads 0 afterwards
    while (filled < size && !this.#done) {
      if (this.#byob) {
        const { value, done } = await this.#read(() => this.#byob!.read(buf.subarray(filled)));
        if (!value) {
          // Cancelled while waiting: the buffer went with the read; nothing more will come.
          this.#done = true;
          return undefined;
        }
        buf = new Uint8Array(value.buffer, value.byteOffset - filled, size);
        filled += value.length;
        if (done) this.#done = true;
      } else {
        let chunk = this.#leftover;
        this.#leftover = undefined;
        if (!chunk) {
          const { value, done } = await this.#read(() => this.#reader!.read());
          if (done) {
            this.#done = true;
            break;
          }
          chunk = value;
        }
        const take = Math.min(chunk.length, size - filled);
        buf.set(chunk.subarray(0, take), filled);
        filled += take;
        if (take < chunk.length) this.#leftover = chunk.subarray(take);
      }
    }
    this.bytesRead += filled;
    if (filled === 0) return undefined;
    return buf.subarray(0, filled);
  }

  async #read<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Z3Error) throw err; // a producer's own typed error
      // The stream is open, so this is an I/O error, not a bad path or flag.
      throw new InputError(`Cannot read ${this.#label}: ${(err as Error)?.message ?? err}`, {
        cause: err,
      });
    }
  }

  /** Stops reading; cancels the source stream. */
  async cancel(reason?: unknown): Promise<void> {
    this.#done = true;
    try {
      await (this.#byob ?? this.#reader)!.cancel(reason);
    } catch {
      // already errored or closed
    }
  }
}
