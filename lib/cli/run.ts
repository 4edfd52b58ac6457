/**
 * What `main.ts` and `pput.ts` share at the edge: one AbortController per run wired to
 * SIGINT/SIGTERM, the single place that turns errors into a one-line message and an exit
 * status, and redaction of secrets from everything printed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { describeError, EXIT, InterruptedError, UsageError, Z3Error } from "../base/errors.ts";
import { SIGNING_KEY_TAG } from "../config/signing_keys.ts";
import { escapeControls } from "../chain/names.ts";

const secrets = new Set<string>();

/**
 * Texts that are secret by their shape, redacted whether or not they were registered, from the
 * first line a run prints: an age identity (`AGE-SECRET-KEY-1…`, either case) and a z3 signing
 * key (`z3-sign-1:…`), whatever setting they were given to.
 */
const SECRET_SHAPES = [
  /AGE-SECRET-KEY-1[0-9A-Z]*/gi,
  new RegExp(`${SIGNING_KEY_TAG}[A-Za-z0-9+/=]*`, "g"),
];

/** Registers values that must never be printed. */
export function addSecrets(values: Iterable<string>): void {
  for (const v of values) if (v && v.length >= 4) secrets.add(v);
}

/**
 * Replaces every registered secret, and every text shaped like an age identity or a signing key,
 * in `text` with `***`.
 */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.replaceAll(s, "***");
  for (const shape of SECRET_SHAPES) out = out.replace(shape, "***");
  return out;
}

let quiet = false;
let stdoutClosed = false;

/**
 * `--quiet`: from now on {@linkcode printOut} and {@linkcode printErr} print nothing; the error
 * that ends a failed run still reaches stderr.
 */
export function setQuiet(on: boolean): void {
  quiet = on;
}

/** Whether `--quiet` is in force. */
export function isQuiet(): boolean {
  return quiet;
}

/** `line` as it may reach a terminal: secrets redacted, control characters escaped. */
function forTerminal(line: string): string {
  return escapeControls(redact(line));
}

function writeErr(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(forTerminal(line) + "\n"));
}

/**
 * Writes one line to stderr, redacted and with control characters escaped (see
 * `escapeControls`), nothing under `--quiet`. Every error and warning passes here or through
 * {@linkcode runCommand}'s error line, which does the same.
 */
export function printErr(line: string): void {
  if (!quiet) writeErr(line);
}

/**
 * Writes one line to stdout, redacted and with control characters escaped (a `--json` document
 * keeps its values: an escaped character parses back to itself), nothing under `--quiet`. Once the reader has closed
 * stdout (`z3 status | head -1`), later lines are dropped and the run goes on to its usual end.
 */
export function printOut(line: string): void {
  if (quiet || stdoutClosed) return;
  const bytes = new TextEncoder().encode(forTerminal(line) + "\n");
  let written = 0;
  try {
    while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    stdoutClosed = true;
  }
}

/**
 * For a run that streams to stdout (`z3 get`): a reader that closed stdout took what it wanted,
 * so the run ends quietly; any other error is rethrown.
 */
export function ignoreClosedStdout(err: unknown): undefined {
  if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  stdoutClosed = true;
  return undefined;
}

/** A run's context: its abort signal and the debug switch. */
export interface RunContext {
  signal: AbortSignal;
  debug: boolean;
}

/**
 * How long a run may go on after SIGINT/SIGTERM: then it exits whatever it still waits for (a
 * request the endpoint never answers, a child that ignores SIGTERM). Normally it ends long before:
 * requests are cancelled and an upload's abort gets one attempt of at most 1 s.
 */
export const STOP_DEADLINE_MS = 12_000;

/**
 * Runs `fn` as a command: SIGINT/SIGTERM abort `signal` (a second signal, or
 * {@linkcode STOP_DEADLINE_MS} without an end, exits at once), a thrown error becomes
 * `NAME: message` on stderr and its exit status. Never returns.
 */
export async function runCommand(
  name: string,
  fn: (ctx: RunContext) => Promise<number>,
): Promise<never> {
  const controller = new AbortController();
  let caught: "SIGINT" | "SIGTERM" | undefined;
  const handlers: [Deno.Signal, () => void][] = [];
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const handler = () => {
      if (caught) Deno.exit(sig === "SIGINT" ? EXIT.sigint : EXIT.sigterm);
      caught = sig;
      const interrupted = new InterruptedError(sig);
      controller.abort(interrupted);
      const watchdog = setTimeout(() => {
        writeErr(
          `${name}: ${interrupted.message}; still running ${STOP_DEADLINE_MS / 1000} s after ` +
            `the signal, so exiting now (an upload may be left pending: z3 cleanup aborts it)`,
        );
        Deno.exit(interrupted.exitCode);
      }, STOP_DEADLINE_MS);
      Deno.unrefTimer(watchdog);
    };
    try {
      Deno.addSignalListener(sig, handler);
      handlers.push([sig, handler]);
    } catch { /* signals unsupported here */ }
  }
  const debug = Deno.args.includes("--debug");
  let code: number;
  try {
    code = await fn({ signal: controller.signal, debug });
  } catch (err) {
    const e = caught ? new InterruptedError(caught) : err;
    const message = caught ? `${describeError(e)}; ${describeError(err)}` : describeError(e);
    writeErr(`${name}: ${message}`);
    if (debug && !(e instanceof Z3Error) && e instanceof Error && e.stack) writeErr(e.stack);
    code = e instanceof Z3Error ? e.exitCode : EXIT.bug;
  }
  for (const [sig, handler] of handlers) Deno.removeSignalListener(sig, handler);
  Deno.exit(code);
}

/** Options description for {@linkcode parseFlags}. */
export type FlagSpec = Record<
  string,
  { type: "string" | "boolean"; multiple?: boolean; short?: string }
>;

/** Parses argv strictly; unknown flags and missing values become a {@linkcode UsageError}. */
export function parseFlags(args: string[], spec: FlagSpec): {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
} {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: spec,
      allowPositionals: true,
      strict: true,
    });
    return {
      values: values as Record<string, string | boolean | string[] | undefined>,
      positionals,
    };
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`${msg} (see --help)`);
  }
}

/**
 * Splits argv into the command and its arguments; `global` options (from `spec`) may come before
 * the command (`z3 --config X backup`). The command is the first argument that is neither an
 * option nor the value of a string option; `undefined` when there is none.
 */
export function splitCommand(args: string[], spec: FlagSpec): {
  command?: string;
  rest: string[];
} {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") break;
    if (!a.startsWith("-")) {
      return { command: a, rest: [...args.slice(0, i), ...args.slice(i + 1)] };
    }
    const name = a.startsWith("--") ? a.slice(2) : undefined;
    if (name !== undefined && !name.includes("=") && spec[name]?.type === "string") i++;
  }
  return { rest: args };
}

/**
 * One command's part of `help`: its `Usage:` lines (`  z3 NAME …` and their continuation) and
 * its paragraph under `Commands:` (`  NAME  …` and the lines indented under it), then a pointer
 * to `--help` for settings and exit codes.
 */
export function commandHelp(help: string, program: string, command: string): string {
  const lines = help.split("\n");
  const usage: string[] = [];
  const text: string[] = [];
  let section = "";
  let into: string[] | undefined;
  for (const line of lines) {
    if (/^\S.*:$/.test(line)) {
      section = line;
      into = undefined;
      continue;
    }
    const usageStart = new RegExp(`^  ${program} ${command}\\b`).test(line);
    const commandStart = new RegExp(`^  ${command} `).test(line);
    if (section === "Usage:" && usageStart) into = usage;
    else if (section === "Commands:" && commandStart) into = text;
    else if (!/^ {4,}\S/.test(line)) into = undefined;
    into?.push(line);
  }
  return [
    "Usage:",
    ...usage,
    "",
    ...text,
    "",
    `Settings, other options and exit status: ${program} --help`,
  ].join("\n");
}
