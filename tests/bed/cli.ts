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
  /**
   * How long the child may run: then it gets SIGTERM, 10 s later SIGKILL, and `result` rejects
   * naming the command and quoting its stderr so far. @default {CLI_TIMEOUT_MS}
   */
  timeoutMs?: number;
}

/** How long a z3 or pput child may run before the bed stops it (see `CliOptions.timeoutMs`). */
export const CLI_TIMEOUT_MS = 300_000;

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

function concat(chunks: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
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
  const collect = (stream: ReadableStream<Uint8Array>, chunks: Uint8Array[]) =>
    stream.pipeTo(new WritableStream({ write: (c) => void chunks.push(c) }));
  const decode = (chunks: Uint8Array[]) => new TextDecoder().decode(concat(chunks));
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const drained = Promise.all([collect(child.stdout, out), collect(child.stderr, err)]);
  const ms = options.timeoutMs ?? CLI_TIMEOUT_MS;
  let exited = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const kill = (signal: Deno.Signal) => {
        try {
          if (!exited) child.kill(signal);
        } catch { /* already gone */ }
      };
      kill("SIGTERM");
      Deno.unrefTimer(setTimeout(() => kill("SIGKILL"), 10_000));
      child.unref();
      const tail = decode(err).trimEnd().split("\n").slice(-5).join(" | ");
      reject(
        new Error(
          `${script} ${args.join(" ")} did not exit within ${ms / 1000} s; stderr so far: ${
            tail || "(none)"
          }`,
        ),
      );
    }, ms);
  });
  child.status.then(() => exited = true, () => {});
  const result = (async () => {
    try {
      const status = await Promise.race([child.status, deadline]);
      if (!closed) {
        closed = true;
        await writer.close().catch(() => {});
      }
      await Promise.race([drained, deadline]);
      return { code: status.code, signal: status.signal, stdout: decode(out), stderr: decode(err) };
    } finally {
      clearTimeout(timer);
    }
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
