/**
 * z3: ZFS snapshots to S3 and back. argv → config → subcommand. The only place (with pput.ts)
 * that exits or handles signals; see `z3 --help`.
 *
 * @module
 */

import {
  addSecrets,
  commandHelp,
  type FlagSpec,
  parseFlags,
  printErr,
  printOut,
  runCommand,
  setQuiet,
  splitCommand,
} from "./lib/cli/run.ts";
import {
  type CliCommand,
  type CliContext,
  type CliRun,
  type FlagValues,
  JsonItems,
} from "./lib/cli/command.ts";
import { backupCli } from "./lib/commands/backup.ts";
import { checkCli, DEFAULT_CHECK_MAX_AGE } from "./lib/commands/check.ts";
import { getCli, restoreCli } from "./lib/commands/restore.ts";
import { statusCli } from "./lib/commands/status.ts";
import { verifyCli } from "./lib/commands/verify.ts";
import { pruneAfterBackup, pruneCli } from "./lib/commands/prune.ts";
import { cleanupCli, DEFAULT_MAX_AGE } from "./lib/commands/cleanup.ts";
import { keygen } from "./lib/commands/keygen.ts";
import type { Config } from "./lib/config/config.ts";
import { settingFlags } from "./lib/config/flags.ts";
import { SETTINGS } from "./lib/config/settings.ts";
import { settingsHelp } from "./lib/config/help.ts";
import { DEFAULT_CONFIG_PATH, loadConfig } from "./lib/config/load.ts";
import { connect } from "./lib/cli/connect.ts";
import { UsageError } from "./lib/base/errors.ts";
import { parseSnapshot } from "./lib/chain/names.ts";
import { enableProgress } from "./lib/cli/progress.ts";
import { VERSION } from "./lib/base/version.ts";
import { selectDatasets } from "./lib/cli/datasets.ts";
import { eachDataset, exitCodeOf, summaryLine } from "./lib/cli/each_dataset.ts";

const HELP = `z3 ${VERSION}: ZFS snapshots to S3 and back

Usage:
  z3 status  [--all] [--json | --parseable]
  z3 backup  [--full] [--snapshot NAME] [--dry-run] [--json | --parseable] [--progress]
             [--prune]
  z3 restore SNAPSHOT [--target DATASET] [--force] [--properties] [--property NAME]…
             [--dry-run] [--json] [--progress]
  z3 get     KEY [--json] > file
  z3 verify  [SNAPSHOT] [--zfs PARENT] [--repair | --adopt] [--json] [--progress]
  z3 prune   [--dry-run] [--json] [--keep-last N] [--keep-daily N] …
  z3 cleanup [--max-age AGE] [--dry-run] [--json]
  z3 check   [--max-age AGE] [--json]
  z3 keygen  FILE
  z3 version
  z3 COMMAND --help

Every command takes --quiet (nothing printed unless it fails) and the options below, before or
after the command. --json prints exactly one JSON document on stdout (get: on stderr).

Several datasets: FILESYSTEM=a,b (or --filesystem a --filesystem b), and --recursive /
RECURSIVE=true for every filesystem and volume below each. status, backup, verify, prune and
check run each dataset on its own (its [fs:DATASET] settings, chain and lock); one failing does
not stop the others; a run over several ends with one summary line on stderr and exits with the
first failed dataset's status. restore and get take one dataset.

Commands:
  status    every snapshot of FILESYSTEM (matching SNAPSHOT_PREFIX) locally and in the bucket,
            in creation order: NAME | PARENT | TYPE | HEALTH | LOCAL STATE | SIZE | CREATED |
            UPLOADED (UTC; DATASET first over several); --all: every dataset with objects
            under S3_PREFIX (and each [fs:] section's own), from the listings alone.
            HEALTH is ok, missing parent, parent broken, cycle detected, guid mismatch,
            invalid name, record missing, record mismatch (each object is compared with
            its check record) or empty (a 0-byte object); with trusted keys (TRUSTED_KEYS,
            TRUSTED_KEYS_FILE or SIGNING_KEY_FILE) unsigned or bad signature for an object
            without a record signed by one of them (never a restore point: restore, get and
            verify refuse it, exit 6; prune leaves it; backup stops, exit 5, when it sits where
            an upload goes); on stderr,
            which snapshot z3's hold should be on (the newest one both local and in the
            bucket) with its userrefs count
  backup    upload every snapshot after the newest one already in the bucket, each as its own
            object (zfs send -i PREV CUR), oldest first; when the bucket holds none of them,
            the oldest as a full, then every later one. --full sends one full stream of the
            target (refused over another snapshot's object); --snapshot picks the target
            (default: the latest matching snapshot). A failed zfs send never becomes an object.
            A dataset whose encryption is not off is sent raw (-w); SEND_FLAGS adds -L/-e/-c.
            Both are recorded per object (z3-send-flags); an incremental that would change
            -L or raw-ness exits 5 (start a new chain with --full). Afterwards zfs hold keeps
            the newest uploaded snapshot (HOLD) and the previous base is released; where
            zfs has bookmarks, it is also bookmarked (DATASET#z3-HASH-SNAP), and a base gone
            locally is sent from its bookmark. Each full's local properties are stored.
  restore   receive SNAPSHOT (name or dataset@name) from the bucket: walks its chain back to a
            snapshot that exists locally or to a full, checks every link first, then runs
            zfs receive for each object oldest first, checking each part's MD5 (a bad part is
            fetched again) or the object's ETag, and the size, before ZFS can commit it.
            zfs receive starts only once the stream's BEGIN record carries the recorded GUIDs
            and is no -R/-p stream (else exit 6, nothing received); its END record and
            checksum must match before zfs receive sees the end.
            --target receives into another dataset; --force adds -F. Raw and non-raw
            objects never stack (exit 5 before zfs runs); after raw ones, zfs load-key.
            --properties sets the local properties stored with the chain's full (zfs set)
            that are on its list: compression, recordsize, atime, relatime, xattr, acltype,
            aclinherit, aclmode, dnodesize, logbias, primarycache, secondarycache, sync,
            checksum, copies, snapdir, redundant_metadata, special_small_blocks; the others
            (mountpoint, setuid, sharenfs, user properties, …) are named on stderr and set only
            when named: --property NAME (repeatable, or NAME,NAME; implies --properties). One
            refused is a warning line, not a failure; a malformed sidecar exits 6 before any
            receive.
  prune     delete the bucket's objects that KEEP_LAST / KEEP_HOURLY / … / KEEP_YEARLY do not keep
            (newest per hour/day/ISO week/month/year, UTC). Never deletes an object a kept
            snapshot's chain needs, nor one of a broken chain, nor anything while an object
            disagrees with its check record (exit 6); --dry-run prints every decision and why.
            Keeps what Object Lock still holds ("locked until DATE"); deletes the rest of a
            versioned bucket by version id. backup --prune prunes only after a successful backup.
  get       write one object's verified bytes to stdout (KEY as stored, or dataset@snap),
            decrypted with AGE_IDENTITY_FILE when it is encrypted with age
  verify    download every object of FILESYSTEM (or SNAPSHOT's chain), check it against its check
            record and recompute its ETag, and read its send stream through (decrypted with
            AGE_IDENTITY_FILE, decompressed): its BEGIN record, END record and checksum, so a
            truncated or empty object is corrupt (an encrypted one without its identity: the
            detail says its stream was not read); one line per snapshot: ok, corrupt, missing
            (broken chain) or unverifiable (objects of the original z3: size checked only).
            --zfs PARENT also receives each chain into a throwaway dataset under PARENT
            (zfs receive -u, below mountpoint=none), destroyed after.
            --repair writes a z3 object's missing check record again when its bytes match its
            ETag (reported "repaired"); a record that disagrees is never overwritten; with
            trusted keys it writes nothing (z3 signs only what it has just uploaded).
            --adopt (needs SIGNING_KEY_FILE) checks each object as above and then signs its
            record (reported "adopted"): your statement that the bucket's present state is
            trusted; use it once on a bucket written without signing, and to rotate keys.
            unprotected: an Object Lock retention shorter than its chain needs.
            Exit 6 when anything is corrupt, missing or unprotected; an S3 or zfs failure exits
            4 or 3.
  cleanup   abort the multipart uploads under S3_PREFIX started more than AGE ago (default
            ${DEFAULT_MAX_AGE}; e.g. 30m, 12h, 7d; 0 takes all, a backup running now included): what
            a run killed outright or cut off from the endpoint leaves behind. One line per
            upload on stdout: KEY, UPLOAD ID, AGE (tab-separated); --dry-run only lists them.
  check     for cron or Nagios, from the bucket alone: one line per dataset, STATE, DATASET, AGE
            of the newest healthy backup (since its upload; - for none), DETAIL (tab-separated).
            BROKEN (exit 5) when an object matching SNAPSHOT_PREFIX has a broken chain (as in
            status), else STALE (exit 9) when the newest healthy backup is older than AGE
            (default ${DEFAULT_CHECK_MAX_AGE}; e.g. 90s, 30m, 7d) or there is none, else OK (exit 0).
            --json prints one JSON document {"datasets": [...]}.
  keygen    write a new Ed25519 signing key to FILE (mode 0600; an existing FILE is never
            overwritten: exit 2) and print its public key (z3ed25519:…) on stdout, one line:
            SIGNING_KEY_FILE=FILE on backup hosts, the public key in TRUSTED_KEYS elsewhere

Settings (flag > environment > [fs:DATASET] > [main] of the config file > default):
${settingsHelp()}

Other options:
  --config PATH   config file [default: $Z3_CONFIG or ${DEFAULT_CONFIG_PATH}]
  --debug         more detail on errors (secrets stay redacted)
  --quiet         print nothing unless the command fails (the error still goes to stderr)
  -h, --help      this help (after a command: that command's); --version prints the version

Environment (besides the settings above):
  Z3_CONFIG       config file, when --config is not given
  Z3_LOCK_DIR     directory of backup/prune lock files [default: /run/z3, else /tmp/z3-<uid>]
  Z3_ZFS_COMMAND  the zfs executable [default: zfs, found on PATH]

Exit status:
  0    success (also: nothing to do)
  1    unexpected error (a bug: please report it)
  2    usage: bad flags, config, names or sizes; no AGE_IDENTITY_FILE identity for an
       encrypted object; OBJECT_LOCK_DAYS set for a bucket without Object Lock
  3    a zfs command failed
  4    S3 refused or failed a request
  5    the snapshot chain is broken or diverges from the local one
  6    data did not verify (ETag or size mismatch, or an age chunk that does not authenticate)
  7    a helper command (compressor) failed
  8    another z3 backup or prune of the same dataset is running on this host (lock in /run/z3)
  9    z3 check: the newest healthy backup is older than --max-age, or there is none
  10   the input stream failed while being read (an I/O error)
  130  interrupted by SIGINT; 143 by SIGTERM (uploads are aborted, nothing half-made remains).
       z3 exits within 15 s of the signal whatever the endpoint does: requests in flight are
       cancelled and the abort gets one attempt of at most 1 s; an upload it could not abort is
       named ("left pending"): the next z3 backup resumes it, z3 cleanup aborts it. Whatever still
       runs 12 s after the signal does not hold z3 up: it exits then
`;

const COMMON: FlagSpec = {
  config: { type: "string" },
  debug: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
};
for (const s of SETTINGS) {
  if (s.flag) {
    COMMON[s.flag] = s.switch
      ? { type: "boolean" }
      : { type: "string", ...(s.repeatable ? { multiple: true } : {}) };
  }
}

/** Each command's own flags, besides the common ones. */
const COMMAND_FLAGS: Record<string, FlagSpec> = {
  status: { json: { type: "boolean" }, parseable: { type: "boolean" }, all: { type: "boolean" } },
  backup: {
    full: { type: "boolean" },
    snapshot: { type: "string" },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
    parseable: { type: "boolean" },
    progress: { type: "boolean" },
    prune: { type: "boolean" },
  },
  restore: {
    progress: { type: "boolean" },
    target: { type: "string" },
    force: { type: "boolean" },
    properties: { type: "boolean" },
    property: { type: "string", multiple: true },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
  },
  get: { json: { type: "boolean" } },
  verify: {
    zfs: { type: "string" },
    json: { type: "boolean" },
    repair: { type: "boolean" },
    adopt: { type: "boolean" },
    progress: { type: "boolean" },
  },
  prune: { "dry-run": { type: "boolean" }, json: { type: "boolean" } },
  cleanup: {
    "max-age": { type: "string" },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
  },
  check: { "max-age": { type: "string" }, json: { type: "boolean" } },
};

/** Each command's adapter: how it runs and prints (see lib/cli/command.ts). */
const COMMANDS: Record<string, CliCommand> = {
  status: statusCli,
  backup: backupCli(pruneAfterBackup),
  restore: restoreCli,
  get: getCli,
  verify: verifyCli,
  prune: pruneCli,
  cleanup: cleanupCli,
  check: checkCli,
};

/** Loads one dataset's settings, once per dataset, registering its secrets. */
type ConfigFor = (dataset?: string) => Promise<Config>;

await runCommand("z3", async ({ signal }) => {
  const { command, rest } = splitCommand(Deno.args, COMMON);
  if (command === undefined || command === "help" || command === "version") {
    const { values } = parseFlags(rest, COMMON);
    if (command === "version" || values.version) printOut(`z3 ${VERSION}`);
    else printOut(HELP.trimEnd());
    return command === undefined && !values.help && !values.version ? 2 : 0;
  }
  if (command === "keygen") return await runKeygen(rest);
  const cli = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!cli) {
    throw new UsageError(
      `Cannot run unknown command "${command}": expected status, backup, restore, get, verify, prune, cleanup, check, keygen or version`,
    );
  }
  const { values, positionals } = parseFlags(rest, { ...COMMON, ...COMMAND_FLAGS[command] });
  if (values.help) {
    printOut(commandHelp(HELP, "z3", command));
    return 0;
  }
  setQuiet(values.quiet === true);
  // Progress lines: on a terminal, or asked for; never under --quiet.
  const progress = !values.quiet && (values.progress === true || Deno.stderr.isTerminal());
  enableProgress(progress);
  const flags = settingFlags(values);
  const configPath = values.config as string | undefined;
  const config = await loadConfig({ configPath, flags, warn: printErr });
  addSecrets(config.secrets);
  checkArguments(command, cli, values, positionals);
  const configFor = configLoader(configPath, flags);
  const datasets = await chooseDatasets(command, cli, config, {
    values,
    positionals,
    configFor,
    signal,
  });
  const context: CliContext = {
    values,
    positionals,
    datasets,
    many: datasets.length > 1 || values.all === true,
    progress,
    signal,
    json: new JsonItems(),
    out: printOut,
    err: printErr,
  };
  const run = cli.start(context);
  if (cli.many) return await runEachDataset(run, context, configFor);
  const store = connect(config);
  try {
    return Number(await run.runDataset(config, store));
  } finally {
    store.close();
  }
});

/** `z3 keygen FILE`: needs no config, bucket or dataset (see `lib/commands/keygen.ts`). */
async function runKeygen(rest: string[]): Promise<number> {
  const { values, positionals } = parseFlags(rest, COMMON);
  if (values.help) {
    printOut(commandHelp(HELP, "z3", "keygen"));
    return 0;
  }
  setQuiet(values.quiet === true);
  if (positionals.length !== 1) {
    throw new UsageError("Cannot run keygen: expected exactly one FILE");
  }
  await keygen(positionals[0], { out: printOut });
  return 0;
}

/** Refuses the wrong number of arguments, and --recursive for a command of one dataset. */
function checkArguments(
  command: string,
  cli: CliCommand,
  values: FlagValues,
  positionals: string[],
): void {
  const wantArgs = cli.operand && !cli.operand.optional ? 1 : 0;
  if (positionals.length !== wantArgs && !(cli.operand?.optional && positionals.length <= 1)) {
    throw new UsageError(
      wantArgs
        ? `Cannot run ${command}: expected exactly one ${cli.operand!.name}`
        : `Cannot run ${command}: unexpected argument "${positionals[0]}"`,
    );
  }
  if (!cli.many && values.recursive) {
    throw new UsageError(`Cannot ${command} recursively: ${command} takes one dataset`);
  }
}

/**
 * Each dataset has its own settings: FILESYSTEM set to it picks its [fs:DATASET] section. With
 * no dataset: the settings of none ([main], environment, flags), for `status --all`. Loaded once
 * per dataset: choosing the datasets and running them ask for the same ones.
 */
function configLoader(
  configPath: string | undefined,
  flags: Record<string, string | undefined>,
): ConfigFor {
  const loaded = new Map<string, Promise<Config>>();
  return (dataset?: string): Promise<Config> => {
    const name = dataset ?? "";
    let c = loaded.get(name);
    if (!c) {
      c = loadConfig({ configPath, flags: { ...flags, filesystem: name }, dataset: name })
        .then((got) => {
          addSecrets(got.secrets);
          return got;
        });
      loaded.set(name, c);
    }
    return c;
  };
}

/** The datasets a command runs over: none for a command of one dataset (it reads FILESYSTEM). */
async function chooseDatasets(
  command: string,
  cli: CliCommand,
  config: Config,
  options: { values: FlagValues; positionals: string[]; configFor: ConfigFor; signal: AbortSignal },
): Promise<string[]> {
  const { values, positionals, configFor, signal } = options;
  // verify's dataset@snap names its dataset.
  if (command === "verify" && positionals[0]?.includes("@")) {
    return [parseSnapshot(positionals[0]).dataset];
  }
  if (!cli.many) return [];
  return await selectDatasets(config, { all: values.all === true, configFor, signal });
}

/**
 * Runs `run` over every dataset (see lib/cli/each_dataset.ts), prints the one --json document,
 * what the command prints at the end, and over several datasets the summary line; returns the
 * exit status.
 */
async function runEachDataset(
  run: CliRun,
  context: CliContext,
  configFor: ConfigFor,
): Promise<number> {
  const { values, datasets, many, json } = context;
  let outcomes;
  try {
    outcomes = await eachDataset(datasets, async (dataset) => {
      const c = await configFor(dataset);
      const store = connect(c);
      try {
        return await run.runDataset(c, store);
      } finally {
        store.close();
      }
    }, { signal: context.signal, err: printErr });
  } finally {
    // One document however many datasets ran (also before a single dataset's error).
    if (values.json && (json.ready || (many && datasets.length === 0))) {
      const doc = run.jsonDocument ? run.jsonDocument(json.items) : json.items;
      printOut(JSON.stringify(doc, null, 2));
    }
  }
  run.finish?.();
  const failed = outcomes.some((o) => !o.ok);
  if (datasets.length > 1 && (failed || !values.quiet)) {
    printErr(summaryLine(outcomes, String));
  }
  return exitCodeOf(outcomes, run.exitCode?.() ?? 0);
}
