/**
 * Reads the signing key files from the outside world (the pure parsing is in `signing_keys.ts`):
 * `SIGNING_KEY_FILE` on backup hosts, `TRUSTED_KEYS_FILE` on hosts that restore, verify or
 * monitor. Errors are one-line {@linkcode UsageError}s of the form
 * `Cannot read SIGNING_KEY_FILE "<path>": <why>`, never holding the file's text.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import type { Config } from "./config.ts";
import {
  parseSigningKey,
  parseTrustedKeys,
  type SigningKey,
  signingKeySecrets,
  type TrustedKeys,
} from "./signing_keys.ts";

/** Larger than any key file z3 reads (a key line is 54 bytes): refused unread. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

/** The text of the key file at `path`; `setting` names it in errors. */
async function readKeyFile(path: string, setting: string): Promise<string> {
  const fail = (why: string) =>
    new UsageError(`Cannot read ${setting} ${JSON.stringify(path)}: ${why}`);
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw fail("it is not a file");
    if (info.size > MAX_KEY_FILE_BYTES) {
      throw fail(`it is ${info.size} bytes, more than a key file holds`);
    }
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    if (err instanceof Deno.errors.NotFound) throw fail("it does not exist");
    if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
      throw fail(`not permitted (grant --allow-read=${path} or fix its mode)`);
    }
    throw fail((err as Error).message.split("\n")[0]);
  }
}

/** Options for {@linkcode loadSigningKey}. */
export interface LoadSigningKeyOptions {
  /** Called with a warning when the file is readable by group or others. */
  warn?: (message: string) => void;
}

/**
 * The signing key in `SIGNING_KEY_FILE` `path`, and the strings to redact from output (its key
 * line, whole and in part). Warns when the file is readable by other users.
 */
export async function loadSigningKey(
  path: string,
  options: LoadSigningKeyOptions = {},
): Promise<{ key: SigningKey; secrets: string[] }> {
  const text = await readKeyFile(path, "SIGNING_KEY_FILE");
  const secrets = signingKeySecrets(text);
  const key = parseSigningKey(text, path);
  try {
    const mode = (await Deno.stat(path)).mode;
    if (mode !== null && (mode & 0o077) !== 0) {
      options.warn?.(
        `warning: SIGNING_KEY_FILE ${
          JSON.stringify(path)
        } is readable by other users; run chmod 600 ${path}`,
      );
    }
  } catch { /* stat not permitted: nothing to warn about */ }
  return { key, secrets };
}

/**
 * The trusted public keys: `list` (`TRUSTED_KEYS`), the keys in `TRUSTED_KEYS_FILE` `file` when
 * set, and the public key of `signing` when set.
 */
export async function loadTrustedKeys(
  list: string | undefined,
  options: { file?: string; signing?: SigningKey } = {},
): Promise<TrustedKeys> {
  const file = options.file === undefined
    ? undefined
    : { path: options.file, text: await readKeyFile(options.file, "TRUSTED_KEYS_FILE") };
  return parseTrustedKeys(list, { file, signing: options.signing });
}

/**
 * Reads `config`'s `SIGNING_KEY_FILE` and `TRUSTED_KEYS_FILE` into `config.signingKey` and
 * `config.trustedKeys` (with `TRUSTED_KEYS` and the signing key's public key), and adds the
 * signing key's text to `config.secrets`. Nothing is read when neither file is set; then
 * `trustedKeys` holds `TRUSTED_KEYS` alone, or is left unset when that is unset too.
 */
export async function loadSigningSettings(
  config: Config,
  options: LoadSigningKeyOptions = {},
): Promise<void> {
  if (config.signingKeyFile) {
    const { key, secrets } = await loadSigningKey(config.signingKeyFile, options);
    config.signingKey = key;
    config.secrets.push(...secrets);
  }
  if (config.signingKey || config.trustedKeysList || config.trustedKeysFile) {
    config.trustedKeys = await loadTrustedKeys(config.trustedKeysList, {
      file: config.trustedKeysFile,
      signing: config.signingKey,
    });
  }
}
