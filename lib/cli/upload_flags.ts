/**
 * pput's own flag values, read and refused at the edge: user metadata (`K=V`), the most parts
 * allowed, the size estimate, and the file descriptor to read instead of standard input.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { sizeValue } from "../config/size.ts";
import { usableEstimate } from "../transfer/part_size.ts";

// deno-lint-ignore no-control-regex
const CONTROL_CHARACTER = /[\x00-\x1f\x7f]/;

/**
 * User metadata from `K=V` pairs; keys lower-cased (S3 stores them so), a later pair wins.
 * Throws {@linkcode UsageError} for a pair without `=`, with an empty key, or with a control
 * character (a line break would end the HTTP header that carries it).
 */
export function parseMetadata(pairs: readonly string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot use metadata "${kv}": expected KEY=VALUE`);
    const key = kv.slice(0, eq).toLowerCase();
    if (CONTROL_CHARACTER.test(kv)) {
      throw new UsageError(
        `Cannot use metadata "${key}": it holds a control character, which an HTTP header ` +
          `cannot carry`,
      );
    }
    metadata[key] = kv.slice(eq + 1);
  }
  return metadata;
}

/** `--max-parts`: a whole number from 1 to 10000, or `undefined` when not given. */
export function parseMaxParts(text: string | undefined): number | undefined {
  const maxParts = text === undefined ? undefined : Number(text);
  if (
    maxParts !== undefined && !(Number.isInteger(maxParts) && maxParts >= 1 && maxParts <= 10_000)
  ) {
    throw new UsageError(`Cannot parse --max-parts "${text}": expected 1 to 10000`);
  }
  return maxParts;
}

/**
 * `--estimated`: a size (`10G`); one a schedule cannot use (not a whole number, above 5 TiB)
 * counts as none, not as bad input (see `usableEstimate`). Throws for text that is no size.
 */
export function parseEstimated(text: string | undefined): number | undefined {
  try {
    return text === undefined ? undefined : usableEstimate(sizeValue(text));
  } catch (err) {
    throw new UsageError(`Cannot parse --estimated "${text}": ${(err as Error).message}`);
  }
}

/** What pput reads: the stream and how errors name it. */
export interface UploadInput {
  source: ReadableStream<Uint8Array>;
  /** `standard input` or `file descriptor N`. */
  label: string;
}

/** Standard input, or with `fd` (`--file-descriptor N`) that descriptor, opened. */
export async function openInput(fd: string | undefined): Promise<UploadInput> {
  if (fd === undefined) return { source: Deno.stdin.readable, label: "standard input" };
  if (!/^\d+$/.test(fd)) {
    throw new UsageError(`Cannot parse --file-descriptor "${fd}": expected a number`);
  }
  try {
    return { source: (await Deno.open(`/dev/fd/${fd}`)).readable, label: `file descriptor ${fd}` };
  } catch (err) {
    throw new UsageError(
      `Cannot read file descriptor ${fd}: ${(err as Error).message.split("\n")[0]}`,
    );
  }
}
