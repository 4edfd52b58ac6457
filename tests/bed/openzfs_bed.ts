/**
 * The real OpenZFS guest for integration tests (`openzfs_vm.sh`). Importing this module starts
 * the guest once per test process (building its image first when it is not cached: minutes);
 * `openzfsTest(name, fn)` then registers a test that runs against it, or is ignored with the
 * reason when the guest cannot start. Under CI (`underCI()`) such a test fails instead, naming
 * why (the build's or the boot's last line).
 *
 * Deno runs each test file in an isolate of its own, loading this module again, so the guest
 * is not stopped when a file ends: a guest this module starts stops itself after
 * `ZVM_IDLE_STOP` seconds (default {@linkcode IDLE_STOP_S}) without a command, and the next
 * file finds it still up. One that was already running (a developer's `openzfs_vm.sh start`) is
 * used as it is. Tests make their own pools on files in the guest ({@linkcode guestPool}) and
 * touch no other pool.
 *
 * @module
 */

import { withCleanup } from "./cleanup.ts";
import { isRoot, underCI } from "./run.ts";

/** `openzfs_vm.sh`: start, stop, zfs, zpool, run. */
export const OPENZFS_VM = new URL("./openzfs_vm.sh", import.meta.url).pathname;
/** A `zfs` of the guest, for `Z3_ZFS_COMMAND`. */
export const OPENZFS_ZFS = new URL("./openzfs_zfs", import.meta.url).pathname;
/** How long a guest the bed started waits without a command before it stops itself. */
export const IDLE_STOP_S = 300;
/** How long starting the guest may take, a first image build included. */
export const START_TIMEOUT_MS = 30 * 60_000;

/** What a finished guest command reports. */
export interface GuestResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Options of {@linkcode guest}. */
export interface GuestOptions {
  /** Bytes for the command's stdin, then end of stream. @default {no stdin (/dev/null)} */
  stdin?: Uint8Array;
  /** Returns a non-zero exit instead of throwing. @default {false} */
  allowFail?: boolean;
  /** Environment of `openzfs_vm.sh` on top of this process's (ZVM_RUN_DIR, …). */
  env?: Record<string, string>;
  /** Deadline in ms: then the client is killed and the call rejects. @default {120_000} */
  timeoutMs?: number;
}

/** Runs `openzfs_vm.sh ARGS…` (e.g. `["zfs", "list"]`, `["run", "cat"]`) to completion. */
export async function guest(args: string[], options: GuestOptions = {}): Promise<GuestResult> {
  const child = new Deno.Command(OPENZFS_VM, {
    args,
    stdin: options.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: options.env,
  }).spawn();
  const ms = options.timeoutMs ?? 120_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      reject(new Error(`openzfs_vm.sh ${args.join(" ")} did not finish within ${ms / 1000} s`));
    }, ms);
  });
  const feed = (async () => {
    if (!options.stdin) return;
    const writer = child.stdin.getWriter();
    await writer.write(options.stdin).catch(() => {});
    await writer.close().catch(() => {});
  })();
  try {
    const out = await Promise.race([child.output(), deadline]);
    await feed;
    const result = {
      code: out.code,
      stdout: out.stdout,
      stderr: new TextDecoder().decode(out.stderr),
    };
    if (result.code !== 0 && !options.allowFail) {
      throw new Error(`openzfs_vm.sh ${args.join(" ")} failed (${result.code}): ${result.stderr}`);
    }
    return result;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `openzfs_vm.sh ARGS…` and returns its stdout as text; throws on a non-zero exit. */
export async function guestText(args: string[], options: GuestOptions = {}): Promise<string> {
  return new TextDecoder().decode((await guest(args, options)).stdout);
}

async function start(): Promise<{ version?: string; why?: string }> {
  if (!isRoot()) return { why: "the OpenZFS guest needs root (apt, QEMU)" };
  try {
    const { code, stdout, stderr } = await guest(["start"], {
      allowFail: true,
      timeoutMs: START_TIMEOUT_MS,
      env: { ZVM_IDLE_STOP: Deno.env.get("ZVM_IDLE_STOP") ?? String(IDLE_STOP_S) },
    });
    const line = new TextDecoder().decode(stdout).trim();
    if (code !== 0) {
      const last = stderr.trim().split("\n").pop() ?? "";
      return { why: last || `openzfs_vm.sh start exited ${code}` };
    }
    return { version: line };
  } catch (err) {
    return { why: (err as Error).message };
  }
}

const started = await start();
console.error(
  started.why
    ? `test bed: the OpenZFS guest is missing: ${started.why}`
    : `test bed: ${started.version}`,
);

/** The guest's version line (`OpenZFS guest: zfs-2.3.9-… (…)`), or undefined without a guest. */
export const openzfsVersion: string | undefined = started.version;

/**
 * Registers a test that needs the OpenZFS guest (see module doc); `options.missing` is another
 * reason the test cannot run (the S3 server's, say), treated the same way.
 */
export function openzfsTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: { missing?: string } = {},
): void {
  const why = started.why ?? options.missing;
  if (why && !underCI()) {
    Deno.test({ name: `${name} (skipped: ${why})`, ignore: true, fn() {} });
    return;
  }
  Deno.test({
    name,
    async fn(t) {
      if (why) throw new Error(`the OpenZFS test bed is missing under CI: ${why}`);
      await fn(t);
    },
  });
}

/** A pool a test made in the guest, on a file of the guest's own disk. */
export interface GuestPool {
  /** The pool's name (`z3t<random>`; `name` in {@linkcode guestPool} adds to it). */
  name: string;
  /** Destroys the pool and removes its file. */
  destroy(): Promise<void>;
}

/** Makes a fresh pool of `sizeMiB` on a sparse file in the guest's `/var/tmp/z3-pools`. */
export async function guestPool(
  options: { name?: string; sizeMiB?: number; env?: Record<string, string> } = {},
): Promise<GuestPool> {
  const name = `z3t${crypto.randomUUID().slice(0, 8)}${options.name ?? ""}`;
  const file = `/var/tmp/z3-pools/${name}.img`;
  const env = options.env;
  await guest(["run", "mkdir", "-p", "/var/tmp/z3-pools"], { env });
  await guest(["run", "truncate", "-s", `${options.sizeMiB ?? 256}M`, file], { env });
  await guest(["zpool", "create", "-m", `/${name}`, name, file], { env });
  return {
    name,
    async destroy() {
      await withCleanup(
        [() => guest(["run", "rm", "-f", file], { env }).then(() => {})],
        () => guest(["zpool", "destroy", "-f", name], { env }).then(() => {}),
      );
    },
  };
}
