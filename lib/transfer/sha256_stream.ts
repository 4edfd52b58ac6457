/**
 * The SHA-256 of an object's bytes while they stream: a TransformStream that passes every chunk
 * on unchanged and hashes it (node:crypto `createHash("sha256")`). The digest can be read once
 * the stream has ended; reading it earlier is a bug and throws, so a stream cut short never
 * yields the hash of a part of it.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** A pass-through stream that computes the SHA-256 of what passed (see module doc). */
export class Sha256Stream extends TransformStream<Uint8Array, Uint8Array> {
  #hex: string | undefined;
  #bytes = 0;

  constructor() {
    const hash = createHash("sha256");
    super({
      transform: (chunk, controller) => {
        hash.update(chunk);
        this.#bytes += chunk.length;
        controller.enqueue(chunk);
      },
      flush: () => {
        this.#hex = hash.digest("hex");
      },
    });
  }

  /** Lower-case hex SHA-256 of every byte that passed; throws before the stream has ended. */
  get hex(): string {
    if (this.#hex === undefined) {
      throw new Error("Cannot read the SHA-256 of a stream before it has ended");
    }
    return this.#hex;
  }

  /** Bytes that have passed so far. */
  get bytes(): number {
    return this.#bytes;
  }
}
