/**
 * Child processes as values: argv arrays only (never a shell), stdout as a web stream, stderr
 * kept as a bounded tail, and an exit status that becomes a typed error. Children get a clean
 * environment (PATH and LC_ALL only) so that credentials never leak into them.
 *
 * @module
 */

import { permissionHint, Z3Error } from "../base/errors.ts";
import { StderrKept } from "./stderr_kept.ts";

/** Options for {@linkcode spawnChild}. */
export interface SpawnOptions {
  /** Where the child's stdin comes from. @default {"null"} */
  stdin?: "piped" | "null";
  /** Where the child's stdout goes. @default {"piped"} */
  stdout?: "piped" | "null";
  /** Aborting kills the child (SIGTERM). */
  signal?: AbortSignal;
  /**
   * Builds the error thrown on a non-zero exit (or a failed start); `stderr` is what the child
   * printed (its first lines and last three when it printed more than 4 KiB), lines kept, for
   * callers that classify it.
   */
  makeError?: (message: string, stderr: string) => Z3Error;
}

/** A running child process. */
export interface Child {
  /** The argv, for messages. */
  readonly argv: readonly string[];
  /** The child's stdin, when piped. */
  readonly stdin: WritableStream<Uint8Array> | null;
  /** The child's stdout, when piped. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** Resolves on exit 0; rejects with a typed error naming the command and its stderr tail. */
  readonly done: Promise<void>;
  /** The last bytes of stderr read so far. */
  stderrTail(): string;
  /** Sends a signal if the child still runs. */
  kill(signal?: Deno.Signal): void;
}

/** Quotes one argv element for display in messages and dry runs (never executed). */
export function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'"'"'`)}'`;
}

/** Renders an argv for display. */
export function formatArgv(argv: readonly string[]): string {
  return argv.map(quoteArg).join(" ");
}

/** Starts `argv[0]` with `argv.slice(1)`; see {@linkcode Child}. */
export function spawnChild(argv: readonly string[], options: SpawnOptions = {}): Child {
  const makeError = options.makeError ?? ((m: string) => new Z3Error(m, 1));
  const display = formatArgv(argv);
  const proc = start(argv, options, (why) => makeError(`Cannot run ${display}: ${why}`, ""));
  const stderr = new StderrKept(proc.stderr);
  let exited = false;
  const onAbort = () => kill("SIGTERM");
  const kill = (signal: Deno.Signal = "SIGTERM") => {
    if (exited) return;
    try {
      proc.kill(signal);
    } catch {
      // already gone
    }
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const done = (async () => {
    const status = await proc.status;
    exited = true;
    options.signal?.removeEventListener("abort", onAbort);
    await stderr.done;
    if (status.success) return;
    throw makeError(failureMessage(display, status, stderr.tail()), stderr.kept());
  })();
  // A rejected `done` that nobody awaits yet must not crash the process.
  done.catch(() => {});
  return {
    argv,
    stdin: options.stdin === "piped" ? proc.stdin : null,
    stdout: options.stdout === "null" ? null : proc.stdout,
    done,
    stderrTail: () => stderr.tail(),
    kill,
  };
}

/**
 * Spawns the child with a clean environment (PATH and LC_ALL only); when it cannot start, throws
 * `fail(why)` with why in a few words (not found, the permission flag that grants it, …).
 */
function start(
  argv: readonly string[],
  options: SpawnOptions,
  fail: (why: string) => Z3Error,
): Deno.ChildProcess {
  try {
    return new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: options.stdin ?? "null",
      stdout: options.stdout ?? "piped",
      stderr: "piped",
      clearEnv: true,
      env: childEnv(),
    }).spawn();
  } catch (err) {
    throw fail(whyNotStarted(err));
  }
}

/** The whole environment every child gets: PATH and LC_ALL=C, nothing else (no credentials). */
export function childEnv(): Record<string, string> {
  return { PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" };
}

/**
 * Why a child could not start, in a few words: "command not found", the permission flag that
 * grants it, or the first line of the runtime's message.
 */
export function whyNotStarted(err: unknown): string {
  const message = String((err as Error)?.message ?? err).split("\n")[0];
  // Deno's refusal when --allow-run lacks the command: name it and the flag that grants it.
  const denied = permissionHint(message);
  return err instanceof Deno.errors.NotFound || (err as { code?: string })?.code === "ENOENT"
    ? "command not found"
    : denied
    ? denied
    : err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied
    ? `not permitted (${message})`
    : message;
}

/** The message of a child that exited non-zero or was killed, with its stderr's last lines. */
export function failureMessage(
  display: string,
  status: { code: number | null; signal: string | null },
  stderrTail: string,
): string {
  const how = status.signal ? `killed by ${status.signal}` : `exit status ${status.code}`;
  return `Command failed (${how}): ${display}${stderrTail ? `: ${stderrTail}` : ""}`;
}

/** Runs a command to completion and returns its stdout as text; throws on non-zero exit. */
export async function runText(
  argv: readonly string[],
  options: SpawnOptions = {},
): Promise<string> {
  const child = spawnChild(argv, { ...options, stdout: "piped" });
  const text = await new Response(child.stdout).text();
  await child.done;
  return text;
}
