/**
 * A child's stderr kept for error messages: its first bytes (where a usage error puts its reason)
 * and its last ones, the rest dropped.
 *
 * @module
 */

/** How many bytes of a child's stderr are kept for error messages: its last ones. */
const STDERR_TAIL = 4096;
/** And its first ones, where a usage error puts its reason before pages of usage text. */
const STDERR_HEAD = 1024;

/**
 * A child's stderr, read to its end as it comes: its first {@linkcode STDERR_HEAD} bytes and its
 * last {@linkcode STDERR_TAIL} are kept, the rest dropped.
 */
export class StderrKept {
  /** Resolves when stderr has been read to its end (or failed). */
  readonly done: Promise<void>;
  #head = new Uint8Array(0);
  #tail = new Uint8Array(0);
  #seen = 0;
  #decoder = new TextDecoder();

  constructor(stderr: AsyncIterable<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stderr) this.#add(chunk);
    })().catch(() => {});
  }

  #add(chunk: Uint8Array): void {
    if (this.#head.length < STDERR_HEAD) {
      const more = chunk.subarray(0, STDERR_HEAD - this.#head.length);
      const grown = new Uint8Array(this.#head.length + more.length);
      grown.set(this.#head);
      grown.set(more, this.#head.length);
      this.#head = grown;
    }
    this.#seen += chunk.length;
    const tail = this.#tail;
    const joined = new Uint8Array(Math.min(STDERR_TAIL, tail.length + chunk.length));
    const keepOld = Math.max(0, joined.length - chunk.length);
    joined.set(tail.subarray(tail.length - keepOld), 0);
    joined.set(chunk.subarray(Math.max(0, chunk.length - joined.length)), keepOld);
    this.#tail = joined;
  }

  #lastLines(): string[] {
    return this.#decoder.decode(this.#tail).trim().split("\n").slice(-3);
  }

  /** The last three lines of stderr so far, joined with "; ". */
  tail(): string {
    return this.#lastLines().join("; ");
  }

  /** The first lines of stderr and its last three, newlines kept, for callers that classify. */
  kept(): string {
    return this.#seen <= STDERR_TAIL
      ? this.#decoder.decode(this.#tail).trim()
      : `${this.#decoder.decode(this.#head).split("\n").slice(0, -1).join("\n")}\n…\n${
        this.#lastLines().join("\n")
      }`;
  }
}
