/**
 * Typed errors with stable exit codes. `main.ts` and `pput.ts` are the only places that turn
 * these into a message and an exit status; everything else throws.
 *
 * @module
 */

/** Exit statuses, listed in `--help` under EXIT STATUS. */
export const EXIT = {
  ok: 0,
  /** Anything unexpected: a bug. */
  bug: 1,
  /** Bad flags, config, names or sizes. */
  usage: 2,
  /** A `zfs` command failed. */
  zfs: 3,
  /** The S3 endpoint refused or failed a request. */
  s3: 4,
  /** The snapshot chain in the bucket conflicts with the local one, or is broken. */
  chain: 5,
  /** Data did not verify (checksum or size mismatch). */
  integrity: 6,
  /** Another helper command (compressor) failed. */
  command: 7,
  /** Another `z3 backup` of the same dataset holds the lock on this host. */
  locked: 8,
  /** `z3 check`: the newest healthy backup is older than `--max-age`, or there is none. */
  stale: 9,
  /** Interrupted by SIGINT. */
  sigint: 130,
  /** Interrupted by SIGTERM. */
  sigterm: 143,
} as const;

/** Base class: every error z3 raises on purpose carries an exit code. */
export class Z3Error extends Error {
  /** The process exit status this error maps to. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad input from the user: flags, config values, names. */
export class UsageError extends Z3Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.usage, options);
  }
}

/** A `zfs` command failed; `stderr` holds the (bounded) tail of what it printed. */
export class ZfsError extends Z3Error {
  /** The last lines zfs printed on stderr, newlines kept (empty when it did not run). */
  readonly stderr: string;
  constructor(message: string, options?: ErrorOptions & { stderr?: string }) {
    super(message, EXIT.zfs, options);
    this.stderr = options?.stderr ?? "";
  }
}

/** An S3 request failed for good (after any retries). */
export class S3Error extends Z3Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.s3, options);
  }
}

/** The chain of snapshots is broken or diverges. */
export class ChainError extends Z3Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.chain, options);
  }
}

/** Bytes did not verify. */
export class IntegrityError extends Z3Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.integrity, options);
  }
}

/** A helper command (compressor, decompressor) failed. */
export class CommandError extends Z3Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.command, options);
  }
}

/** Another run holds the dataset's backup lock (see `zfs/host_lock.ts`). */
export class LockedError extends Z3Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.locked, options);
  }
}

/** The run was interrupted by a signal. */
export class InterruptedError extends Z3Error {
  constructor(signal: "SIGINT" | "SIGTERM") {
    super(`Interrupted by ${signal}`, signal === "SIGINT" ? EXIT.sigint : EXIT.sigterm);
  }
}

/** One line describing any thrown value, for the final message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n").join(" ").trim();
  return String(err);
}

/**
 * For Deno's refusal of a permission ("Requires net access to "h:p", run again with the
 * --allow-net flag"): one phrase naming the permission and the flag that grants it, or
 * `undefined` for any other message.
 */
export function permissionHint(message: string): string | undefined {
  const denied = /Requires (\w+) access(?: to "([^"]+)")?, run again with the (--allow-[a-z]+) flag/
    .exec(message);
  if (!denied) return undefined;
  const [, kind, value, flag] = denied;
  const grant = value && flag !== "--allow-all" ? `${flag}=${value}` : flag;
  return `not permitted: Deno needs ${kind} access${
    value ? ` to "${value}"` : ""
  }; grant it with ${grant}`;
}
