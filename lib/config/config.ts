/**
 * Pure: one table of settings drives flags, environment variables, the INI file and `--help`.
 * Precedence: flags > environment > `[fs:DATASET]` section > `[main]` section > defaults. A
 * variable set to the empty string overrides the file too: the setting is empty where empty is a
 * value (`SNAPSHOT_PREFIX=`: every snapshot), else its default, or unset.
 * `BUCKET`, `S3_KEY_ID` and `S3_SECRET` never come from argv. Values stay strings until the
 * table parses them; every error names the value and where it came from.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import type { IniFile } from "./ini.ts";
import { parseSize } from "./size.ts";
import { type Identity, parseRecipients, type Recipient } from "./age_keys.ts";
import { parseSendFlags } from "./send_flags.ts";
import { normalizePrefix } from "./prefix.ts";

/** How a setting's string is parsed. */
type Kind = "string" | "size" | "count" | "bool" | "endpoint";

/** One setting. */
export interface SettingDef {
  /** Name in the file and the environment (the original z3's names). */
  key: string;
  /** Long flag without dashes; absent for settings that must not come from argv. */
  flag?: string;
  /** Other environment names accepted (e.g. the AWS SDK's). */
  aliases?: string[];
  kind: Kind;
  /** Default as a string; absent means unset. */
  default?: string;
  /** Allowed values (lower-case). */
  choices?: string[];
  /** Never printed. */
  secret?: boolean;
  /** One line for `--help` and sample.conf. */
  help: string;
  /** The flag takes no value: given, it means `true`. */
  switch?: boolean;
  /** The flag may be given several times; its values are joined with commas. */
  repeatable?: boolean;
}

/** The table. Order is the order of `--help` and `sample.conf`. */
export const SETTINGS: readonly SettingDef[] = [
  { key: "BUCKET", kind: "string", help: "S3 bucket name (environment or file only)" },
  {
    key: "S3_KEY_ID",
    aliases: ["AWS_ACCESS_KEY_ID"],
    kind: "string",
    secret: true,
    help: "access key id; unset: S3_KEY_ID_FILE, then the AWS credential chain",
  },
  {
    key: "S3_SECRET",
    aliases: ["AWS_SECRET_ACCESS_KEY"],
    kind: "string",
    secret: true,
    help: "secret access key; unset: S3_SECRET_FILE, then the AWS credential chain",
  },
  { key: "S3_KEY_ID_FILE", kind: "string", help: "file holding the access key id" },
  { key: "S3_SECRET_FILE", kind: "string", help: "file holding the secret access key" },
  {
    key: "HOST",
    flag: "host",
    kind: "endpoint",
    help: "S3 endpoint: a host name (https) or a URL like http://127.0.0.1:7480; unset: AWS",
  },
  {
    key: "S3_REGION",
    flag: "region",
    aliases: ["AWS_REGION"],
    kind: "string",
    default: "us-east-1",
    help: "region",
  },
  {
    key: "S3_PATH_STYLE",
    flag: "path-style",
    kind: "string",
    default: "auto",
    choices: ["auto", "true", "false"],
    help: "path-style addressing; auto: on when HOST is set",
  },
  {
    key: "S3_CHECKSUMS",
    flag: "checksums",
    kind: "string",
    default: "when_required",
    choices: ["when_required", "when_supported"],
    help:
      "SDK flexible checksums; when_required suits S3-compatible servers (parts carry Content-MD5 anyway)",
  },
  {
    key: "S3_TIMEOUT",
    flag: "s3-timeout",
    kind: "count",
    default: "120",
    help: "seconds a request may make no progress before it fails (and is retried)",
  },
  {
    key: "S3_CA_FILE",
    flag: "ca-file",
    kind: "string",
    help: "PEM file of CA certificates trusted for HTTPS besides the built-in roots",
  },
  {
    key: "S3_PREFIX",
    flag: "s3-prefix",
    kind: "string",
    default: "z3-backup/",
    help: "prefix of every object key",
  },
  {
    key: "S3_STORAGE_CLASS",
    flag: "storage-class",
    kind: "string",
    help: "storage class for new objects",
  },
  {
    key: "FILESYSTEM",
    flag: "filesystem",
    kind: "string",
    repeatable: true,
    help: "the ZFS dataset(s): comma-separated, or --filesystem again (restore/get: one)",
  },
  {
    key: "RECURSIVE",
    flag: "recursive",
    kind: "bool",
    default: "false",
    switch: true,
    help: "add every filesystem and volume below each FILESYSTEM (not restore/get)",
  },
  {
    key: "SNAPSHOT_PREFIX",
    flag: "snapshot-prefix",
    kind: "string",
    default: "",
    help: "only snapshots whose name starts with this (empty: all)",
  },
  {
    key: "COMPRESSOR",
    flag: "compressor",
    kind: "string",
    default: "zstd",
    choices: ["none", "gzip", "zstd", "lz4", "pigz1", "pigz4"],
    help: "compression of new backups (zstd: the zstd command, else in-process)",
  },
  {
    key: "AGE_RECIPIENTS",
    flag: "age-recipients",
    kind: "string",
    help: "encrypt new backups with age to these public keys (age1…, comma-separated)",
  },
  {
    key: "AGE_RECIPIENTS_FILE",
    flag: "age-recipients-file",
    kind: "string",
    help: "file of age1… recipients, one a line, # comments (as age -R reads)",
  },
  {
    key: "AGE_IDENTITY_FILE",
    flag: "age-identity-file",
    kind: "string",
    help: "age-keygen identity file, to restore, get or verify --zfs encrypted objects",
  },
  {
    key: "CONCURRENCY",
    flag: "concurrency",
    kind: "count",
    default: "4",
    help: "parts uploaded at once",
  },
  {
    key: "MAX_RATE",
    flag: "max-rate",
    kind: "size",
    help:
      "bandwidth limit per second for uploads and downloads together, shared by all parts in flight (e.g. 50M; unset or 0: none)",
  },
  {
    key: "MAX_RETRIES",
    flag: "max-retries",
    kind: "count",
    default: "4",
    help: "retries per request after the first try",
  },
  {
    key: "CHUNK_SIZE",
    flag: "chunk-size",
    kind: "size",
    default: "8M",
    help: "part size (5M to 5G; grows for unknown sizes)",
  },
  {
    key: "FULL_EVERY",
    flag: "full-every",
    kind: "count",
    default: "0",
    help: "start a new full after this many incrementals in a row (0: never)",
  },
  {
    key: "SEND_FLAGS",
    flag: "send-flags",
    kind: "string",
    default: "",
    help: "zfs send options: any of -L -e -c (-w is added for encrypted datasets)",
  },
  {
    key: "HOLD",
    flag: "hold",
    kind: "bool",
    default: "true",
    help: "zfs hold the newest uploaded snapshot (tag z3:HASH of bucket+prefix)",
  },
  {
    key: "KEEP_LAST",
    flag: "keep-last",
    kind: "count",
    help: "prune: keep the newest N snapshots",
  },
  {
    key: "KEEP_HOURLY",
    flag: "keep-hourly",
    kind: "count",
    help: "prune: keep the newest of each of the last N hours",
  },
  {
    key: "KEEP_DAILY",
    flag: "keep-daily",
    kind: "count",
    help: "prune: keep the newest of each of the last N days",
  },
  {
    key: "KEEP_WEEKLY",
    flag: "keep-weekly",
    kind: "count",
    help: "prune: keep the newest of each of the last N weeks",
  },
  {
    key: "KEEP_MONTHLY",
    flag: "keep-monthly",
    kind: "count",
    help: "prune: keep the newest of each of the last N months",
  },
  {
    key: "KEEP_YEARLY",
    flag: "keep-yearly",
    kind: "count",
    help: "prune: keep the newest of each of the last N years",
  },
  {
    key: "OBJECT_LOCK_DAYS",
    flag: "object-lock-days",
    kind: "count",
    default: "0",
    help: "S3 Object Lock: lock new objects (and their chains) this many days (0: off)",
  },
  {
    key: "OBJECT_LOCK_MODE",
    flag: "object-lock-mode",
    kind: "string",
    default: "governance",
    choices: ["governance", "compliance"],
    help:
      "Object Lock mode: governance (a BypassGovernanceRetention key may undo it) or compliance",
  },
  {
    key: "METRICS_FILE",
    flag: "metrics-file",
    kind: "string",
    help: "backup writes a Prometheus text file here after each run (unset: none)",
  },
];

/** Where a value came from, for messages: `--concurrency`, `$CONCURRENCY`, `file:line`, `default`. */
export type Source = string;

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
  /** The certificates read from `caFile` (by `config_load.ts`), one PEM block each. */
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
  /** The identities in `AGE_IDENTITY_FILE` (read by `config_load.ts`). */
  ageIdentities?: Identity[];
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
  /** `OBJECT_LOCK_DAYS`: days new objects are locked (`object_lock.ts`); 0: no Object Lock. */
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
  const env = inputs.env ?? {};
  const flags = inputs.flags ?? {};
  const raw = new Map<string, { value: string; source: Source }>();
  const pick = (def: SettingDef, dataset: string | undefined) => {
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
  };
  if (inputs.file) validateFile(inputs.file.path, inputs.file.ini);
  // FILESYSTEM picks the [fs:…] section, so it is resolved first, from [main] at most.
  const fsDef = SETTINGS.find((s) => s.key === "FILESYSTEM")!;
  const dataset = inputs.dataset ?? pick(fsDef, undefined)?.value;
  for (const def of SETTINGS) {
    const got = pick(def, dataset);
    if (got) raw.set(def.key, got);
  }
  const parsed: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  for (const def of SETTINGS) {
    const got = raw.get(def.key);
    if (!got) continue;
    parsed[def.key] = parseValue(def, got.value, got.source);
    sources[def.key] = got.source;
  }
  const pathStyle = parsed.S3_PATH_STYLE === "auto" ? undefined : parsed.S3_PATH_STYLE === "true";
  const secrets = [parsed.S3_SECRET, parsed.S3_KEY_ID].filter((s): s is string =>
    typeof s === "string" && s !== ""
  );
  return {
    bucket: parsed.BUCKET as string | undefined,
    keyId: parsed.S3_KEY_ID as string | undefined,
    secret: parsed.S3_SECRET as string | undefined,
    keyIdFile: parsed.S3_KEY_ID_FILE as string | undefined,
    secretFile: parsed.S3_SECRET_FILE as string | undefined,
    endpoint: parsed.HOST as string | undefined,
    region: parsed.S3_REGION as string,
    pathStyle,
    checksums: parsed.S3_CHECKSUMS as Config["checksums"],
    s3Timeout: parsed.S3_TIMEOUT as number,
    caFile: parsed.S3_CA_FILE as string | undefined,
    s3Prefix: normalizePrefix(parsed.S3_PREFIX as string),
    storageClass: parsed.S3_STORAGE_CLASS as string | undefined,
    filesystem: parsed.FILESYSTEM as string | undefined,
    recursive: parsed.RECURSIVE as boolean,
    snapshotPrefix: parsed.SNAPSHOT_PREFIX as string,
    compressor: parsed.COMPRESSOR as string,
    ageRecipients: parseRecipients(parsed.AGE_RECIPIENTS as string | undefined),
    ageRecipientsFile: parsed.AGE_RECIPIENTS_FILE as string | undefined,
    ageIdentityFile: parsed.AGE_IDENTITY_FILE as string | undefined,
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
    objectLockMode: parsed.OBJECT_LOCK_MODE === "compliance" ? "COMPLIANCE" : "GOVERNANCE",
    sources,
    secrets,
    sectionDatasets: [...(inputs.file?.ini.keys() ?? [])]
      .filter((section) => section.startsWith("fs:"))
      .map((section) => section.slice(3)),
  };
}

function parseValue(def: SettingDef, value: string, source: Source): unknown {
  // A URL may carry user:password; never echo that part.
  const visible = def.kind === "endpoint" ? value.replace(/\/\/[^/]*@/, "//***@") : value;
  const shown = def.secret ? "(secret)" : `"${visible}"`;
  const fail = (why: string): never => {
    throw new UsageError(`Cannot parse ${def.key} ${shown} from ${source}: ${why}`);
  };
  switch (def.kind) {
    case "string":
      if (def.choices && !def.choices.includes(value.toLowerCase())) {
        fail(`expected one of ${def.choices.join(", ")}`);
      }
      if (def.key === "SEND_FLAGS") return parseSendFlags(value, source);
      return def.choices ? value.toLowerCase() : value;
    case "count": {
      if (!/^\d+$/.test(value.trim())) fail("expected a whole number");
      const n = Number(value.trim());
      if (def.key === "CONCURRENCY" && (n < 1 || n > 64)) fail("expected 1 to 64");
      if (def.key === "S3_TIMEOUT" && n < 1) fail("expected at least 1 second");
      if (def.key === "MAX_RETRIES" && n > 100) fail("expected at most 100");
      if (def.key === "OBJECT_LOCK_DAYS" && n > 36500) fail("expected at most 36500 (100 years)");
      if (!Number.isSafeInteger(n)) fail("expected a whole number");
      return n;
    }
    case "size": {
      let bytes: number;
      try {
        bytes = parseSize(value);
      } catch (err) {
        return fail((err as Error).message);
      }
      if (def.key === "CHUNK_SIZE" && (bytes < 5 * 2 ** 20 || bytes > 5 * 2 ** 30)) {
        fail("expected 5M to 5G (S3's part size limits)");
      }
      return bytes;
    }
    case "bool":
      if (!/^(true|false|yes|no|1|0)$/i.test(value)) fail("expected true or false");
      return /^(true|yes|1)$/i.test(value);
    case "endpoint":
      return parseEndpoint(value, fail);
  }
}

/** `host`, `host:port` or a URL → a URL string without a trailing slash. */
function parseEndpoint(value: string, fail: (why: string) => never): string {
  const text = /^[a-z]+:\/\//i.test(value) ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail("expected a host name or a URL like http://127.0.0.1:7480");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") fail("expected http:// or https://");
  if (url.username || url.password) {
    fail("credentials do not belong in HOST; use S3_KEY_ID and S3_SECRET");
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}

/**
 * The table's flag values from parsed argv, by flag name: a switch given is `"true"`, a
 * repeatable flag's values are joined with commas.
 */
export function settingFlags(
  values: Record<string, string | boolean | string[] | undefined>,
): Record<string, string | undefined> {
  const flags: Record<string, string | undefined> = {};
  for (const s of SETTINGS) {
    if (!s.flag) continue;
    const v = values[s.flag];
    flags[s.flag] = v === undefined || v === false
      ? undefined
      : Array.isArray(v)
      ? v.join(",")
      : String(v);
  }
  return flags;
}

/** Renders `--help`'s settings section from the table. */
export function settingsHelp(): string {
  return SETTINGS.map((s) => {
    const flag = s.flag ? `--${s.flag}` : "(env/file only)";
    const def = s.default !== undefined ? ` [default: ${s.default === "" ? '""' : s.default}]` : "";
    return `  ${s.key.padEnd(17)} ${flag.padEnd(20)} ${s.help}${def}`;
  }).join("\n");
}
