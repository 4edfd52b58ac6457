/**
 * `z3 verify`: downloads every object of the dataset's chains in the bucket (or the chain of one
 * snapshot), checks each against its check record and recomputes its ETag from the bytes, reads
 * its send stream through (decrypted and decompressed where this host can: its BEGIN record,
 * its END record and the checksum END carries), checks every chain link, and reports per
 * snapshot: ok / corrupt / missing / unverifiable. With
 * `--zfs PARENT` it also receives each verified chain into a throwaway dataset under PARENT,
 * destroyed afterwards, to prove it restores. With `--adopt` (and `SIGNING_KEY_FILE`) each object
 * that verifies gets a record signed with that key (`adopt.ts`), reported "adopted".
 *
 * @module
 */

import { planRestore } from "../chain/restore_plan.ts";
import { Chains, quote } from "../chain/walk.ts";
import type { Config } from "../config/config.ts";
import { requireDataset } from "../cli/one_dataset.ts";
import {
  ChainError,
  CommandError,
  describeError,
  IntegrityError,
  UsageError,
  ZfsError,
} from "../base/errors.ts";
import { parseSnapshot, printable, validateDataset } from "../chain/names.ts";
import { inspectObject } from "../repository/verified_object.ts";
import { readThrough, receiveOne } from "../pipeline/receive.ts";
import { MissingRecordError } from "../repository/check_records.ts";
import { rerecord } from "../repository/rerecord.ts";
import { adoptObject } from "../repository/adopt.ts";
import { loadRemote } from "../repository/bucket_index.ts";
import { signedFlaws } from "../repository/trusted_records.ts";
import type { S3Store } from "../backend/s3.ts";
import { verifiability } from "../transfer/verifying_stream.ts";
import { retentionFlaws } from "../repository/object_lock_run.ts";
import * as zfs from "../zfs/zfs.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import type { CliCommand, CliContext, CliRun } from "../cli/command.ts";

/** The verdict on one snapshot. */
export interface VerifyResult {
  snapshot: string;
  /** `unprotected`: the bytes verified, but its Object Lock retention is short (`repository/object_lock_run.ts`). */
  state: "ok" | "repaired" | "adopted" | "corrupt" | "missing" | "unverifiable" | "unprotected";
  detail: string;
}

/** Options of `z3 verify`. */
export interface VerifyOptions {
  /** Only this snapshot's chain (`snap` or `dataset@snap`). */
  snapshot?: string;
  /** Also receive into a throwaway dataset under this parent. */
  zfsParent?: string;
  /**
   * Write a missing check record again when the object's bytes match its ETag (see
   * `rerecord.ts`); the snapshot is then reported "repaired".
   */
  repair?: boolean;
  /**
   * Sign the record of each object that verifies with `SIGNING_KEY_FILE` (see `adopt.ts`); the
   * snapshot is then reported "adopted".
   */
  adopt?: boolean;
  signal?: AbortSignal;
  err: (line: string) => void;
}

/** Verifies objects; never throws for a bad object (that is a result), only for setup errors. */
export async function verify(
  config: Config,
  store: S3Store,
  options: VerifyOptions,
): Promise<VerifyResult[]> {
  const dataset = options.snapshot?.includes("@")
    ? parseSnapshot(options.snapshot).dataset
    : requireDataset(config);
  if (options.adopt && !config.signingKey) {
    throw new UsageError("Cannot verify --adopt: set SIGNING_KEY_FILE to the key to sign with");
  }
  const remote = await loadRemote(store, config.s3Prefix, dataset, {
    signal: options.signal,
    attempts: config.maxRetries + 1,
  });
  // With trusted keys: chain fields from signed records; unsigned objects are corrupt when checked.
  await signedFlaws(store, config, remote, { signal: options.signal });
  const chains = new Chains(remote);
  let chosen: RemoteSnapshot[] = [...remote.values()].filter((s) =>
    s.snapshot.startsWith(config.snapshotPrefix)
  );
  if (options.snapshot) {
    const name = options.snapshot.includes("@")
      ? options.snapshot
      : `${dataset}@${options.snapshot}`;
    if (!remote.has(name)) throw new UsageError(`Cannot verify ${quote(name)}: not in the bucket`);
    chosen = [...chains.ancestors(name)].reverse();
  }
  const results = new Map<string, VerifyResult>();
  for (const s of chosen) {
    options.signal?.throwIfAborted();
    const health = chains.health(s.name);
    if (health !== "ok") {
      results.set(s.name, {
        snapshot: s.name,
        // An empty object is no stream at all: its bytes are bad, not its chain.
        state: health === "empty" ? "corrupt" : "missing",
        detail: `chain: ${chains.why(s.name)}`,
      });
      continue;
    }
    results.set(s.name, await checkSnapshot(config, store, s, options));
  }
  markDescendants(chains, results);
  if (options.zfsParent) {
    validateDataset(options.zfsParent);
    await proveRestores(config, store, chains, [...results.values()], options);
  }
  const good = [...results.values()].filter(restorable);
  const locks = await retentionFlaws(store, config, chains, good.map((r) => r.snapshot), {
    attempts: config.maxRetries + 1,
    signal: options.signal,
  });
  for (const r of good) {
    const flaw = locks.get(r.snapshot);
    if (flaw !== undefined) Object.assign(r, { state: "unprotected", detail: flaw });
  }
  return [...results.values()];
}

/**
 * An object that verified is still unrestorable when an object below it did not: reports it
 * so, naming the nearest such ancestor, rather than "ok". Walks down the child links from each
 * such object once, so every object is visited once.
 */
function markDescendants(chains: Chains, results: Map<string, VerifyResult>): void {
  const bad = new Set([...results.values()].filter((r) => !restorable(r)).map((r) => r.snapshot));
  const culprits = new Map<string, string>();
  const stack = [...bad];
  while (stack.length > 0) {
    const parent = stack.pop()!;
    for (const child of chains.children(parent)) {
      if (bad.has(child.name) || culprits.has(child.name)) continue;
      culprits.set(child.name, bad.has(parent) ? parent : culprits.get(parent)!);
      stack.push(child.name);
    }
  }
  for (const r of results.values()) {
    const culprit = culprits.get(r.snapshot);
    if (culprit === undefined || !restorable(r)) continue;
    const verdict = results.get(culprit)?.state;
    const repaired = r.state === "repaired" ? "check record written again; " : "";
    r.state = "missing";
    r.detail = `${repaired}unrestorable: it needs ${quote(culprit)}, which is ${verdict}`;
  }
}

/**
 * Downloads and checks one snapshot's object. Bytes that do not match (and a z3 object without
 * its record) are a result, "corrupt"; an object gone since the listing is "missing". Anything
 * else (the endpoint, a permission, a signal) is not about the bytes: it is thrown, with its
 * own exit status.
 */
async function checkSnapshot(
  config: Config,
  store: S3Store,
  s: RemoteSnapshot,
  options: VerifyOptions,
): Promise<VerifyResult> {
  if (options.adopt) return await adopt(config, store, s, options);
  try {
    const expected = await inspectObject(store, s.key, config, options.signal);
    const thorough = verifiability(expected) === "etag";
    const read = { signal: options.signal, err: () => {} };
    const stream = await readThrough(config, store, s, read, expected);
    if (!thorough) {
      return {
        snapshot: s.name,
        state: "unverifiable",
        detail: `no part sizes recorded: size checked only; ${stream}`,
      };
    }
    return {
      snapshot: s.name,
      state: "ok",
      detail: `ETag ${expected.etag}, ${expected.size} bytes; ${stream}`,
    };
  } catch (err) {
    options.signal?.throwIfAborted();
    if (options.repair && err instanceof MissingRecordError) {
      return await repair(config, store, s, options);
    }
    return verdict(s, err);
  }
}

/** "corrupt" for bytes that did not verify, "missing" for an object gone; else rethrows. */
function verdict(s: RemoteSnapshot, err: unknown): VerifyResult {
  if (err instanceof IntegrityError) {
    return { snapshot: s.name, state: "corrupt", detail: describeError(err) };
  }
  if (err instanceof UsageError || err instanceof ChainError) {
    // HeadObject found no object (UsageError), or rerecord() found it gone (ChainError).
    return { snapshot: s.name, state: "missing", detail: describeError(err) };
  }
  throw err;
}

async function repair(
  config: Config,
  store: S3Store,
  s: RemoteSnapshot,
  options: VerifyOptions,
): Promise<VerifyResult> {
  try {
    const record = await rerecord(config, store, s, { signal: options.signal, action: "repair" });
    return {
      snapshot: s.name,
      state: "repaired",
      detail: `check record was missing; the bytes match the object's ETag, record written ` +
        `(ETag ${record.etag}, ${record.size} bytes)`,
    };
  } catch (err) {
    options.signal?.throwIfAborted();
    return verdict(s, err);
  }
}

/** `--adopt`: checks the object and signs its record (`adopt.ts`); "adopted", or the verdict. */
async function adopt(
  config: Config,
  store: S3Store,
  s: RemoteSnapshot,
  options: VerifyOptions,
): Promise<VerifyResult> {
  try {
    const fields = await adoptObject(config, store, s, { signal: options.signal });
    return {
      snapshot: s.name,
      state: "adopted",
      detail: `bytes verified (ETag ${fields.etag}, ${fields.size} bytes, SHA-256 ` +
        `${fields.sha256}); record signed by ${config.signingKey!.publicKey.text}`,
    };
  } catch (err) {
    options.signal?.throwIfAborted();
    return verdict(s, err);
  }
}

async function proveRestores(
  config: Config,
  store: S3Store,
  chains: Chains,
  results: VerifyResult[],
  options: VerifyOptions,
) {
  // Receive each chain once, up to its newest verified snapshot.
  const good = new Set(
    results.filter(restorable).map((r) => r.snapshot),
  );
  // A tip is a good object that no good object builds on.
  const below = new Set<string>();
  for (const name of good) {
    const link = chains.link(chains.remote.get(name)!);
    if (link.kind === "parent") below.add(link.parent.name);
  }
  const tips = [...good].filter((name) => !below.has(name));
  for (const tip of tips) {
    // The chain is received into `scratch/chain` with `zfs receive -u`; scratch has
    // mountpoint=none too, inherited, so nothing received is mounted.
    const scratch = `${options.zfsParent}/z3-verify-${crypto.randomUUID().slice(0, 8)}`;
    options.err(`verify: receiving the chain of ${tip} into ${scratch}/chain`);
    try {
      await zfs.createUnmounted(scratch);
      const plan = planRestore(chains, tip, new Map());
      for (const { remote: r } of plan.steps) {
        await receiveOne(config, store, r, `${scratch}/chain`, { ...options, noMount: true });
      }
    } catch (err) {
      options.signal?.throwIfAborted();
      // Only bytes that fail (a check, a decompressor that ran and rejected them, zfs refusing
      // the stream) make the chain corrupt; a decompressor that could not start ("Cannot run
      // lz4 …: command not found"), a zfs or an endpoint problem is thrown with its own exit status.
      const badBytes = err instanceof IntegrityError ||
        (err instanceof CommandError && !err.message.startsWith("Cannot run ")) ||
        (err instanceof ZfsError && zfs.saysBadStream(err.stderr));
      if (!badBytes) throw err;
      const chain = new Set([...chains.ancestors(tip)].map((s) => s.name));
      for (const r of results) {
        if (chain.has(r.snapshot)) {
          if (restorable(r)) {
            r.state = "corrupt";
            r.detail = `zfs receive of the chain failed: ${describeError(err)}`;
          }
        }
      }
    } finally {
      if (await zfs.datasetExists(scratch)) await zfs.destroyRecursive(scratch);
    }
  }
}

/** Whether a snapshot passed verification well enough to be received. */
function restorable(r: VerifyResult): boolean {
  return r.state === "ok" || r.state === "repaired" || r.state === "adopted" ||
    r.state === "unverifiable";
}

/**
 * `z3 verify [SNAPSHOT]` for `main.ts`: one line per snapshot (snapshot, state, detail; tabs),
 * or the results as the `--json` document; then fails naming every snapshot corrupt, missing
 * or unprotected.
 */
export const verifyCli: CliCommand = {
  many: true,
  operand: { name: "SNAPSHOT", optional: true },
  start: startVerify,
};

function startVerify(context: CliContext): CliRun {
  const { values, positionals, datasets } = context;
  if (positionals.length > 0 && datasets.length > 1) {
    throw new UsageError(
      `Cannot verify "${positionals[0]}" over ${datasets.length} datasets: name one dataset`,
    );
  }
  return {
    async runDataset(config, store) {
      const results = await verify(config, store, {
        snapshot: positionals[0],
        zfsParent: values.zfs as string | undefined,
        repair: values.repair === true,
        adopt: values.adopt === true,
        signal: context.signal,
        err: context.err,
      });
      context.json.add(results);
      if (!values.json) results.forEach((r) => context.out(verifyLine(r)));
      const bad = results.filter((r) => ["corrupt", "missing", "unprotected"].includes(r.state));
      if (bad.length > 0) {
        throw new IntegrityError(
          `Cannot verify ${bad.length} of ${results.length} snapshot(s): ${
            bad.map((r) => `${printable(r.snapshot)} ${r.state}`).join(", ")
          }`,
        );
      }
      return "verified";
    },
  };
}

/** One verdict of `z3 verify`: snapshot, state, detail; tab-separated. */
export function verifyLine(r: VerifyResult): string {
  return [r.snapshot, r.state, r.detail].map(printable).join("\t");
}
