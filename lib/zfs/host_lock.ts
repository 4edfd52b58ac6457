/**
 * One `z3 backup` per dataset at a time on this host. Two runs at once would plan against the
 * same bucket state, upload the same snapshots, and (since a rerun resumes a pending upload of
 * the same key) send parts into each other's multipart uploads.
 *
 * The lock is a file, `backup-<dataset, URI-escaped>.lock`, in `$Z3_LOCK_DIR`, else `/run/z3`,
 * else (when `/run` is not writable) a private `/tmp/z3-<uid>`. It holds the owner's PID for the
 * message a second run prints. Ownership is an exclusive `flock` on the open file, not the file's
 * existence: the kernel drops it when its process dies however it dies (SIGKILL, power loss), so
 * a stale file left by a dead run is simply taken over, and a reused PID can never keep a lock.
 *
 * @module
 */

import { LockedError, UsageError } from "../base/errors.ts";

/** A held lock; {@linkcode Lock.release} removes the file and drops the lock. */
export interface Lock {
  /** The lock file. */
  readonly path: string;
  /** Removes the file, then unlocks it. Safe to call twice. */
  release(): void;
}

/** Options for {@linkcode acquireBackupLock}. */
export interface LockOptions {
  /** Directory of the lock files. @default {$Z3_LOCK_DIR, else /run/z3, else /tmp/z3-<uid>} */
  dir?: string;
  /** What the caller is doing, for the refusal message. @default {"back up"} */
  verb?: string;
}

/** The lock file's name for `dataset`: `/`, spaces and anything unusual are %-escaped. */
export function lockFileName(dataset: string): string {
  return `backup-${encodeURIComponent(dataset)}.lock`;
}

/** Where lock files live (see the module doc); creates the directory when needed. */
export function lockDir(): string {
  const configured = Deno.env.get("Z3_LOCK_DIR");
  if (configured) {
    ensureDir(configured, 0o755);
    return configured;
  }
  try {
    ensureDir("/run/z3", 0o755);
    return "/run/z3";
  } catch (err) {
    // Deno's own permissions are a choice to respect, not a reason to look elsewhere.
    if (err instanceof Deno.errors.NotCapable || !isNotWritable(err)) throw err;
  }
  let uid: number | null = null;
  try {
    uid = Deno.uid();
  } catch { /* not permitted: fall through */ }
  const dir = `/tmp/z3-${uid ?? "user"}`;
  ensureDir(dir, 0o700);
  // /tmp is shared: refuse a directory (or symlink) someone else planted under our name.
  const info = Deno.lstatSync(dir);
  if (!info.isDirectory || (uid !== null && info.uid !== null && info.uid !== uid)) {
    throw new UsageError(
      `Cannot use lock directory "${dir}": it is not a directory owned by uid ${uid} ` +
        "(set Z3_LOCK_DIR to a private directory)",
    );
  }
  return dir;
}

function isNotWritable(err: unknown): boolean {
  return err instanceof Deno.errors.PermissionDenied ||
    err instanceof Deno.errors.NotFound ||
    (err as { code?: string })?.code === "EROFS";
}

function ensureDir(dir: string, mode: number): void {
  try {
    Deno.mkdirSync(dir, { recursive: true, mode });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
}

/**
 * Takes the backup lock of `dataset`, or throws {@linkcode LockedError} at once (never waits)
 * naming the PID that holds it.
 */
export function acquireBackupLock(dataset: string, options: LockOptions = {}): Lock {
  let path = "";
  try {
    path = `${options.dir ?? lockDir()}/${lockFileName(dataset)}`;
    // A few rounds at most: each retry means a holder released (and unlinked) the file between
    // our open and our lock, which a second attempt resolves.
    for (let round = 0; round < 5; round++) {
      const file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o644 });
      let ours = false;
      try {
        if (!file.tryLockSync(true)) {
          const pid = new TextDecoder().decode(readAll(file)).trim().split(/\s+/)[0];
          throw new LockedError(
            `Cannot ${options.verb ?? "back up"} "${dataset}": another z3 run (pid ${
              /^\d+$/.test(pid) ? pid : "unknown"
            }) is running; lock file ${path}`,
          );
        }
        // The holder before us may have unlinked the file after we opened it: then this lock
        // guards nothing, and the path (if any) names a newer file. Start over.
        const now = statOrUndefined(path);
        const mine = file.statSync();
        if (!now || now.ino !== mine.ino || now.dev !== mine.dev) continue;
        file.truncateSync(0);
        file.seekSync(0, Deno.SeekMode.Start);
        writeAll(file, new TextEncoder().encode(`${Deno.pid}\n`));
        ours = true;
        return held(file, path);
      } finally {
        if (!ours) file.close();
      }
    }
    throw new LockedError(`Cannot back up "${dataset}": lock file ${path} keeps changing`);
  } catch (err) {
    if (err instanceof LockedError || err instanceof UsageError) throw err;
    if (err instanceof Deno.errors.NotCapable) {
      const where = path
        ? path.slice(0, path.lastIndexOf("/"))
        : options.dir ?? (Deno.env.get("Z3_LOCK_DIR") || "/run/z3");
      throw new UsageError(
        `Cannot take the backup lock in "${where}": not permitted: Deno needs read and write ` +
          `access there; grant it with --allow-read=${where} --allow-write=${where} ` +
          "(or set Z3_LOCK_DIR to a directory it may write)",
        { cause: err },
      );
    }
    throw new UsageError(
      `Cannot take the backup lock${path ? ` "${path}"` : ""}: ${
        (err as Error)?.message ?? err
      } (set Z3_LOCK_DIR to a writable directory)`,
      { cause: err },
    );
  }
}

function held(file: Deno.FsFile, path: string): Lock {
  let released = false;
  return {
    path,
    release() {
      if (released) return;
      released = true;
      try {
        Deno.removeSync(path); // while still locked, so no one can lock the old inode in between
      } catch { /* gone already: nothing to undo */ }
      file.close(); // drops the flock
    },
  };
}

function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

function readAll(file: Deno.FsFile): Uint8Array {
  const buf = new Uint8Array(64);
  const n = file.readSync(buf) ?? 0;
  return buf.subarray(0, n);
}

function writeAll(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
}
