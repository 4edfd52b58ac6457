/**
 * Progress lines on stderr: what moves (a dataset@snapshot), bytes so far, the total and percent
 * and ETA when an estimate of the total exists, rate and elapsed time. Redrawn in place at most
 * twice a second. Shown only when asked for: on a terminal, or with `--progress`; never under
 * `--quiet`, and never into a pipe or a log by default (main.ts and pput.ts decide).
 *
 * @module
 */

import { humanBytes } from "./human.ts";

/** Seconds for people: `42s`, `3m05s`, `1h02m`. */
export function humanSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** The text of a progress line (pure): see the module doc. */
export function progressLine(label: string, bytes: number, seconds: number, total?: number) {
  const rate = seconds > 0 ? bytes / seconds : 0;
  let line = `${label}: ${humanBytes(bytes)}`;
  if (total) {
    line += ` of ${humanBytes(total)} (${Math.min(100, (bytes / total) * 100).toFixed(0)}%)`;
  }
  line += `, ${humanBytes(rate)}/s, ${humanSeconds(seconds)}`;
  if (total && rate > 0 && bytes < total) line += `, ETA ${humanSeconds((total - bytes) / rate)}`;
  return line;
}

/** One progress line for one transfer. */
export class Progress {
  #label: string;
  #total?: number;
  #start = performance.now();
  #last = 0;
  #drawn = false;
  #encoder = new TextEncoder();

  /** `total`: the expected bytes (an estimate is enough), for the percentage and the ETA. */
  constructor(label: string, total?: number) {
    this.#label = label;
    this.#total = total;
  }

  #draw(bytes: number, end: string) {
    const secs = (performance.now() - this.#start) / 1000;
    const text = progressLine(this.#label, bytes, secs, this.#total);
    Deno.stderr.writeSync(this.#encoder.encode(`\r${text}\x1b[K${end}`));
    this.#drawn = end === "";
  }

  /** Redraws the line (at most twice a second). */
  update(bytes: number): void {
    const now = performance.now();
    if (now - this.#last < 500) return;
    this.#last = now;
    this.#draw(bytes, "");
  }

  /** Final line. */
  finish(bytes: number): void {
    this.#draw(bytes, "\n");
  }

  /** Ends a line left drawn (a failed transfer), so the next message starts on its own line. */
  stop(): void {
    if (this.#drawn) Deno.stderr.writeSync(this.#encoder.encode("\n"));
    this.#drawn = false;
  }
}

let enabled = false;

/** Turns progress on for {@linkcode withProgress} (main.ts: on a terminal or `--progress`). */
export function enableProgress(on: boolean): void {
  enabled = on;
}

/**
 * `stream` unchanged, or (progress enabled) passed through a counter that draws a
 * {@linkcode Progress} line for `label` and finishes it at the end of the stream.
 */
export function withProgress(
  stream: ReadableStream<Uint8Array>,
  label: string,
  total?: number,
): ReadableStream<Uint8Array> {
  return enabled ? counted(stream, new Progress(label, total)) : stream;
}

/** `stream` through a counter feeding `progress` (finished at the end, stopped on an error). */
export function counted(
  stream: ReadableStream<Uint8Array>,
  progress: Progress,
): ReadableStream<Uint8Array> {
  let bytes = 0;
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) {
          progress.finish(bytes);
          return controller.close();
        }
        bytes += value.length;
        progress.update(bytes);
        controller.enqueue(value);
      } catch (err) {
        progress.stop();
        controller.error(err);
      }
    },
    cancel(reason) {
      progress.stop();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
