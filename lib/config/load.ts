/**
 * Loads configuration from the outside world: reads the config file (default
 * `/etc/z3_backup/z3.conf`, or `--config` / `$Z3_CONFIG`), the `*_FILE` secrets and the
 * environment, then resolves them with `config.ts` (the table is `settings.ts`).
 *
 * @module
 */

import { X509Certificate } from "node:crypto";
import { type Config, resolveConfig } from "./config.ts";
import { UsageError } from "../base/errors.ts";
import { type IniFile, parseIni } from "./ini.ts";
import { parseIdentities, parseRecipients } from "./age_keys.ts";
import { loadSigningSettings } from "./load_signing_keys.ts";

/** The config file read when none is named. */
export const DEFAULT_CONFIG_PATH = "/etc/z3_backup/z3.conf";

/** The directory that holds the config file and the secret files: only root should open it. */
export const CONFIG_DIR = "/etc/z3_backup";

/** Options for {@linkcode loadConfig}. */
export interface LoadOptions {
  /** `--config` value. */
  configPath?: string;
  /** Flag values by flag name. */
  flags?: Record<string, string | undefined>;
  /** Dataset picked on the command line. */
  dataset?: string;
  /** Called with warnings (group/world-readable file holding a secret). */
  warn?: (message: string) => void;
  /**
   * The config directory checked for its mode (not read).
   * @default {CONFIG_DIR}
   */
  configDir?: string;
}

function envSnapshot(): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch (err) {
    throw new UsageError(
      `Cannot read the environment: ${(err as Error).message.split("\n")[0]} (grant --allow-env)`,
    );
  }
}

async function readFile(path: string, what: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    const why = err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied
      ? `not permitted (grant --allow-read=${path} or fix its mode)`
      : (err as Error).message;
    throw new UsageError(`Cannot read ${what} ${path}: ${why}`);
  }
}

/** Resolves the configuration; every error is a one-line {@linkcode UsageError}. */
export async function loadConfig(options: LoadOptions = {}): Promise<Config> {
  const env = envSnapshot();
  const named = options.configPath ?? (env.Z3_CONFIG || undefined);
  const path = named ?? DEFAULT_CONFIG_PATH;
  const text = await readFile(path, "config file");
  if (text === undefined && named) {
    throw new UsageError(`Cannot read config file ${path}: it does not exist`);
  }
  let file: { path: string; ini: IniFile } | undefined;
  if (text !== undefined) file = { path, ini: parseIni(text, path, { warn: options.warn }) };
  const config = resolveConfig({ flags: options.flags, env, file, dataset: options.dataset });
  if (file && (config.sources.S3_SECRET ?? "").startsWith(path)) {
    try {
      const mode = (await Deno.stat(path)).mode;
      if (mode !== null && (mode & 0o077) !== 0) {
        options.warn?.(
          `warning: ${path} holds S3_SECRET and is readable by other users; run chmod 600 ${path}`,
        );
      }
    } catch { /* stat not permitted: nothing to warn about */ }
  }
  if (config.keyId === undefined && config.keyIdFile) {
    config.keyId = await readSecretFile(config.keyIdFile, "S3_KEY_ID_FILE");
  }
  if (config.secret === undefined && config.secretFile) {
    config.secret = await readSecretFile(config.secretFile, "S3_SECRET_FILE");
  }
  config.secrets = [config.secret, config.keyId].filter((s): s is string => !!s);
  await loadAgeKeys(config);
  await loadSigningSettings(config, { warn: options.warn });
  if (options.warn) await warnOpenSecrets(config, options.configDir ?? CONFIG_DIR, options.warn);
  if (config.caFile) config.caCerts = await readCaFile(config.caFile);
  if (config.caOnly && !config.caFile) {
    throw new UsageError(
      "Cannot use S3_CA_ONLY=true: S3_CA_FILE is not set (the CA to trust alone)",
    );
  }
  const plain = plainHttpWarning(config.endpoint);
  if (plain) options.warn?.(plain);
  return config;
}

/**
 * The warning for a `HOST` that is plain HTTP to anything but this machine (`localhost`,
 * 127.0.0.0/8, `::1`); `undefined` for https, loopback, or no `HOST`.
 */
export function plainHttpWarning(endpoint: string | undefined): string | undefined {
  if (!endpoint?.startsWith("http://")) return undefined;
  const host = new URL(endpoint).hostname;
  if (host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host)) {
    return undefined;
  }
  return `warning: HOST ${endpoint} is plain HTTP to a host that is not this machine: anyone on ` +
    "the path can read what z3 sends and change the answers; use https:// (with S3_CA_FILE for " +
    "a private CA)";
}

/** The PEM certificates in `S3_CA_FILE`, each parsed once so a bad file fails here (exit 2). */
async function readCaFile(path: string): Promise<string[]> {
  const text = await readFile(path, "S3_CA_FILE");
  if (text === undefined) throw new UsageError(`Cannot read S3_CA_FILE ${path}: it does not exist`);
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new UsageError(
      `Cannot use S3_CA_FILE ${path}: it holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
  }
  blocks.forEach((pem, i) => {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new UsageError(
        `Cannot use S3_CA_FILE ${path}: certificate ${i + 1} does not parse: ${
          (err as Error).message.split("\n")[0]
        }`,
      );
    }
  });
  return blocks;
}

/**
 * One warning line for the config directory and for each secret file (`S3_SECRET_FILE`,
 * `AGE_IDENTITY_FILE`) that a group or others may read or write. A path that does not exist or
 * cannot be stat'ed passes silently. (`SIGNING_KEY_FILE` warns in `load_signing_keys.ts`.)
 */
async function warnOpenSecrets(config: Config, dir: string, warn: (message: string) => void) {
  const checks: [string, string | undefined, string][] = [
    ["", dir, "700"],
    ["S3_SECRET_FILE ", config.secretFile, "600"],
    ["AGE_IDENTITY_FILE ", config.ageIdentityFile, "600"],
  ];
  for (const [what, path, wanted] of checks) {
    if (path === undefined) continue;
    let mode: number | null;
    try {
      mode = (await Deno.stat(path)).mode;
    } catch {
      continue; // missing, or stat not permitted: nothing to warn about
    }
    if (mode === null || (mode & 0o077) === 0) continue;
    const octal = (mode & 0o7777).toString(8).padStart(4, "0");
    warn(
      `warning: ${what}${path} has mode ${octal}: other users can read or write it; ` +
        `run chmod ${wanted} ${path}`,
    );
  }
}

async function readSecretFile(path: string, key: string): Promise<string> {
  const text = await readFile(path, `${key}`);
  if (text === undefined) throw new UsageError(`Cannot read ${key} ${path}: it does not exist`);
  const value = text.trim();
  if (!value) throw new UsageError(`Cannot use ${key} ${path}: the file is empty`);
  return value;
}

/**
 * Reads `AGE_RECIPIENTS_FILE` (added to `AGE_RECIPIENTS`) and `AGE_IDENTITY_FILE`; each
 * identity's text joins the secrets redacted from output.
 */
async function loadAgeKeys(config: Config) {
  if (config.ageRecipientsFile) {
    const path = config.ageRecipientsFile;
    const text = await readFile(path, "AGE_RECIPIENTS_FILE");
    if (text === undefined) {
      throw new UsageError(`Cannot read AGE_RECIPIENTS_FILE ${path}: it does not exist`);
    }
    config.ageRecipients = parseRecipients(
      (config.ageRecipients ?? []).map((r) => r.text).join(","),
      { path, text },
    );
  }
  if (config.ageIdentityFile) {
    const path = config.ageIdentityFile;
    const text = await readFile(path, "AGE_IDENTITY_FILE");
    if (text === undefined) {
      throw new UsageError(`Cannot read AGE_IDENTITY_FILE ${path}: it does not exist`);
    }
    for (const line of text.split("\n")) {
      const t = line.trim();
      if (t.toUpperCase().startsWith("AGE-SECRET-KEY-")) config.secrets.push(t, t.toLowerCase());
    }
    config.ageIdentities = parseIdentities(text, path);
  }
}
