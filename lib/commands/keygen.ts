/**
 * `z3 keygen FILE`: writes a new Ed25519 signing key to FILE (the format is in
 * `lib/config/signing_keys.ts`) and prints its public key, one line on stdout. FILE is created
 * with mode 0600 and never overwritten: an existing FILE is a usage error (exit 2), and nothing is
 * written to it. A write that fails after FILE was created removes FILE again.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { generateSigningKey } from "../config/signing_keys.ts";

/** Options for {@linkcode keygen}. */
export interface KeygenOptions {
  /** Prints one line of the result (the public key) on stdout. */
  out?: (line: string) => void;
}

/** The error for FILE that cannot be created. */
function cannotWrite(path: string, err: unknown): UsageError {
  const name = JSON.stringify(path);
  if (err instanceof Deno.errors.AlreadyExists) {
    return new UsageError(
      `Cannot write signing key ${name}: it already exists; z3 keygen never overwrites a key ` +
        "(move it away first, or name a new file)",
    );
  }
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new UsageError(
      `Cannot write signing key ${name}: not permitted (grant --allow-write=${path} or pick ` +
        "a directory you may write)",
    );
  }
  if (err instanceof Deno.errors.NotFound) {
    return new UsageError(`Cannot write signing key ${name}: its directory does not exist`);
  }
  return new UsageError(
    `Cannot write signing key ${name}: ${(err as Error).message.split("\n")[0]}`,
  );
}

/**
 * Writes a new signing key to `path` (mode 0600, created new) and returns its public key
 * (`z3ed25519:…`), which it also passes to `options.out`.
 */
export async function keygen(path: string, options: KeygenOptions = {}): Promise<string> {
  const { key, fileText } = generateSigningKey();
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  } catch (err) {
    throw cannotWrite(path, err);
  }
  try {
    const bytes = new TextEncoder().encode(fileText);
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    await file.sync();
  } catch (err) {
    file.close();
    await Deno.remove(path).catch(() => {});
    throw cannotWrite(path, err);
  }
  file.close();
  options.out?.(key.publicKey.text);
  return key.publicKey.text;
}
