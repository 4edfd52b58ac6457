/**
 * Child processes as values: argv arrays only (never a shell), stdout as a web stream, stderr
 * kept as a bounded tail, and an exit status that becomes a typed error. Children get a clean
 * environment (PATH and LC_ALL only) so that credentials never leak into them.
 *
 * @module
 */

import { permissionHint, Z3Error } from "../base/errors.ts";

/** How many bytes of a child's stderr are kept for error messages: its last ones. */
const STDERR_TAIL = 4096;
/** And its first ones, where a usage error puts its reason before pages of usage text. */
const STDERR_HEAD = 1024;

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
    const how = status.signal ? `killed by ${status.signal}` : `exit status ${status.code}`;
    const err = stderr.tail();
    throw makeError(
      `Command failed (${how}): ${display}${err ? `: ${err}` : ""}`,
      stderr.kept(),
    );
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
      env: { PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
    }).spawn();
  } catch (err) {
    const message = String((err as Error)?.message ?? err).split("\n")[0];
    // Deno's refusal when --allow-run lacks the command: name it and the flag that grants it.
    const denied = permissionHint(message);
    throw fail(
      err instanceof Deno.errors.NotFound
        ? "command not found"
        : denied
        ? denied
        : err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied
        ? `not permitted (${message})`
        : message,
    );
  }
}

/**
 * A child's stderr, read to its end as it comes: its first {@linkcode STDERR_HEAD} bytes and its
 * last {@linkcode STDERR_TAIL} are kept, the rest dropped.
 */
class StderrKept {
  /** Resolves when stderr has been read to its end (or failed). */
  readonly done: Promise<void>;
  #head = new Uint8Array(0);
  #tail = new Uint8Array(0);
  #seen = 0;
  #decoder = new TextDecoder();

  constructor(stderr: ReadableStream<Uint8Array>) {
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
