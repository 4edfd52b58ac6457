/**
 * Two children piped together: the first child's stdout is the second child's stdin, one kernel
 * pipe between them that z3 does not read (`zfs send | zstd`). `Deno.Command` cannot hand one
 * child's stdout to another (it offers a pipe to z3, the parent's stream or /dev/null), so this
 * module starts both with `node:child_process`, which under Deno runs under the same
 * `--allow-run` list. Its contract is a single child's (`process.ts`): argv arrays only (never a
 * shell), the same clean environment, the stderr of each kept as a bounded tail, both exit
 * statuses awaited, a non-zero exit a typed error of the stage that failed, both killed on abort.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { Readable } from "node:stream";
import { Z3Error } from "../base/errors.ts";
import { childEnv, failureMessage, formatArgv, whyNotStarted } from "./process.ts";
import { StderrKept } from "./stderr_kept.ts";

/** One stage of a {@linkcode spawnPipeline}: its argv and how its failure becomes an error. */
export interface Stage {
  /** The command and its arguments. */
  argv: readonly string[];
  /**
   * Builds the error thrown when this stage exits non-zero (or cannot start); `stderr` is what
   * it printed (first lines and last three), for callers that classify it.
   */
  makeError?: (message: string, stderr: string) => Z3Error;
}

/** Options for {@linkcode spawnPipeline}. */
export interface PipelineOptions {
  /** Aborting kills both children (SIGTERM). */
  signal?: AbortSignal;
}

/** Two running children, the first's stdout piped into the second's stdin. */
export interface ChildPipeline {
  /** The argv of each stage, for messages. */
  readonly argv: readonly [readonly string[], readonly string[]];
  /** The process IDs of the two children. */
  readonly pids: readonly [number, number];
  /** The second child's stdout. */
  readonly stdout: ReadableStream<Uint8Array>;
  /**
   * Resolves once both children exited 0. Otherwise rejects with the error of the stage that
   * failed first; one that died of a closed pipe (SIGPIPE, "Broken pipe") only when it alone failed.
   */
  readonly done: Promise<void>;
  /** The last lines of stage `stage`'s stderr read so far (0: the first, 1: the second). */
  stderrTail(stage: 0 | 1): string;
  /** Sends a signal to each child that still runs. */
  kill(signal?: Deno.Signal): void;
}

/** How a stage ended: its error (none on exit 0), and whether it died of a closed pipe. */
interface Exit {
  error?: Z3Error;
  /** Killed by SIGPIPE, or it said "Broken pipe": the stage after it stopped reading first. */
  brokenPipe: boolean;
}

/** A started stage: its process, its kept stderr and its exit (an error, or none on exit 0). */
interface Running {
  proc: ChildProcess;
  pid: number;
  stderr: StderrKept;
  /** Resolves at exit with how it ended. */
  exited: Promise<Exit>;
}

/**
 * Starts `stages[0] | stages[1]`; read `stdout`, then await `done` before trusting its end.
 * Rejects with the stage's typed error when either cannot start (the first is then killed).
 */
export async function spawnPipeline(
  stages: readonly [Stage, Stage],
  options: PipelineOptions = {},
): Promise<ChildPipeline> {
  const first = await startStage(stages[0], "ignore");
  let second: Running;
  try {
    second = await startStage(stages[1], first.proc.stdout!);
  } catch (err) {
    first.proc.stdout!.destroy();
    killStage(first, "SIGTERM");
    throw err;
  }
  // z3's own copy of the pipe's read end: closed, so that the first child gets SIGPIPE (not a
  // pipe that never drains) when the second one stops reading.
  first.proc.stdout!.destroy();
  const kill = (signal: Deno.Signal = "SIGTERM") => {
    killStage(first, signal);
    killStage(second, signal);
  };
  const onAbort = () => kill("SIGTERM");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const done = firstFailure([first.exited, second.exited]).finally(() =>
    options.signal?.removeEventListener("abort", onAbort)
  );
  // A rejected `done` that nobody awaits yet must not crash the process.
  done.catch(() => {});
  return {
    argv: [stages[0].argv, stages[1].argv],
    pids: [first.pid, second.pid],
    stdout: Readable.toWeb(second.proc.stdout!) as unknown as ReadableStream<Uint8Array>,
    done,
    stderrTail: (stage) => (stage === 0 ? first : second).stderr.tail(),
    kill,
  };
}

/**
 * Spawns one stage with the clean environment of {@linkcode childEnv}, stdin from `stdin`, stdout
 * and stderr piped to z3; rejects with the stage's error when it cannot start.
 */
async function startStage(stage: Stage, stdin: "ignore" | Readable): Promise<Running> {
  const makeError = stage.makeError ?? ((m: string) => new Z3Error(m, 1));
  const display = formatArgv(stage.argv);
  const fail = (why: string) => makeError(`Cannot run ${display}: ${why}`, "");
  let proc: ChildProcess;
  try {
    proc = spawn(stage.argv[0], stage.argv.slice(1), {
      stdio: [stdin, "pipe", "pipe"],
      env: childEnv(),
    });
  } catch (err) {
    throw fail(whyNotStarted(err));
  }
  // A child that did not start (not found, not permitted, not executable) gets no PID; its
  // "error" event follows and says why.
  const startError = new Promise<unknown>((resolve) => proc.on("error", resolve));
  if (proc.pid === undefined) throw fail(whyNotStarted(await startError));
  const stderr = new StderrKept(proc.stderr!);
  const exited = new Promise<Exit>((resolve) => {
    proc.on("exit", async (code, signal) => {
      await stderr.done;
      if (code === 0) return resolve({ brokenPipe: false });
      resolve({
        error: makeError(failureMessage(display, { code, signal }, stderr.tail()), stderr.kept()),
        brokenPipe: signal === "SIGPIPE" || /broken pipe/i.test(stderr.kept()),
      });
    });
  });
  return { proc, pid: proc.pid, stderr, exited };
}

/** Signals a stage unless it already exited (its PID may belong to another process by then). */
function killStage(stage: Running, signal: Deno.Signal): void {
  if (stage.proc.exitCode !== null || stage.proc.signalCode !== null) return;
  try {
    stage.proc.kill(signal as NodeJS.Signals);
  } catch {
    // already gone
  }
}

/**
 * Waits for every exit; rejects with the error of the stage that failed first, where a stage
 * that died of a closed pipe counts only when no other stage failed (it is their consequence).
 */
async function firstFailure(exits: Promise<Exit>[]): Promise<void> {
  const failed: Exit[] = [];
  await Promise.all(exits.map((p) => p.then((exit) => void (exit.error && failed.push(exit)))));
  const cause = failed.find((exit) => !exit.brokenPipe) ?? failed[0];
  if (cause) throw cause.error;
}
