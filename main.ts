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
import { backup, type BackupDryRun } from "./lib/commands/backup.ts";
import {
  check,
  checkExitCode,
  type CheckResult,
  DEFAULT_CHECK_MAX_AGE,
  formatCheck,
} from "./lib/commands/check.ts";
import { get, restore, type RestoreDryRun } from "./lib/commands/restore.ts";
import {
  formatParseable,
  formatTable,
  holdLine,
  status,
  type StatusLine,
} from "./lib/commands/status.ts";
import type { Config } from "./lib/config/config.ts";
import { settingFlags } from "./lib/config/flags.ts";
import { SETTINGS } from "./lib/config/settings.ts";
import { settingsHelp } from "./lib/config/help.ts";
import { DEFAULT_CONFIG_PATH, loadConfig } from "./lib/config/load.ts";
import { connect } from "./lib/cli/connect.ts";
import { IntegrityError, UsageError } from "./lib/base/errors.ts";
import { verify } from "./lib/commands/verify.ts";
import { prune } from "./lib/commands/prune.ts";
import { cleanup, DEFAULT_MAX_AGE } from "./lib/commands/cleanup.ts";
import { parseSnapshot, printable } from "./lib/chain/names.ts";
import { humanBytes } from "./lib/cli/human.ts";
import { enableProgress } from "./lib/cli/progress.ts";
import { parsePolicy, requirePolicy } from "./lib/chain/retention.ts";
import { VERSION } from "./lib/base/version.ts";
import { selectDatasets } from "./lib/cli/datasets.ts";
import { eachDataset, exitCodeOf, summaryLine } from "./lib/cli/each_dataset.ts";
import type { S3Store } from "./lib/backend/s3.ts";
import { parseDuration } from "./lib/cli/durations.ts";

const HELP = `z3 ${VERSION}: ZFS snapshots to S3 and back

Usage:
  z3 status  [--all] [--json | --parseable]
  z3 backup  [--full] [--snapshot NAME] [--dry-run] [--json | --parseable] [--progress]
             [--prune]
  z3 restore SNAPSHOT [--target DATASET] [--force] [--properties] [--dry-run] [--json]
             [--progress]
  z3 get     KEY [--json] > file
  z3 verify  [SNAPSHOT] [--zfs PARENT] [--repair] [--json] [--progress]
  z3 prune   [--dry-run] [--json] [--keep-last N] [--keep-daily N] …
  z3 cleanup [--max-age AGE] [--dry-run] [--json]
  z3 check   [--max-age AGE] [--json]
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
            invalid name, record missing or record mismatch (each object is compared with
            its check record); on stderr,
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
            --target receives into another dataset; --force adds -F. Raw and non-raw
            objects never stack (exit 5 before zfs runs); after raw ones, zfs load-key.
            --properties sets the local properties stored with the chain's full (zfs set;
            all but mountpoint; one refused is a warning line, not a failure).
  prune     delete the bucket's objects that KEEP_LAST / KEEP_HOURLY / … / KEEP_YEARLY do not keep
            (newest per hour/day/ISO week/month/year, UTC). Never deletes an object a kept
            snapshot's chain needs, nor one of a broken chain, nor anything while an object
            disagrees with its check record (exit 6); --dry-run prints every decision and why.
            Keeps what Object Lock still holds ("locked until DATE"); deletes the rest of a
            versioned bucket by version id. backup --prune prunes only after a successful backup.
  get       write one object's verified bytes to stdout (KEY as stored, or dataset@snap),
            decrypted with AGE_IDENTITY_FILE when it is encrypted with age
  verify    download every object of FILESYSTEM (or SNAPSHOT's chain), check it against its check
            record and recompute its ETag; one line per snapshot: ok, corrupt, missing (broken
            chain) or unverifiable (objects of the original z3: size checked only). --zfs PARENT
            also receives each chain into a throwaway, unmounted dataset under PARENT,
            destroyed after.
            --repair writes a z3 object's missing check record again when its bytes match its
            ETag (reported "repaired"); a record that disagrees is never overwritten.
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

/** The commands that run over every dataset of FILESYSTEM (see lib/each_dataset.ts). */
const MANY = new Set(["status", "backup", "verify", "prune", "check"]);

const COMMANDS: Record<string, FlagSpec> = {
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
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
  },
  get: { json: { type: "boolean" } },
  verify: {
    zfs: { type: "string" },
    json: { type: "boolean" },
    repair: { type: "boolean" },
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

await runCommand("z3", async ({ signal }) => {
  const { command, rest } = splitCommand(Deno.args, COMMON);
  if (command === undefined || command === "help" || command === "version") {
    const { values } = parseFlags(rest, COMMON);
    if (command === "version" || values.version) printOut(`z3 ${VERSION}`);
    else printOut(HELP.trimEnd());
    return command === undefined && !values.help && !values.version ? 2 : 0;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    throw new UsageError(
      `Cannot run unknown command "${command}": expected status, backup, restore, get, verify, prune, cleanup, check or version`,
    );
  }
  const { values, positionals } = parseFlags(rest, { ...COMMON, ...spec });
  if (values.help) {
    printOut(commandHelp(HELP, "z3", command));
    return 0;
  }
  setQuiet(values.quiet === true);
  // Progress lines: on a terminal, or asked for; never under --quiet.
  const showProgress = !values.quiet && (values.progress === true || Deno.stderr.isTerminal());
  enableProgress(showProgress);
  const flags = settingFlags(values);
  const config = await loadConfig({
    configPath: values.config as string | undefined,
    flags,
    warn: printErr,
  });
  addSecrets(config.secrets);
  const wantArgs = command === "restore" || command === "get" ? 1 : 0;
  if (positionals.length !== wantArgs && !(command === "verify" && positionals.length <= 1)) {
    throw new UsageError(
      wantArgs
        ? `Cannot run ${command}: expected exactly one ${command === "get" ? "KEY" : "SNAPSHOT"}`
        : `Cannot run ${command}: unexpected argument "${positionals[0]}"`,
    );
  }
  if (!MANY.has(command) && values.recursive) {
    throw new UsageError(`Cannot ${command} recursively: ${command} takes one dataset`);
  }
  // Each dataset has its own settings: FILESYSTEM set to it picks its [fs:DATASET] section.
  // With no dataset: the settings of none ([main], environment, flags), for `status --all`.
  // Loaded once per dataset: choosing the datasets and running them ask for the same ones.
  const loaded = new Map<string, Promise<Config>>();
  const configFor = (dataset?: string): Promise<Config> => {
    const name = dataset ?? "";
    let c = loaded.get(name);
    if (!c) {
      c = loadConfig({
        configPath: values.config as string | undefined,
        flags: { ...flags, filesystem: name },
        dataset: name,
      }).then((got) => {
        addSecrets(got.secrets);
        return got;
      });
      loaded.set(name, c);
    }
    return c;
  };
  let datasets: string[] = [];
  if (command === "verify" && positionals[0]?.includes("@")) {
    datasets = [parseSnapshot(positionals[0]).dataset]; // dataset@snap names its dataset
  } else if (MANY.has(command)) {
    datasets = await selectDatasets(config, { all: values.all === true, configFor, signal });
    if (command === "verify" && positionals.length > 0 && datasets.length > 1) {
      throw new UsageError(
        `Cannot verify "${positionals[0]}" over ${datasets.length} datasets: name one dataset`,
      );
    }
    const snapshot = values.snapshot as string | undefined;
    if (command === "backup" && snapshot?.includes("@") && datasets.length > 1) {
      throw new UsageError(
        `Cannot back up ${JSON.stringify(snapshot)} over ${datasets.length} datasets: name one ` +
          `dataset, or give --snapshot the short name (${
            JSON.stringify(snapshot.slice(snapshot.indexOf("@") + 1))
          }) to back up that snapshot of each`,
      );
    }
  }
  const many = datasets.length > 1 || values.all === true;
  const checkMaxAgeMs = command === "check"
    ? parseDuration((values["max-age"] as string | undefined) ?? DEFAULT_CHECK_MAX_AGE)
    : 0;
  const json: unknown[] = [];
  let jsonReady = false;
  const table: StatusLine[] = [];
  const holds: string[] = [];
  /** Runs the command for one dataset: what it did, for the summary, or its exit status. */
  const runOne = async (config: Config, store: S3Store): Promise<string | number> => {
    switch (command) {
      case "status": {
        const rows = await status(config, store, signal);
        jsonReady = true;
        json.push(...rows);
        table.push(...rows);
        if (!values.json && !values.parseable) {
          const line = await holdLine(config, store, rows);
          holds.push(many ? `${printable(config.filesystem!)}: ${line}` : line);
        }
        return "listed";
      }
      case "backup": {
        const dryRun = values["dry-run"] === true;
        // Refused before anything is uploaded, not after.
        if (values.prune) {
          requirePolicy(parsePolicy(config.keep, (k) => config.sources[k]), "back up with --prune");
        }
        const plan: string[] = [];
        // Up to date, the plan has no steps and no commands.
        let planned: BackupDryRun = { steps: [], commands: [] };
        const records = await backup(config, store, {
          full: values.full === true,
          snapshot: values.snapshot as string | undefined,
          dryRun,
          progress: showProgress,
          afterSuccess: values.prune
            ? async () => {
              for (const l of await prune(config, store, { locked: true, signal, err: printErr })) {
                if (l.action === "delete") printErr(`pruned ${printable(l.snapshot)}`);
              }
            }
            : undefined,
          signal,
          onPlan: (p) => planned = p,
          out: values.json ? (line) => plan.push(line) : printOut,
          err: printErr,
        });
        jsonReady = true;
        // --dry-run --json: the plan's lines and data, per dataset (one object for one dataset).
        if (values.json && dryRun) {
          json.push({ dataset: config.filesystem, dryRun, plan, ...planned });
        } else json.push(...records);
        if (values.json) {
          // printed once, after every dataset
        } else if (values.parseable) {
          records.forEach((r) =>
            printOut([r.snapshot, r.type, r.parent ?? "", r.bytes, r.key].join("\t"))
          );
        } else {
          for (const r of records) {
            printOut(
              `${r.snapshot}: ${r.type}${
                r.parent ? ` from ${r.parent}` : ""
              }, ${r.bytes} bytes in ${r.parts} part(s)${
                r.resumedParts ? ` (${r.resumedParts} resumed)` : ""
              } in ${r.seconds.toFixed(1)} s, ${humanBytes(r.bytes / Math.max(r.seconds, 1e-3))}/s`,
            );
          }
        }
        return values["dry-run"] ? "planned" : records.length > 0 ? "backed up" : "up to date";
      }
      case "restore": {
        const dryRun = values["dry-run"] === true;
        const plan: string[] = [];
        let planned: RestoreDryRun = { steps: [] };
        const received = await restore(config, store, positionals[0], {
          target: values.target as string | undefined,
          force: values.force === true,
          properties: values.properties === true,
          dryRun,
          onPlan: (p) => planned = p,
          signal,
          out: values.json ? (line) => plan.push(line) : printOut,
          err: printErr,
        });
        if (values.json) {
          printOut(JSON.stringify(dryRun ? { dryRun, plan, ...planned } : { received }, null, 2));
        } else for (const name of received) printOut(`received ${name}`);
        return 0;
      }
      case "verify": {
        const results = await verify(config, store, {
          snapshot: positionals[0],
          zfsParent: values.zfs as string | undefined,
          repair: values.repair === true,
          signal,
          err: printErr,
        });
        jsonReady = true;
        json.push(...results);
        if (!values.json) {
          results.forEach((r) =>
            printOut([r.snapshot, r.state, r.detail].map(printable).join("\t"))
          );
        }
        const bad = results.filter((r) => ["corrupt", "missing", "unprotected"].includes(r.state));
        if (bad.length > 0) {
          throw new IntegrityError(
            `Cannot verify ${bad.length} of ${results.length} snapshot(s): ${
              bad.map((r) => `${printable(r.snapshot)} ${r.state}`).join(", ")
            }`,
          );
        }
        return "verified";
      }
      case "prune": {
        const lines = await prune(config, store, {
          dryRun: values["dry-run"] === true,
          signal,
          err: printErr,
        });
        jsonReady = true;
        json.push(...lines);
        if (!values.json) {
          lines.forEach((l) =>
            printOut([l.action, l.snapshot, l.reasons.join(", ")].map(printable).join("\t"))
          );
        }
        return values["dry-run"] ? "planned" : "pruned";
      }
      case "cleanup": {
        const maxAgeMs = parseDuration(
          (values["max-age"] as string | undefined) ?? DEFAULT_MAX_AGE,
        );
        const uploads = await cleanup(config, store, {
          maxAgeMs,
          dryRun: values["dry-run"] === true,
          signal,
          out: values.json ? () => {} : printOut,
          err: printErr,
        });
        if (values.json) printOut(JSON.stringify(uploads, null, 2));
        return 0;
      }
      case "check": {
        const results = await check(config, store, { maxAgeMs: checkMaxAgeMs, signal });
        jsonReady = true;
        json.push(...results);
        if (!values.json) results.forEach((r) => printOut(formatCheck(r)));
        return results.map((r) => r.state.toLowerCase()).join();
      }
      case "get": {
        // stdout carries the object's bytes: --json's summary goes to stderr.
        const got = await get(config, store, positionals[0], { signal, err: printErr });
        // No summary when the reader closed stdout early (`| head -c N`).
        if (got && values.json) printErr(JSON.stringify(got));
        return 0;
      }
    }
    throw new Error(`no such command ${command}`);
  };
  if (MANY.has(command)) {
    let outcomes;
    try {
      outcomes = await eachDataset(datasets, async (dataset) => {
        const c = await configFor(dataset);
        const store = connect(c);
        try {
          return await runOne(c, store);
        } finally {
          store.close();
        }
      }, { signal, err: printErr });
    } finally {
      // One document however many datasets ran (also before a single dataset's error).
      if (values.json && (jsonReady || (many && datasets.length === 0))) {
        const doc = command === "check"
          ? { datasets: json }
          : command === "backup" && values["dry-run"] && !many
          ? json[0]
          : json;
        printOut(JSON.stringify(doc, null, 2));
      }
    }
    if (command === "status" && !values.json) {
      if (values.parseable) formatParseable(table, { datasets: many }).forEach((l) => printOut(l));
      else formatTable(table, { datasets: many }).forEach((l) => printOut(l));
      holds.forEach((l) => printErr(l)); // stdout stays the table alone
    }
    const failed = outcomes.some((o) => !o.ok);
    if (datasets.length > 1 && (failed || !values.quiet)) {
      printErr(summaryLine(outcomes, String));
    }
    return exitCodeOf(
      outcomes,
      command === "check" ? checkExitCode(json as CheckResult[]) : 0,
    );
  }
  const store = connect(config);
  try {
    return Number(await runOne(config, store));
  } finally {
    store.close();
  }
});
