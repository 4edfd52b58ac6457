/**
 * Test-bed helper: runs a setup command (argv array) and returns its stdout; on failure the
 * error carries the command's stderr. Test code only; the product runs children via lib/.
 *
 * @module
 */

/** How long a setup command may run before the bed gives up on it. */
export const RUN_TIMEOUT_MS = 120_000;
/** The deadline of an `apt-get install` the bed runs. */
export const INSTALL_TIMEOUT_MS = 30 * 60_000;

/**
 * Per directory of the `zfs`/`zpool` named in argv ("" for the ones on PATH): the tail of the
 * queue that runs its commands one at a time, and the command that overran its deadline, after
 * which that zfs-fuse counts as wedged.
 */
const zfsLanes = new Map<string, { hung?: string; tail: Promise<unknown> }>();

function isZfsCommand(argv: string[]): boolean {
  const name = argv[0].slice(argv[0].lastIndexOf("/") + 1);
  return name === "zfs" || name === "zpool";
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Returns stdout even when the command exits non-zero. */
  allowFail?: boolean;
  /** Deadline in ms. @default {RUN_TIMEOUT_MS} */
  timeoutMs?: number;
}

/**
 * Runs `argv` to completion; throws with stderr on a non-zero exit, and throws naming the
 * command when it outruns `timeoutMs` (the child is killed and not waited for: a process stuck
 * in a FUSE call may not die).
 *
 * The bed's `zfs` and `zpool` commands run one at a time: zfs-fuse 0.7 wedges for good when
 * two `zfs create` mount at once (seen here: 1 run in 14 of four concurrent creates hung in the
 * mount, and every later create with them). After one of them overran its deadline, every
 * later one fails at once, naming the first, instead of each waiting out its own deadline.
 */
export function run(argv: string[], options: RunOptions = {}): Promise<string> {
  if (!isZfsCommand(argv)) return runNow(argv, options);
  // zfs and zpool talk to the same daemon: one lane for both, per directory they come from.
  const key = argv[0].slice(0, argv[0].lastIndexOf("/") + 1);
  const lane = zfsLanes.get(key) ?? { tail: Promise.resolve() };
  zfsLanes.set(key, lane);
  const mine = lane.tail.then(() => {
    if (lane.hung) {
      throw new Error(`${argv.join(" ")} not run: zfs-fuse is wedged since ${lane.hung}`);
    }
    return runNow(argv, options).catch((err) => {
      if (err instanceof RunTimeout) lane.hung = `${err.command} hung`;
      throw err;
    });
  });
  lane.tail = mine.catch(() => {});
  return mine;
}

/** A command that outran its deadline. */
export class RunTimeout extends Error {
  constructor(readonly command: string, ms: number) {
    super(`${command} did not finish within ${ms / 1000} s`);
    this.name = "RunTimeout";
  }
}

async function runNow(argv: string[], options: RunOptions): Promise<string> {
  const ms = options.timeoutMs ?? RUN_TIMEOUT_MS;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      child.unref();
      reject(new RunTimeout(argv.join(" "), ms));
    }, ms);
  });
  let out: Deno.CommandOutput;
  try {
    out = await Promise.race([child.output(), deadline]);
  } finally {
    clearTimeout(timer);
  }
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success && !options.allowFail) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${argv.join(" ")} failed (${out.code}): ${stderr}`);
  }
  return stdout;
}

/** True when running as root. */
export function isRoot(): boolean {
  return Deno.uid?.() === 0;
}

/**
 * True when running under CI, where a skipped integration test is a failure. Any `CI` value but
 * unset, empty, `0`, `false`, `no` or `off` (in any case) counts: runners set `CI=1` or `CI=True`
 * as often as `CI=true`.
 */
export function underCI(): boolean {
  const value = (Deno.env.get("CI") ?? "").trim().toLowerCase();
  return !["", "0", "false", "no", "off"].includes(value);
}

/** Where `name` is found on PATH, or undefined when it is not there. */
export async function commandPath(name: string): Promise<string | undefined> {
  const out = await run(["sh", "-c", 'command -v "$1"', "sh", name], { allowFail: true });
  return out.trim() || undefined;
}
