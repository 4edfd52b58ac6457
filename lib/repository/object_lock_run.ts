/**
 * Object Lock in a backup run: refuse a bucket without Object Lock before anything is uploaded,
 * read every new object's retention back (and set it where the server ignored the request's
 * headers: Ceph 16 drops them on CreateMultipartUpload, measured), and extend the retention of
 * every ancestor the new objects build on, so a chain is never cut before its newest object
 * may go; and `z3 verify`'s check that every retention is what its chain needs. The rules
 * themselves are pure, in `chain/object_lock_policy.ts`.
 *
 * @module
 */

import type { Chains } from "../chain/walk.ts";
import { quote } from "../chain/walk.ts";
import { checkKey } from "./check_records.ts";
import type { Config } from "../config/config.ts";
import { describeError, EXIT, S3Error, UsageError, Z3Error } from "../base/errors.ts";
import {
  chainNeeds,
  describeLock,
  extension,
  lockedUntil,
  parseLock,
  type RunRetention,
  runRetention,
} from "../chain/object_lock_policy.ts";
import { withRetry } from "../backend/retry.ts";
import type { Retention, S3Store } from "../backend/s3.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import type { LockState } from "../chain/types.ts";

/** Attempts and signal for the requests here. */
export interface LockRequestOptions {
  attempts: number;
  signal?: AbortSignal;
}

/**
 * The retention this run gives new objects, or `undefined` when `OBJECT_LOCK_DAYS` is 0 (then
 * no request is made). Reads the bucket's Object Lock configuration once.
 *
 * @throws {UsageError} when the bucket does not have Object Lock enabled (exit 2), before
 * anything is uploaded.
 */
export async function runLock(
  config: Config,
  store: S3Store,
  options: LockRequestOptions,
): Promise<RunRetention | undefined> {
  if (config.objectLockDays === 0) return undefined;
  const bucket = await withRetry(() => store.lockConfiguration(options.signal), options);
  if (!bucket.enabled) {
    throw new UsageError(
      `Cannot lock backups in bucket "${store.bucket}": Object Lock is not enabled on it ` +
        `(use a bucket created with Object Lock enabled, or set OBJECT_LOCK_DAYS=0)`,
    );
  }
  return runRetention(config.objectLockDays, config.objectLockMode, {
    now: new Date(),
    rule: bucket.rule,
  });
}

async function lockOf(store: S3Store, key: string, options: LockRequestOptions) {
  const info = await withRetry(() => store.head(key, options.signal), options);
  if (!info) throw new S3Error(`Cannot lock ${quote(key)}: it is not in the bucket`);
  return { versionId: info.versionId, state: parseLock(info.lockHeaders) };
}

/**
 * Makes sure `key` is locked at least until `retention.until`: reads its lock back (HeadObject),
 * sets the retention when it is shorter or absent, and reads it back again.
 *
 * @throws {S3Error} when the bucket still reports a shorter lock.
 */
export async function lockObject(
  store: S3Store,
  key: string,
  retention: Retention,
  options: LockRequestOptions,
): Promise<void> {
  const before = await lockOf(store, key, options);
  const wanted = extension(before.state, retention.until, retention.mode, new Date());
  if (wanted === undefined) return;
  await withRetry(
    () => store.putRetention(key, before.versionId, wanted, options.signal),
    options,
  );
  const after = await lockOf(store, key, options);
  if (extension(after.state, retention.until, retention.mode, new Date()) !== undefined) {
    throw new S3Error(
      `Cannot lock ${quote(key)}: after setting ${retention.mode} until ` +
        `${retention.until.toISOString()} the bucket reports ${describeLock(after.state)}`,
    );
  }
}

/** An ancestor whose retention ends before the new objects' and what to set. */
export interface AncestorExtension {
  snapshot: RemoteSnapshot;
  retention: Retention;
}

/**
 * The objects `base` builds on (itself included, down to its full) whose retention ends before
 * `retention.until` (or that have none), with the retention each gets.
 */
export function ancestorsToExtend(
  chains: Chains,
  base: string,
  retention: Retention,
  now: Date,
): AncestorExtension[] {
  const out: AncestorExtension[] = [];
  for (const snapshot of chains.ancestors(base)) {
    const state: LockState = snapshot.lock ?? { kind: "none" };
    const wanted = extension(state, retention.until, retention.mode, now);
    if (wanted !== undefined) out.push({ snapshot, retention: wanted });
  }
  return out;
}

/**
 * Sets each ancestor's retention: its object's (the version HeadObject saw), then its check
 * record's, read first (HeadObject) since a record written again later may be locked longer
 * and a retention can only grow. At most two PutObjectRetention requests per ancestor (one for
 * objects of the original z3, which have no record); returns how many were sent.
 */
export async function extendAncestors(
  store: S3Store,
  config: Config,
  ancestors: AncestorExtension[],
  options: LockRequestOptions,
): Promise<number> {
  let requests = 0;
  for (const { snapshot, retention } of ancestors) {
    options.signal?.throwIfAborted();
    await withRetry(
      () => store.putRetention(snapshot.key, snapshot.versionId, retention, options.signal),
      options,
    );
    requests++;
    if (snapshot.metadata["z3-version"] === undefined) continue;
    const key = checkKey(config.s3Prefix, snapshot.name);
    const record = await withRetry(() => store.head(key, options.signal), options);
    if (!record) continue; // a missing record is verify's and restore's to report
    const wanted = extension(
      parseLock(record.lockHeaders),
      retention.until,
      retention.mode,
      new Date(),
    );
    if (wanted === undefined) continue;
    await withRetry(
      () => store.putRetention(key, record.versionId, wanted, options.signal),
      options,
    );
    requests++;
  }
  return requests;
}

/** The dry-run line: what lock new objects get and how many ancestors would be extended. */
export function lockPlanLine(retention: Retention, ancestors: number): string {
  return `object lock: ${retention.mode} until ${retention.until.toISOString()} on each new ` +
    `object and its check record; ${ancestors} ancestor(s) to extend`;
}

/**
 * `z3 verify`'s Object Lock check, for each of `names` (objects in `chains`): why its retention,
 * or its check record's, ends before what its chain needs (the latest retention of any object
 * built on it, `chainNeeds`), or is unreadable. Reads nothing for objects without locks; reads a
 * record's lock (HeadObject) only when its object is locked or needed.
 */
export async function retentionFlaws(
  store: S3Store,
  config: Config,
  chains: Chains,
  names: string[],
  options: LockRequestOptions,
): Promise<Map<string, string>> {
  const now = new Date();
  const stateOf = (snap: RemoteSnapshot): LockState => snap.lock ?? { kind: "none" };
  const needs = chainNeeds(chains, stateOf, now);
  const flaws = new Map<string, string>();
  for (const name of names) {
    const snap = chains.remote.get(name);
    if (snap === undefined) continue;
    const own = stateOf(snap);
    const need = needs.get(name);
    if (own.kind === "unreadable") {
      flaws.set(name, `its retention cannot be read: ${own.detail}`);
      continue;
    }
    const until = lockedUntil(own)?.getTime() ?? 0;
    if (need && until < need.until.getTime()) {
      flaws.set(
        name,
        `its retention (${describeLock(own)}) ends before that of ${quote(need.by)} ` +
          `(${need.until.toISOString()}), which builds on it: the chain can be cut then; the ` +
          `next z3 backup with OBJECT_LOCK_DAYS extends it`,
      );
      continue;
    }
    const required = Math.max(until, need?.until.getTime() ?? 0);
    if (required <= now.getTime() || snap.metadata["z3-version"] === undefined) continue;
    const key = checkKey(config.s3Prefix, name);
    const record = await withRetry(() => store.head(key, options.signal), options);
    if (!record) continue; // reported by the object's own check
    const recordLock = parseLock(record.lockHeaders);
    if ((lockedUntil(recordLock)?.getTime() ?? 0) < required) {
      flaws.set(
        name,
        `its check record's retention (${describeLock(recordLock)}) ends before ` +
          `${new Date(required).toISOString()}, which the object and its chain need`,
      );
    }
  }
  return flaws;
}

/**
 * Locks the uploaded `key` as `retention` asks (see {@linkcode lockObject}); when that fails,
 * deletes the version just written, so that no unlocked object stays behind looking like a
 * success. The error names what became of the object.
 */
export async function lockOrDelete(
  store: S3Store,
  key: string,
  retention: Retention,
  options: LockRequestOptions,
): Promise<void> {
  try {
    await lockObject(store, key, retention, options);
  } catch (err) {
    if (options.signal?.aborted) throw err;
    let fate: string;
    try {
      const info = await store.head(key, options.signal);
      if (!info?.versionId) throw new Error("the bucket names no version of it");
      await store.deleteVersion(key, info.versionId, options.signal);
      fate = "the object was deleted";
    } catch (e) {
      fate = `the object is left in the bucket (deleting it failed: ${describeError(e)})`;
    }
    const code = err instanceof Z3Error ? err.exitCode : EXIT.s3;
    throw new Z3Error(`${describeError(err)}; ${fate}`, code, { cause: err });
  }
}
