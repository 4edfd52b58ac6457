/**
 * Reads what the bucket holds for one dataset: lists the keys under `S3_PREFIX + dataset@` and
 * reads each object's metadata with bounded parallelism (a HEAD per object; 1,000 snapshots take
 * a few seconds, not minutes).
 *
 * @module
 */

import { indexRemote, parseRemote } from "../chain/metadata.ts";
import { parseLock } from "../chain/object_lock_policy.ts";
import { withRetry } from "../backend/retry.ts";
import type { S3Store } from "../backend/s3.ts";
import { normalizePrefix } from "../config/prefix.ts";
import type { RemoteSnapshot } from "../chain/types.ts";
import { mapLimit } from "../base/map_limit.ts";

/** HEAD requests in flight at once. */
const HEAD_PARALLEL = 16;

/** The dataset's snapshots in the bucket, by full name. */
export async function loadRemote(
  store: S3Store,
  prefix: string,
  dataset: string,
  options: { signal?: AbortSignal; attempts?: number } = {},
): Promise<Map<string, RemoteSnapshot>> {
  const listPrefix = `${normalizePrefix(prefix)}${dataset}@`;
  const retry = { attempts: options.attempts, signal: options.signal };
  // The whole listing is one retried step: a 503 on any page lists again from the start.
  const listed = await withRetry(
    () => Array.fromAsync(store.list(listPrefix, options.signal)),
    retry,
  );
  const snaps = await mapLimit(listed, HEAD_PARALLEL, async (o) => {
    const info = await withRetry(() => store.head(o.key, options.signal), {
      attempts: options.attempts,
      signal: options.signal,
    });
    if (!info) return undefined; // deleted between list and head
    const snap = parseRemote(
      prefix,
      dataset,
      o.key,
      info.metadata,
      info.size,
      info.lastModified ?? o.lastModified,
    );
    if (snap !== undefined) {
      snap.etag = info.etag;
      snap.versionId = info.versionId;
      snap.lock = parseLock(info.lockHeaders);
    }
    return snap;
  });
  return indexRemote(snaps.filter((s): s is RemoteSnapshot => s !== undefined));
}
