/**
 * The one shape through which `main.ts` dispatches a command: each command file exports a
 * {@linkcode CliCommand} that takes the parsed command line ({@linkcode CliContext}), runs the
 * command on one dataset at a time and prints its own output (text, `--parseable`, its part of
 * the `--json` document). `main.ts` keeps the flags, the config, the datasets and the loop.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import type { S3Store } from "../backend/s3.ts";

/** The parsed flag values of one command line (as `parseFlags` returns them). */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** Prints one line (stdout or stderr; nothing under `--quiet`). */
export type Printer = (line: string) => void;

/**
 * The items every dataset adds to a run's one `--json` document. `main.ts` prints the document
 * once, after every dataset, when at least one dataset added its part (zero items included).
 */
export class JsonItems {
  #items: unknown[] = [];
  #ready = false;

  /** Adds one dataset's items (possibly none); from now on the document is printed. */
  add(items: readonly unknown[]): void {
    this.#ready = true;
    this.#items.push(...items);
  }

  /** Every item added so far, in order. */
  get items(): unknown[] {
    return this.#items;
  }

  /** Whether any dataset added its part. */
  get ready(): boolean {
    return this.#ready;
  }
}

/** One command line, as parsed and set up by `main.ts` before any dataset runs. */
export interface CliContext {
  /** The parsed flags: the command's own and the common ones. */
  values: FlagValues;
  /** The arguments that are not flags (SNAPSHOT, KEY). */
  positionals: string[];
  /** The datasets the run goes over; empty for a command that takes one dataset. */
  datasets: readonly string[];
  /** Several datasets, or `--all`: rows and lines name their dataset. */
  many: boolean;
  /** Whether progress lines are shown on stderr. */
  progress: boolean;
  /** The run's abort signal (SIGINT/SIGTERM). */
  signal: AbortSignal;
  /** The `--json` document's items, for the commands that run over several datasets. */
  json: JsonItems;
  /** Where results go (stdout). */
  out: Printer;
  /** Where diagnostics go (stderr). */
  err: Printer;
}

/** A command's run, started from one command line. */
export interface CliRun {
  /**
   * Runs the command on one dataset, with that dataset's settings and store, printing as it
   * goes: the word the summary line over several datasets counts (`backed up`), or, for a
   * command that takes one dataset, its exit status.
   */
  runDataset(config: Config, store: S3Store): Promise<string | number>;
  /**
   * The `--json` document from every dataset's items.
   * @default {the items as one array}
   */
  jsonDocument?(items: unknown[]): unknown;
  /** After every dataset ran without the loop throwing: what is printed once at the end. */
  finish?(): void;
  /**
   * The exit status when every dataset ran.
   * @default {0}
   */
  exitCode?(): number;
}

/** What a command file exports for `main.ts`. */
export interface CliCommand {
  /** Runs over every dataset of FILESYSTEM (one summary line over several); else one dataset. */
  many: boolean;
  /** The one argument it takes (`SNAPSHOT`, `KEY`), and whether it may be left out. */
  operand?: { name: string; optional?: boolean };
  /** Checks the command line against the datasets (throws `UsageError`) and starts the run. */
  start(context: CliContext): CliRun;
}
