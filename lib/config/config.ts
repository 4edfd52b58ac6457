/**
 * Pure: the resolution of the settings table (`settings.ts`) into a {@linkcode Config}.
 * Precedence: flags > environment > `[fs:DATASET]` section > `[main]` section > defaults. A
 * variable set to the empty string overrides the file too: the setting is empty where empty is a
 * value (`SNAPSHOT_PREFIX=`: every snapshot), else its default, or unset.
 * `BUCKET`, `S3_KEY_ID` and `S3_SECRET` never come from argv. Values stay strings until
 * `parse_setting.ts` parses them; every error names the value and where it came from.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import type { IniFile } from "./ini.ts";
import { parseRecipients } from "./age_keys.ts";
import type { Identity, Recipient } from "./age_keys.ts";
import { normalizePrefix } from "./prefix.ts";
import type { SigningKey, TrustedKeys } from "./signing_keys.ts";
import { type SettingDef, SETTINGS, type Source } from "./settings.ts";
import { parseSetting } from "./parse_setting.ts";

/** Parsed settings. */
export interface Config {
  bucket?: string;
  keyId?: string;
  secret?: string;
  keyIdFile?: string;
  secretFile?: string;
  endpoint?: string;
  region: string;
  pathStyle?: boolean;
  checksums: "when_required" | "when_supported";
  /** Seconds without progress before a request fails. */
  s3Timeout: number;
  /** `S3_CA_FILE`: path of a PEM bundle trusted for HTTPS besides the built-in roots. */
  caFile?: string;
  /** `S3_CA_ONLY`: HTTPS trusts `caFile` alone, not the built-in roots. */
  caOnly: boolean;
  /** The certificates read from `caFile` (by `load.ts`), one PEM block each. */
  caCerts?: string[];
  /** Key prefix, ending in `/` when not empty (as the original z3 wrote keys). */
  s3Prefix: string;
  storageClass?: string;
  /** `FILESYSTEM`: one dataset, or several comma-separated (see `datasets.ts`). */
  filesystem?: string;
  /** `RECURSIVE`: add the filesystems and volumes below each dataset (see `datasets.ts`). */
  recursive: boolean;
  snapshotPrefix: string;
  compressor: string;
  /** `AGE_RECIPIENTS` and `AGE_RECIPIENTS_FILE`'s keys: new objects are encrypted to them. */
  ageRecipients?: Recipient[];
  ageRecipientsFile?: string;
  ageIdentityFile?: string;
  /** The identities in `AGE_IDENTITY_FILE` (read by `load.ts`). */
  ageIdentities?: Identity[];
  /** `SIGNING_KEY_FILE`: the key backup signs records with (`signing_keys.ts`). */
  signingKeyFile?: string;
  /** The key in `signingKeyFile` (read by `load_signing_keys.ts`). */
  signingKey?: SigningKey;
  /** `TRUSTED_KEYS`: public keys, comma-separated, as given. */
  trustedKeysList?: string;
  /** `TRUSTED_KEYS_FILE`. */
  trustedKeysFile?: string;
  /**
   * The keys a signed record may come from (read by `load_signing_keys.ts`); none or empty: no
   * record is asked for, as before signing existed.
   */
  trustedKeys?: TrustedKeys;
  concurrency: number;
  /** `MAX_RATE`: bytes per second for all transfers together; unset (or 0): no limit. */
  maxRate?: number;
  maxRetries: number;
  chunkSize: number;
  /** New full after this many incrementals in a row; 0: never. */
  fullEvery: number;
  /** `SEND_FLAGS`: validated `zfs send` options (`send_flags.ts`), e.g. `["-L", "-c"]`. */
  sendFlags: string[];
  /** `HOLD`: hold the newest uploaded snapshot after a backup (`holds.ts`). */
  hold: boolean;
  /** Retention settings as given (KEEP_* → string), parsed by `retention.ts`. */
  keep: Record<string, string | undefined>;
  /** `METRICS_FILE`: the Prometheus text file backup updates (see `metrics.ts`). */
  metricsFile?: string;
  /** `OBJECT_LOCK_DAYS`: days new objects are locked (`chain/object_lock_policy.ts`); 0: no Object Lock. */
  objectLockDays: number;
  /** `OBJECT_LOCK_MODE`. */
  objectLockMode: "GOVERNANCE" | "COMPLIANCE";
  /** Where each key's value came from. */
  sources: Record<string, Source>;
  /** The secret values, for redaction. */
  secrets: string[];
  /** The datasets the config file has an `[fs:DATASET]` section for, in file order. */
  sectionDatasets: string[];
}

/** Inputs to {@linkcode resolveConfig}. */
export interface ConfigInputs {
  /** Flag values by flag name (only the table's flags). */
  flags?: Record<string, string | undefined>;
  /** The environment. */
  env?: Record<string, string | undefined>;
  /** Parsed config file and its path. */
  file?: { path: string; ini: IniFile };
  /** Dataset selected on the command line (picks the `[fs:DATASET]` section). */
  dataset?: string;
}

const KNOWN = new Set(SETTINGS.map((s) => s.key));

/** Checks a config file for unknown keys and sections (errors name the line). */
export function validateFile(path: string, ini: IniFile): void {
  for (const [section, values] of ini) {
    if (section !== "main" && !section.startsWith("fs:")) {
      throw new UsageError(
        `Cannot use section [${section}] in ${path}: expected [main] or [fs:DATASET]`,
      );
    }
    for (const [key, v] of values) {
      if (!KNOWN.has(key)) {
        throw new UsageError(`Cannot use unknown key ${key} in ${path}:${v.line}`);
      }
    }
  }
}

/** Resolves every setting (see module doc). */
export function resolveConfig(inputs: ConfigInputs): Config {
  if (inputs.file) validateFile(inputs.file.path, inputs.file.ini);
  const { parsed, sources } = parseSettings(inputs);
  const secrets = [parsed.S3_SECRET, parsed.S3_KEY_ID].filter((s): s is string =>
    typeof s === "string" && s !== ""
  );
  return {
    ...storeSettings(parsed),
    ...runSettings(parsed),
    sources,
    secrets,
    sectionDatasets: [...(inputs.file?.ini.keys() ?? [])]
      .filter((section) => section.startsWith("fs:"))
      .map((section) => section.slice(3)),
  };
}

/** A setting's text and where it came from. */
interface Picked {
  value: string;
  source: Source;
}

/**
 * Where `def`'s value comes from, by precedence (see module doc); undefined when it is unset.
 * `dataset` picks the `[fs:DATASET]` section.
 */
function pickSetting(
  def: SettingDef,
  inputs: ConfigInputs,
  dataset: string | undefined,
): Picked | undefined {
  const env = inputs.env ?? {};
  const flags = inputs.flags ?? {};
  if (def.flag && flags[def.flag] !== undefined) {
    return { value: flags[def.flag]!, source: `--${def.flag}` };
  }
  const names = [def.key, ...(def.aliases ?? [])];
  // Only the setting's own name set empty overrides; an empty alias (AWS_REGION=) does not.
  const name = names.find((n) => env[n]) ?? (env[def.key] === "" ? def.key : undefined);
  if (name !== undefined) {
    const source = `$${name}`;
    if (env[name]) return { value: env[name]!, source };
    // Empty overrides the file: an empty string where one is allowed, else default or unset.
    if (def.kind === "string" && !def.choices && def.default !== undefined) {
      return { value: "", source };
    }
    return def.default !== undefined ? { value: def.default, source: "default" } : undefined;
  }
  const file = inputs.file;
  if (file) {
    for (const section of [dataset ? `fs:${dataset}` : undefined, "main"]) {
      const v = section ? file.ini.get(section)?.get(def.key) : undefined;
      if (v !== undefined) return { value: v.value, source: `${file.path}:${v.line}` };
    }
  }
  return def.default !== undefined ? { value: def.default, source: "default" } : undefined;
}

/** Every setting that has a value, parsed (by key), and where each came from. */
function parseSettings(
  inputs: ConfigInputs,
): { parsed: Record<string, unknown>; sources: Record<string, Source> } {
  // FILESYSTEM picks the [fs:…] section, so it is resolved first, from [main] at most.
  const fsDef = SETTINGS.find((s) => s.key === "FILESYSTEM")!;
  const dataset = inputs.dataset ?? pickSetting(fsDef, inputs, undefined)?.value;
  const picked = SETTINGS.map((def) => ({ def, got: pickSetting(def, inputs, dataset) }));
  const parsed: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const { def, got } of picked) {
    if (!got) continue;
    parsed[def.key] = parseSetting(def, got.value, got.source);
    sources[def.key] = got.source;
  }
  return { parsed, sources };
}

/** The settings of the S3 store: bucket, credentials, endpoint, prefix. */
function storeSettings(parsed: Record<string, unknown>) {
  return {
    bucket: parsed.BUCKET as string | undefined,
    keyId: parsed.S3_KEY_ID as string | undefined,
    secret: parsed.S3_SECRET as string | undefined,
    keyIdFile: parsed.S3_KEY_ID_FILE as string | undefined,
    secretFile: parsed.S3_SECRET_FILE as string | undefined,
    endpoint: parsed.HOST as string | undefined,
    region: parsed.S3_REGION as string,
    pathStyle: parsed.S3_PATH_STYLE === "auto" ? undefined : parsed.S3_PATH_STYLE === "true",
    checksums: parsed.S3_CHECKSUMS as Config["checksums"],
    s3Timeout: parsed.S3_TIMEOUT as number,
    caFile: parsed.S3_CA_FILE as string | undefined,
    caOnly: parsed.S3_CA_ONLY as boolean,
    s3Prefix: normalizePrefix(parsed.S3_PREFIX as string),
    storageClass: parsed.S3_STORAGE_CLASS as string | undefined,
  };
}

/** The settings of a run: datasets, compression, encryption, transfers, retention, locks. */
function runSettings(parsed: Record<string, unknown>) {
  return {
    filesystem: parsed.FILESYSTEM as string | undefined,
    recursive: parsed.RECURSIVE as boolean,
    snapshotPrefix: parsed.SNAPSHOT_PREFIX as string,
    compressor: parsed.COMPRESSOR as string,
    ageRecipients: parseRecipients(parsed.AGE_RECIPIENTS as string | undefined),
    ageRecipientsFile: parsed.AGE_RECIPIENTS_FILE as string | undefined,
    ageIdentityFile: parsed.AGE_IDENTITY_FILE as string | undefined,
    signingKeyFile: (parsed.SIGNING_KEY_FILE as string | undefined) || undefined,
    trustedKeysList: (parsed.TRUSTED_KEYS as string | undefined) || undefined,
    trustedKeysFile: (parsed.TRUSTED_KEYS_FILE as string | undefined) || undefined,
    concurrency: parsed.CONCURRENCY as number,
    maxRate: (parsed.MAX_RATE as number | undefined) || undefined,
    maxRetries: parsed.MAX_RETRIES as number,
    chunkSize: parsed.CHUNK_SIZE as number,
    fullEvery: parsed.FULL_EVERY as number,
    sendFlags: parsed.SEND_FLAGS as string[],
    hold: parsed.HOLD as boolean,
    keep: Object.fromEntries(
      ["KEEP_LAST", "KEEP_HOURLY", "KEEP_DAILY", "KEEP_WEEKLY", "KEEP_MONTHLY", "KEEP_YEARLY"].map((
        k,
      ) => [k, parsed[k] === undefined ? undefined : String(parsed[k])]),
    ),
    metricsFile: (parsed.METRICS_FILE as string | undefined) || undefined,
    objectLockDays: parsed.OBJECT_LOCK_DAYS as number,
    objectLockMode: parsed.OBJECT_LOCK_MODE === "compliance"
      ? "COMPLIANCE" as const
      : "GOVERNANCE" as const,
  };
}
