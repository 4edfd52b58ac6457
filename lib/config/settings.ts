/**
 * Pure: the one table of settings that drives flags, environment variables, the INI file and
 * `--help`, in the original z3's names. Resolution is in `config.ts`, parsing a value in
 * `parse_setting.ts`.
 *
 * @module
 */

/** How a setting's string is parsed. */
export type Kind = "string" | "size" | "count" | "bool" | "endpoint";

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
    key: "S3_CA_ONLY",
    kind: "bool",
    default: "false",
    help: "trust only S3_CA_FILE for HTTPS, not the built-in roots (pins a private CA)",
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
    key: "SIGNING_KEY_FILE",
    flag: "signing-key-file",
    kind: "string",
    help:
      "z3 keygen's signing key file: backup signs the record of every object it writes (its public key is trusted too)",
  },
  {
    key: "TRUSTED_KEYS",
    flag: "trusted-keys",
    kind: "string",
    help:
      "public keys (z3ed25519:…, comma-separated) whose signed records are trusted; set: objects without one are refused",
  },
  {
    key: "TRUSTED_KEYS_FILE",
    flag: "trusted-keys-file",
    kind: "string",
    help: "file of trusted public keys, one a line, # comments",
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
