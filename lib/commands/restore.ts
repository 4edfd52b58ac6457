/**
 * `z3 restore SNAPSHOT` and `z3 get KEY`: walk the chain in the bucket back to a snapshot that
 * exists locally or to a full, check every link before touching ZFS, then feed `zfs receive`
 * object after object, oldest first, each verified against its ETag and size as it streams.
 *
 * @module
 */

import {
  applyProperties,
  chainFull,
  namedProperties,
  readProperties,
} from "../pipeline/properties.ts";
import { Chains } from "../chain/walk.ts";
import { keyFor } from "../chain/keys.ts";
import { checkTarget, planRestore, type RestorePlan } from "../chain/restore_plan.ts";
import { shortName } from "../chain/names.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import type { Config } from "../config/config.ts";
import { checkCompressor } from "../pipeline/compress.ts";
import { checkIdentity } from "../pipeline/age.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import { UsageError } from "../base/errors.ts";
import { ignoreClosedStdout as closedStdout } from "../cli/run.ts";
import { parseSnapshot, validateDataset } from "../chain/names.ts";
import { formatArgv } from "../exec/process.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import {
  refuseMixedEncryption,
  signedFlaws,
  signedProperties,
} from "../repository/trusted_records.ts";
import type { ObjectInfo, S3Store } from "../backend/s3.ts";
import { withRetry } from "../backend/retry.ts";
import type { Expected } from "../transfer/verifying_stream.ts";
import { decrypted, encrypted, receiveOne } from "../pipeline/receive.ts";
import { inspectHeaded, inspectObject, openVerified } from "../repository/verified_object.ts";
import * as zfs from "../zfs/zfs.ts";
import { checkRestoreFlags, isRaw, readSendFlags } from "../config/send_flags.ts";
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";

/** Options of `z3 restore`. */
export interface RestoreOptions {
  /** Dataset to receive into. @default {the backed-up dataset} */
  target?: string;
  /** `zfs receive -F`. */
  force?: boolean;
  /**
   * Set the properties stored with the chain's full on the target afterwards: those of
   * `DEFAULT_PROPERTIES` (`properties.ts`) and `namedProperties`.
   */
  properties?: boolean;
  /** With `properties`: also these (`--property`), e.g. `setuid` or a user property. */
  namedProperties?: ReadonlySet<string>;
  dryRun?: boolean;
  /** With `dryRun`: receives the plan as data (`--json`), besides its lines on `out`. */
  onPlan?: (plan: RestoreDryRun) => void;
  signal?: AbortSignal;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** One object a dry run would receive, oldest first. */
export interface PlannedReceive {
  snapshot: string;
  key: string;
  /** The compressor named in its metadata (`none` when it names none). */
  compressor: string;
  encrypted: boolean;
  /** The `zfs receive` argv. */
  receive: string[];
}

/** A dry run's plan as data: what `restore --dry-run --json` adds to the plan's lines. */
export interface RestoreDryRun {
  steps: PlannedReceive[];
}

/** Restores `snapshot` (`snap` or `dataset@snap`); returns the names received. */
export async function restore(
  config: Config,
  store: S3Store,
  snapshot: string,
  options: RestoreOptions,
): Promise<string[]> {
  const full = snapshot.includes("@") ? snapshot : `${requireDataset(config)}@${snapshot}`;
  const { target, remote, plan, exists } = await planReceives(config, store, full, options);
  if (plan.steps.length === 0) {
    options.err(`${target}@${shortName(full)} exists locally: nothing to restore`);
    return [];
  }
  const raw = await checkStreams(plan, target, exists);
  // Every check of the real run before its first receive, dry run included (same exit).
  const expected = await checkObjects(config, store, plan, options.signal);
  // The sidecar is read (a malformed one refused) before anything is received.
  const root = options.properties ? chainFull(remote, full) : undefined;
  const stored = root &&
    await readProperties(
      store,
      config.s3Prefix,
      root.name,
      config.maxRetries + 1,
      signedProperties(config, root),
    );
  if (options.dryRun) {
    printDryRun(store, plan, target, options);
    return [];
  }
  const done = await receiveAll(config, store, { plan, expected }, target, options);
  if (root) {
    await applyProperties(
      stored,
      root.name,
      target,
      options.namedProperties ?? new Set(),
      options.err,
    );
  }
  if (raw) {
    options.err(
      `${target}: received raw (encrypted) streams: its key is not loaded; run ` +
        `zfs load-key ${JSON.stringify(target)} (or on its encryption root), then zfs mount`,
    );
  }
  return done;
}

/** Lists the bucket and the target and plans the receives of `full` (`dataset@snap`). */
async function planReceives(
  config: Config,
  store: S3Store,
  full: string,
  options: RestoreOptions,
): Promise<{
  target: string;
  remote: Map<string, RemoteSnapshot>;
  plan: RestorePlan;
  /** Whether the target dataset exists. */
  exists: boolean;
}> {
  const { dataset } = parseSnapshot(full);
  const target = validateDataset(options.target ?? dataset);
  const remote = await loadRemote(store, config.s3Prefix, dataset, {
    signal: options.signal,
    attempts: config.maxRetries + 1,
  });
  // With trusted keys: chain fields from signed records; unsigned objects are refused when inspected.
  await signedFlaws(store, config, remote, { signal: options.signal });
  const exists = await zfs.datasetExists(target);
  const local = exists ? await zfs.listSnapshots(target) : [];
  const plan = planRestore(
    new Chains(remote),
    full,
    new Map(local.map((s) => [s.snapshot, s.guid])),
  );
  const snapshots = local.map((s) => s.snapshot);
  checkTarget(full, plan, { name: target, exists, snapshots, force: options.force === true });
  return { target, remote, plan, exists };
}

/**
 * Refuses, before any download or receive, a plan whose streams z3 cannot undo or that do not
 * stack; returns whether any of them is raw (`zfs send -w`).
 */
async function checkStreams(plan: RestorePlan, target: string, exists: boolean): Promise<boolean> {
  // Every object's compressor must be one z3 can undo, before any download or receive.
  for (const { remote: r } of plan.steps) {
    try {
      checkCompressor(r.compressor);
    } catch (err) {
      throw new UsageError(`Cannot restore "${r.name}": ${(err as Error).message}`);
    }
  }
  // Raw (-w) and non-raw streams do not stack, neither along the chain nor onto the target.
  const kinds = plan.steps.map(({ remote: r }) => ({
    name: r.name,
    flags: readSendFlags(r.name, r.metadata),
  }));
  checkRestoreFlags(
    kinds,
    target,
    exists ? (await zfs.getEncryption(target)) !== "off" : undefined,
  );
  return kinds.some((k) => isRaw(k.flags));
}

/** `--dry-run`: one line per object on `out`, the plan as data to `onPlan`. */
function printDryRun(
  store: S3Store,
  plan: RestorePlan,
  target: string,
  options: RestoreOptions,
): void {
  const receive = zfs.receiveArgv(target, { force: options.force });
  for (const { remote: r } of plan.steps) {
    const dec = r.compressor && r.compressor !== "none" ? ` | decompress ${r.compressor}` : "";
    const age = encrypted(r.metadata) ? " | (in-process age -d)" : "";
    options.out(
      `${r.name}: download s3://${store.bucket}/${r.key}${age}${dec} | ${formatArgv(receive)}`,
    );
  }
  options.onPlan?.({
    steps: plan.steps.map(({ remote: r }) => ({
      snapshot: r.name,
      key: r.key,
      compressor: checkCompressor(r.compressor),
      encrypted: encrypted(r.metadata),
      receive: [...receive],
    })),
  });
}

/**
 * Checks every object's age identity, then that it is still what its backup verified (its check
 * record, `verified_object.ts`), before ZFS sees any of them; returns what each must stream.
 */
async function checkObjects(
  config: Config,
  store: S3Store,
  plan: RestorePlan,
  signal: AbortSignal | undefined,
): Promise<Expected[]> {
  for (const { remote: r } of plan.steps) {
    checkIdentity(r.key, r.metadata, config.ageIdentities ?? [], config.ageIdentityFile);
  }
  const expected: Expected[] = [];
  for (const { remote: r } of plan.steps) {
    expected.push(await inspectObject(store, r.key, config, signal));
  }
  refuseMixedEncryption(config, plan.steps.map((step) => step.remote));
  return expected;
}

/** Receives the checked objects into `target` in order (`receive.ts`); returns the names. */
async function receiveAll(
  config: Config,
  store: S3Store,
  checked: { plan: RestorePlan; expected: Expected[] },
  target: string,
  options: RestoreOptions,
): Promise<string[]> {
  const done: string[] = [];
  for (const [i, { remote: r }] of checked.plan.steps.entries()) {
    options.signal?.throwIfAborted();
    options.err(`${r.name}: receiving into ${target}`);
    await receiveOne(config, store, r, target, options, checked.expected[i]);
    done.push(`${target}@${r.snapshot}`);
  }
  return done;
}

/**
 * The object `z3 get` means by `key`: `S3_PREFIX` + `key` first, else `key` as given; `undefined`
 * when neither exists. A name that is both (a key outside `S3_PREFIX` shadowing a backup) is
 * refused with a {@linkcode UsageError}: the one outside would skip the check record.
 */
export async function findObject(
  config: Config,
  store: S3Store,
  key: string,
  signal?: AbortSignal,
): Promise<ObjectInfo | undefined> {
  const prefixed = keyFor(config.s3Prefix, key);
  const retry = { attempts: config.maxRetries + 1, signal };
  const under = await withRetry(() => store.head(prefixed, signal), retry);
  if (prefixed === key) return under;
  const outside = await withRetry(() => store.head(key, signal), retry);
  if (under && outside) {
    throw new UsageError(
      `Cannot download "${key}": it names two objects in bucket "${store.bucket}", ` +
        `"${prefixed}" (under S3_PREFIX) and "${key}"; move or delete the one outside S3_PREFIX`,
    );
  }
  return under ?? outside;
}

/**
 * `z3 get KEY`: the object's verified bytes to stdout (see {@linkcode findObject} for which
 * object), decrypted when it is encrypted with age. Returns the object's key, stored size and
 * ETag, or `undefined` when the reader closed stdout before the end.
 */
export async function get(
  config: Config,
  store: S3Store,
  key: string,
  options: { signal?: AbortSignal; err: (line: string) => void },
): Promise<{ key: string; size: number; etag: string } | undefined> {
  const info = await findObject(config, store, key, options.signal);
  if (!info) {
    throw new UsageError(`Cannot download "${key}": no such object in bucket "${store.bucket}"`);
  }
  const k = info.key;
  checkIdentity(k, info.metadata, config.ageIdentities ?? [], config.ageIdentityFile);
  const expected = await inspectHeaded(store, info, config);
  const stream = await decrypted(
    await openVerified(store, k, config, options, expected),
    k,
    info.metadata,
    config,
  );
  const piped = stream.pipeTo(Deno.stdout.writable, {
    signal: options.signal,
    preventClose: true,
  });
  return await piped.then(() => ({ key: k, size: info.size, etag: info.etag }), closedStdout);
}

/**
 * `z3 restore SNAPSHOT` for `main.ts`: `received NAME` per snapshot received; with `--json` one
 * document `{received}`, or with `--dry-run` the plan's lines and data.
 */
export const restoreCli: CliCommand = {
  many: false,
  operand: { name: "SNAPSHOT" },
  start: startRestore,
};

function startRestore(context: CliContext): CliRun {
  const { values } = context;
  return {
    async runDataset(config, store) {
      const dryRun = values["dry-run"] === true;
      const named = namedProperties((values.property as string[] | undefined) ?? []);
      const plan: string[] = [];
      let planned: RestoreDryRun = { steps: [] };
      const received = await restore(config, store, context.positionals[0], {
        target: values.target as string | undefined,
        force: values.force === true,
        properties: values.properties === true || named.size > 0,
        namedProperties: named,
        dryRun,
        onPlan: (p) => planned = p,
        signal: context.signal,
        out: values.json ? (line) => plan.push(line) : context.out,
        err: context.err,
      });
      if (values.json) {
        context.out(
          JSON.stringify(dryRun ? { dryRun, plan, ...planned } : { received }, null, 2),
        );
      } else for (const name of received) context.out(`received ${name}`);
      return 0;
    },
  };
}

/**
 * `z3 get KEY` for `main.ts`: stdout carries the object's bytes, so `--json`'s summary goes to
 * stderr (and is left out when the reader closed stdout early, `| head -c N`).
 */
export const getCli: CliCommand = {
  many: false,
  operand: { name: "KEY" },
  start: (context) => ({
    async runDataset(config, store) {
      const { signal, err } = context;
      const got = await get(config, store, context.positionals[0], { signal, err });
      if (got && context.values.json) err(JSON.stringify(got));
      return 0;
    },
  }),
};
