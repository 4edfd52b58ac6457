/**
 * z3: ZFS snapshots to S3 and back. argv → config → subcommand. The only place (with pput.ts)
 * that exits or handles signals; see `z3 --help`.
 *
 * @module
 */

import {
  addSecrets,
  type FlagSpec,
  parseFlags,
  printErr,
  printOut,
  runCommand,
} from "./lib/cli.ts";
import { backup } from "./lib/commands/backup.ts";
import { check, checkExitCode, DEFAULT_CHECK_MAX_AGE, formatCheck } from "./lib/commands/check.ts";
import { get, restore } from "./lib/commands/restore.ts";
import { formatParseable, formatTable, holdLine, status } from "./lib/commands/status.ts";
import { SETTINGS, settingsHelp } from "./lib/config.ts";
import { DEFAULT_CONFIG_PATH, loadConfig } from "./lib/config_load.ts";
import { connect } from "./lib/connect.ts";
import { IntegrityError, UsageError } from "./lib/errors.ts";
import { verify } from "./lib/commands/verify.ts";
import { prune } from "./lib/commands/prune.ts";
import { cleanup, DEFAULT_MAX_AGE, parseDuration } from "./lib/commands/cleanup.ts";
import { printable } from "./lib/names.ts";
import { VERSION } from "./lib/version.ts";

const HELP = `z3 ${VERSION}: ZFS snapshots to S3 and back

Usage:
  z3 status  [--json | --parseable]
  z3 backup  [--full] [--snapshot NAME] [--dry-run] [--json | --parseable] [--progress | --quiet]
             [--prune]
  z3 restore SNAPSHOT [--target DATASET] [--force] [--dry-run]
  z3 get     KEY > file
  z3 verify  [SNAPSHOT] [--zfs PARENT] [--repair] [--json]
  z3 prune   [--dry-run] [--json] [--keep-last N] [--keep-daily N] …
  z3 cleanup [--max-age AGE] [--dry-run]
  z3 check   [--max-age AGE] [--json]

Commands:
  status    every snapshot of FILESYSTEM (matching SNAPSHOT_PREFIX) locally and in the bucket:
            NAME | PARENT | TYPE | HEALTH | LOCAL STATE | SIZE. HEALTH is ok, missing parent,
            parent broken, cycle detected, guid mismatch, invalid name, record missing or
            record mismatch (each object is compared with its check record); on stderr,
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
            the newest uploaded snapshot (HOLD) and the previous base is released.
  restore   receive SNAPSHOT (name or dataset@name) from the bucket: walks its chain back to a
            snapshot that exists locally or to a full, checks every link first, then runs
            zfs receive for each object oldest first, checking each part's MD5 (a bad part is
            fetched again) or the object's ETag, and the size, before ZFS can commit it.
            --target receives into another dataset; --force adds -F. Raw and non-raw
            objects never stack (exit 5 before zfs runs); after raw ones, zfs load-key.
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
  -h, --help      this help; --version prints the version

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
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
};
for (const s of SETTINGS) if (s.flag) COMMON[s.flag] = { type: "string" };

const COMMANDS: Record<string, FlagSpec> = {
  status: { json: { type: "boolean" }, parseable: { type: "boolean" } },
  backup: {
    full: { type: "boolean" },
    snapshot: { type: "string" },
    "dry-run": { type: "boolean" },
    json: { type: "boolean" },
    parseable: { type: "boolean" },
    progress: { type: "boolean" },
    quiet: { type: "boolean" },
    prune: { type: "boolean" },
  },
  restore: {
    target: { type: "string" },
    force: { type: "boolean" },
    "dry-run": { type: "boolean" },
  },
  get: {},
  verify: { zfs: { type: "string" }, json: { type: "boolean" }, repair: { type: "boolean" } },
  prune: { "dry-run": { type: "boolean" }, json: { type: "boolean" } },
  cleanup: { "max-age": { type: "string" }, "dry-run": { type: "boolean" } },
  check: { "max-age": { type: "string" }, json: { type: "boolean" } },
};

await runCommand("z3", async ({ signal }) => {
  const [command, ...rest] = Deno.args;
  if (command === undefined || command === "-h" || command === "--help" || command === "help") {
    printOut(HELP.trimEnd());
    return command === undefined ? 2 : 0;
  }
  if (command === "--version") {
    printOut(`z3 ${VERSION}`);
    return 0;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    throw new UsageError(
      `Cannot run unknown command "${command}": expected status, backup, restore, get, verify, prune, cleanup or check`,
    );
  }
  const { values, positionals } = parseFlags(rest, { ...COMMON, ...spec });
  if (values.help) {
    printOut(HELP.trimEnd());
    return 0;
  }
  const flags: Record<string, string | undefined> = {};
  for (const s of SETTINGS) if (s.flag) flags[s.flag] = values[s.flag] as string | undefined;
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
  const store = connect(config);
  try {
    switch (command) {
      case "status": {
        const rows = await status(config, store, signal);
        if (values.json) printOut(JSON.stringify(rows, null, 2));
        else if (values.parseable) formatParseable(rows).forEach((l) => printOut(l));
        else {
          formatTable(rows).forEach((l) => printOut(l));
          printErr(await holdLine(config, store, rows)); // stdout stays the table alone
        }
        return 0;
      }
      case "backup": {
        const records = await backup(config, store, {
          full: values.full === true,
          snapshot: values.snapshot as string | undefined,
          dryRun: values["dry-run"] === true,
          progress: !values.quiet && (values.progress === true || Deno.stderr.isTerminal()),
          afterSuccess: values.prune
            ? async () => {
              for (const l of await prune(config, store, { locked: true, signal, err: printErr })) {
                if (l.action === "delete") printErr(`pruned ${printable(l.snapshot)}`);
              }
            }
            : undefined,
          signal,
          out: printOut,
          err: printErr,
        });
        if (values.json) printOut(JSON.stringify(records, null, 2));
        else if (values.parseable) {
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
              }`,
            );
          }
        }
        return 0;
      }
      case "restore": {
        const received = await restore(config, store, positionals[0], {
          target: values.target as string | undefined,
          force: values.force === true,
          dryRun: values["dry-run"] === true,
          signal,
          out: printOut,
          err: printErr,
        });
        for (const name of received) printOut(`received ${name}`);
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
        if (values.json) printOut(JSON.stringify(results, null, 2));
        else {
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
        return 0;
      }
      case "prune": {
        const lines = await prune(config, store, {
          dryRun: values["dry-run"] === true,
          signal,
          err: printErr,
        });
        if (values.json) printOut(JSON.stringify(lines, null, 2));
        else {
          lines.forEach((l) =>
            printOut([l.action, l.snapshot, l.reasons.join(", ")].map(printable).join("\t"))
          );
        }
        return 0;
      }
      case "cleanup": {
        const maxAgeMs = parseDuration(
          (values["max-age"] as string | undefined) ?? DEFAULT_MAX_AGE,
        );
        await cleanup(config, store, {
          maxAgeMs,
          dryRun: values["dry-run"] === true,
          signal,
          out: printOut,
          err: printErr,
        });
        return 0;
      }
      case "check": {
        const maxAgeMs = parseDuration(
          (values["max-age"] as string | undefined) ?? DEFAULT_CHECK_MAX_AGE,
        );
        const results = await check(config, store, { maxAgeMs, signal });
        if (values.json) printOut(JSON.stringify({ datasets: results }, null, 2));
        else results.forEach((r) => printOut(formatCheck(r)));
        return checkExitCode(results);
      }
      case "get":
        await get(config, store, positionals[0], { signal, err: printErr });
        return 0;
    }
    return 2;
  } finally {
    store.close();
  }
});
