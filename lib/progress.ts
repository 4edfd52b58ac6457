/**
 * A progress line on stderr: bytes, rate, elapsed, and ETA when the size is known. Redrawn at
 * most twice a second.
 *
 * @module
 */

import { humanBytes } from "./human.ts";

/** One progress line for one transfer. */
export class Progress {
  #label: string;
  #total?: number;
  #start = performance.now();
  #last = 0;
  #encoder = new TextEncoder();

  constructor(label: string, total?: number) {
    this.#label = label;
    this.#total = total;
  }

  #line(bytes: number): string {
    const secs = (performance.now() - this.#start) / 1000;
    const rate = secs > 0 ? bytes / secs : 0;
    let line = `${this.#label}: ${humanBytes(bytes)} ${humanBytes(rate)}/s ${secs.toFixed(0)}s`;
    if (this.#total && rate > 0 && bytes < this.#total) {
      line += ` ETA ${((this.#total - bytes) / rate).toFixed(0)}s`;
    }
    return line;
  }

  /** Redraws the line (rate-limited). */
  update(bytes: number): void {
    const now = performance.now();
    if (now - this.#last < 500) return;
    this.#last = now;
    Deno.stderr.writeSync(this.#encoder.encode(`\r${this.#line(bytes)}\x1b[K`));
  }

  /** Final line. */
  finish(bytes: number): void {
    Deno.stderr.writeSync(this.#encoder.encode(`\r${this.#line(bytes)}\x1b[K\n`));
  }
}
