/**
 * What `main.ts` and `pput.ts` share at the edge: one AbortController per run wired to
 * SIGINT/SIGTERM, the single place that turns errors into a one-line message and an exit
 * status, and redaction of secrets from everything printed.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { describeError, EXIT, InterruptedError, UsageError, Z3Error } from "./errors.ts";

const secrets = new Set<string>();

/** Registers values that must never be printed. */
export function addSecrets(values: Iterable<string>): void {
  for (const v of values) if (v && v.length >= 4) secrets.add(v);
}

/** Replaces every registered secret in `text` with `***`. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.replaceAll(s, "***");
  return out;
}

/** Writes one line to stderr, redacted. */
export function printErr(line: string): void {
  Deno.stderr.writeSync(new TextEncoder().encode(redact(line) + "\n"));
}

/** Writes one line to stdout, redacted. */
export function printOut(line: string): void {
  const bytes = new TextEncoder().encode(redact(line) + "\n");
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
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
        printErr(
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
    printErr(`${name}: ${message}`);
    if (debug && !(e instanceof Z3Error) && e instanceof Error && e.stack) printErr(e.stack);
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
