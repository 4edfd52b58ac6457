/**
 * Prune in a versioned (Object Lock) bucket. What is locked stays: the plan keeps every object
 * whose retention has not ended ("locked until DATE"), and whatever it builds on. An object to
 * delete goes for good, version by version: a plain DeleteObject would only add a delete marker
 * and keep every byte. The check is the server's, too: a version it refuses to delete (403) is
 * kept and said so, never the end of the prune.
 *
 * Noncurrent versions of a key (an earlier upload of it, a record written again) are deleted
 * with it; one still locked stays, hidden under a delete marker so that it can never become the
 * key's current version again, until a lifecycle rule (README) or the bucket's owner removes it.
 *
 * @module
 */

import { describeError } from "../base/errors.ts";
import { isLocked } from "../chain/object_lock_policy.ts";
import type { KeepReason } from "../chain/retention.ts";
import { withRetry } from "../backend/retry.ts";
import { S3RequestError, type S3Store } from "../backend/s3.ts";
import type { RemoteSnapshot } from "../chain/types.ts";

/** The objects Object Lock keeps at `now`, with the reason prune shows. */
export function heldByLock(
  remote: ReadonlyMap<string, RemoteSnapshot>,
  now: Date,
): Map<string, KeepReason> {
  const held = new Map<string, KeepReason>();
  for (const snap of remote.values()) {
    const state = snap.lock;
    if (state === undefined || !isLocked(state, now)) continue;
    if (state.kind === "locked") held.set(snap.name, `locked until ${state.until.toISOString()}`);
    if (state.kind === "unreadable") held.set(snap.name, `lock unreadable: ${state.detail}`);
  }
  return held;
}

/** What deleting one key's versions did. */
export interface VersionsDeleted {
  /** Why the current version was not deleted (it is kept); absent when it was. */
  refused?: string;
  /** Noncurrent versions the server refused to delete (locked), left under a delete marker. */
  stuck: number;
}

/** Attempts and signal. */
export interface DeleteOptions {
  attempts: number;
  signal?: AbortSignal;
}

function refusal(err: unknown): string | undefined {
  return err instanceof S3RequestError && err.status === 403 ? describeError(err) : undefined;
}

/**
 * Deletes every version of `key`: the noncurrent ones first, then the current one, which must
 * be `current` when given (the version prune decided on; another one means the key changed
 * since it was listed, and nothing is deleted). A refusal (403) of the current version keeps it;
 * other errors are thrown.
 */
export async function deleteVersions(
  store: S3Store,
  key: string,
  current: string | undefined,
  options: DeleteOptions,
): Promise<VersionsDeleted> {
  const retry = { attempts: options.attempts, signal: options.signal };
  const versions = await withRetry(() => store.versions(key, options.signal), retry);
  const latest = versions.find((v) => v.isLatest);
  if (current !== undefined && (latest === undefined || latest.versionId !== current)) {
    return { refused: `it changed since it was listed (now ${describeVersion(latest)})`, stuck: 0 };
  }
  const remove = async (versionId: string): Promise<string | undefined> => {
    try {
      await withRetry(() => store.deleteVersion(key, versionId, options.signal), retry);
      return undefined;
    } catch (err) {
      const why = refusal(err);
      if (why === undefined) throw err;
      return why;
    }
  };
  let stuck = 0;
  for (const v of versions) {
    if (v !== latest && (await remove(v.versionId)) !== undefined) stuck++;
  }
  if (latest !== undefined) {
    const why = await remove(latest.versionId);
    if (why !== undefined) return { refused: why, stuck };
  }
  if (stuck > 0) await withRetry(() => store.delete(key), retry);
  return { stuck };
}

function describeVersion(v: { versionId: string; deleteMarker: boolean } | undefined): string {
  if (v === undefined) return "no version";
  return v.deleteMarker ? "a delete marker" : `version "${v.versionId}"`;
}
