/**
 * Test-bed helper for CLI tests: runs `pput.ts` (or any z3 entry point) as a real child process
 * with `deno run`, a cleared environment (only PATH, HOME and what the test passes) and an empty
 * config file, so the host's `/etc/z3_backup/z3.conf` can never leak into a test. stdout and
 * stderr are read concurrently while the test writes stdin.
 *
 * @module
 */

/** Absolute path of the pput entry point. */
export const PPUT = new URL("../../pput.ts", import.meta.url).pathname;
/** Absolute path of the z3 entry point. */
export const Z3 = new URL("../../main.ts", import.meta.url).pathname;

/** What a finished child reports. */
export interface CliResult {
  /** Exit status (128 + n when the process died from signal n without handling it). */
  code: number;
  /** The signal that killed the process, when it did not exit by itself. */
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

/** Options for {@linkcode spawnCli} and {@linkcode runCli}. */
export interface CliOptions {
  /** Environment on top of PATH, HOME and `Z3_CONFIG` (an empty file); `undefined` drops a key. */
  env?: Record<string, string | undefined>;
  /** Bytes written to stdin, which is then closed. @default {empty stdin} */
  stdin?: Uint8Array;
  /** Permission flags for `deno run`. @default {["--allow-all"]} */
  permissions?: string[];
  /**
   * Runs the child through `bash -c` with this redirection appended to `exec "$@"`, e.g.
   * `5<file` to hand it file descriptor 5.
   */
  redirect?: string;
}

/** A running child; see {@linkcode spawnCli}. */
export interface CliChild {
  pid: number;
  /** Writes to the child's stdin; rejects once the child has closed it. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes stdin (end of stream); ignores a child that already closed it. */
  closeStdin(): Promise<void>;
  kill(signal: Deno.Signal): void;
  /** Resolves when the child has exited and both output streams are drained. */
  result: Promise<CliResult>;
}

let emptyConfig: string | undefined;

/** An empty config file, made once per test process and removed at exit. */
function emptyConfigPath(): string {
  if (!emptyConfig) {
    emptyConfig = Deno.makeTempFileSync({ prefix: "z3-test-", suffix: ".conf" });
    const path = emptyConfig;
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(path);
      } catch { /* already gone */ }
    });
  }
  return emptyConfig;
}

function childEnvironment(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    Z3_CONFIG: emptyConfigPath(),
    ...extra,
  };
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined),
  );
}

/** Starts `deno run <permissions> <script> ...args` with piped stdio; see the module doc. */
export function spawnCli(script: string, args: string[], options: CliOptions = {}): CliChild {
  const denoArgs = ["run", ...(options.permissions ?? ["--allow-all"]), script, ...args];
  const viaBash = options.redirect !== undefined;
  const child = new Deno.Command(viaBash ? "bash" : Deno.execPath(), {
    args: viaBash
      ? ["-c", `exec "$@" ${options.redirect}`, "bash", Deno.execPath(), ...denoArgs]
      : denoArgs,
    env: childEnvironment(options.env),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let closed = false;
  const text = (stream: ReadableStream<Uint8Array>) => new Response(stream).text();
  const stdout = text(child.stdout);
  const stderr = text(child.stderr);
  const result = (async () => {
    const status = await child.status;
    if (!closed) {
      closed = true;
      await writer.close().catch(() => {});
    }
    return {
      code: status.code,
      signal: status.signal,
      stdout: await stdout,
      stderr: await stderr,
    };
  })();
  return {
    pid: child.pid,
    write: (bytes) => writer.write(bytes),
    async closeStdin() {
      if (closed) return;
      closed = true;
      await writer.close().catch(() => {});
    },
    kill: (signal) => child.kill(signal),
    result,
  };
}

/** Runs a CLI to completion, feeding `options.stdin`; see {@linkcode spawnCli}. */
export async function runCli(
  script: string,
  args: string[],
  options: CliOptions = {},
): Promise<CliResult> {
  const child = spawnCli(script, args, options);
  // A child that exits early (usage error) closes its stdin: that is its answer, not ours.
  await child.write(options.stdin ?? new Uint8Array()).catch(() => {});
  await child.closeStdin();
  return await child.result;
}

/** Runs pput with `args` (flags, then KEY); see {@linkcode runCli}. */
export function runPput(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return runCli(PPUT, args, options);
}

/** Starts pput with `args` and returns the running child; see {@linkcode spawnCli}. */
export function spawnPput(args: string[], options: CliOptions = {}): CliChild {
  return spawnCli(PPUT, args, options);
}

/**
 * Runs z3 (`main.ts`) with `args` and `Z3_CONFIG=/dev/null`; `env` (typically `childEnv(...)`
 * plus `FILESYSTEM`) goes on top of `options.env`. See {@linkcode runCli}.
 */
export function runZ3(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: CliOptions = {},
): Promise<CliResult> {
  return runCli(Z3, args, {
    ...options,
    env: { Z3_CONFIG: "/dev/null", ...options.env, ...env },
  });
}
