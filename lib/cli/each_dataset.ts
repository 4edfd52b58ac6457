/**
 * Runs one command over several datasets: each in turn, each on its own (its own settings,
 * chain and lock, made by the caller's `fn`), so that one dataset's failure does not stop the
 * others. A failure is one `z3: DATASET: message` line on stderr when it happens; the run ends
 * with one summary line and exits with the first failed dataset's exit status. A signal stops
 * the whole run at once. With a single dataset there is no loop: its error is the run's, as it
 * always was.
 *
 * @module
 */

import { describeError, InterruptedError, Z3Error, ZfsError } from "../base/errors.ts";
import { printable } from "../chain/names.ts";

/** How one dataset's run ended. */
export type DatasetOutcome<T> =
  | { dataset: string; ok: true; value: T }
  | { dataset: string; ok: false; error: unknown; code: number };

/** Options of {@linkcode eachDataset}. */
export interface EachOptions {
  /** Aborting stops the loop (the running dataset's error is rethrown). */
  signal?: AbortSignal;
  /** Where failure lines go (stderr). */
  err: (line: string) => void;
}

/**
 * Runs `fn` for each of `datasets`, in order (see module doc). With one dataset, `fn`'s error
 * is thrown as it is.
 */
export async function eachDataset<T>(
  datasets: readonly string[],
  fn: (dataset: string) => Promise<T>,
  options: EachOptions,
): Promise<DatasetOutcome<T>[]> {
  if (datasets.length === 1) {
    return [{ dataset: datasets[0], ok: true, value: await fn(datasets[0]) }];
  }
  const outcomes: DatasetOutcome<T>[] = [];
  for (const dataset of datasets) {
    options.signal?.throwIfAborted();
    try {
      outcomes.push({ dataset, ok: true, value: await fn(dataset) });
    } catch (error) {
      if (options.signal?.aborted || error instanceof InterruptedError) throw error;
      const code = error instanceof Z3Error ? error.exitCode : 1;
      options.err(`z3: ${printable(dataset)}: ${describeError(error)}`);
      outcomes.push({ dataset, ok: false, error, code });
    }
  }
  return outcomes;
}

/**
 * The short reason of an error for the summary line: for a failed zfs command, the last line
 * zfs printed; else the message without the leading `Cannot …: ` clause, up to the first `; `,
 * and when that is still long, up to the first ` (`; at most 80 characters.
 */
export function shortReason(error: unknown): string {
  const said = error instanceof ZfsError ? error.stderr.trim().split("\n").at(-1) : undefined;
  let text = said || describeError(error).replace(/^Cannot (?:[^":]|"(?:[^"\\]|\\.)*")*?: /, "");
  if (!said) {
    const semi = text.indexOf("; ");
    if (semi > 0) text = text.slice(0, semi);
    const paren = text.indexOf(" (");
    if (text.length > 60 && paren > 0) text = text.slice(0, paren);
  }
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

/**
 * The summary line: `4 datasets: 2 backed up, 1 up to date, 1 failed: pool/b (histories
 * diverged)`. `describe` names what a successful dataset's run did; counts keep the order in
 * which each description first occurs.
 */
export function summaryLine<T>(
  outcomes: readonly DatasetOutcome<T>[],
  describe: (value: T) => string,
): string {
  const counts = new Map<string, number>();
  const failed: string[] = [];
  for (const o of outcomes) {
    if (o.ok) {
      const what = describe(o.value);
      counts.set(what, (counts.get(what) ?? 0) + 1);
    } else failed.push(`${printable(o.dataset)} (${shortReason(o.error)})`);
  }
  const parts = [...counts].map(([what, n]) => `${n} ${what}`);
  if (failed.length > 0) parts.push(`${failed.length} failed: ${failed.join(", ")}`);
  return `${outcomes.length} datasets: ${parts.join(", ")}`;
}

/** The run's exit status: the first failed dataset's, else `whenAllRan` (default 0). */
export function exitCodeOf<T>(outcomes: readonly DatasetOutcome<T>[], whenAllRan = 0): number {
  const first = outcomes.find((o) => !o.ok);
  return first && !first.ok ? first.code : whenAllRan;
}
