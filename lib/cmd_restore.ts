/**
 * `z3 restore SNAPSHOT` and `z3 get KEY`: walk the chain in the bucket back to a snapshot that
 * exists locally or to a full, check every link before touching ZFS, then feed `zfs receive`
 * object after object, oldest first, each verified against its ETag and size as it streams.
 *
 * @module
 */

import { chainHealth, keyFor, planRestore, type RemoteSnapshot, shortName } from "./chain.ts";
import type { Config } from "./config.ts";
import { decompress } from "./compress.ts";
import { requireDataset } from "./dataset.ts";
import { UsageError } from "./errors.ts";
import { parseSnapshot, validateDataset } from "./names.ts";
import { scheduleFromMetadata } from "./part_size.ts";
import { formatArgv } from "./process.ts";
import { loadRemote } from "./remote.ts";
import { withRetry } from "./retry.ts";
import type { S3Store } from "./s3.ts";
import { verifiability, verifying } from "./verify.ts";
import { parallelDownload } from "./download.ts";
import * as zfs from "./zfs.ts";

/** Options of `z3 restore`. */
export interface RestoreOptions {
  /** Dataset to receive into. @default {the backed-up dataset} */
  target?: string;
  /** `zfs receive -F`. */
  force?: boolean;
  dryRun?: boolean;
  signal?: AbortSignal;
  out: (line: string) => void;
  err: (line: string) => void;
}

/** Restores `snapshot` (`snap` or `dataset@snap`); returns the names received. */
export async function restore(
  config: Config,
  store: S3Store,
  snapshot: string,
  options: RestoreOptions,
): Promise<string[]> {
  const full = snapshot.includes("@") ? snapshot : `${requireDataset(config)}@${snapshot}`;
  const { dataset } = parseSnapshot(full);
  const target = validateDataset(options.target ?? dataset);
  const remote = await loadRemote(store, config.s3Prefix, dataset, {
    signal: options.signal,
    attempts: config.maxRetries + 1,
  });
  const local = (await zfs.datasetExists(target)) ? await zfs.listSnapshots(target) : [];
  const plan = planRestore(
    remote,
    chainHealth(remote),
    full,
    new Map(local.map((s) => [s.snapshot, s.guid])),
  );
  if (plan.steps.length === 0) {
    options.err(`${target}@${shortName(full)} exists locally: nothing to restore`);
    return [];
  }
  if (options.dryRun) {
    for (const { remote: r } of plan.steps) {
      const dec = r.compressor && r.compressor !== "none" ? ` | decompress ${r.compressor}` : "";
      options.out(
        `${r.name}: download s3://${store.bucket}/${r.key}${dec} | ${
          formatArgv(zfs.receiveArgv(target, options.force))
        }`,
      );
    }
    return [];
  }
  const done: string[] = [];
  for (const { remote: r } of plan.steps) {
    options.signal?.throwIfAborted();
    options.err(`${r.name}: receiving into ${target}`);
    await receiveOne(config, store, r, target, options);
    done.push(`${target}@${r.snapshot}`);
  }
  return done;
}

async function receiveOne(
  config: Config,
  store: S3Store,
  r: RemoteSnapshot,
  target: string,
  options: RestoreOptions,
) {
  const stream = await openVerified(store, r.key, config, options);
  const receiver = zfs.receive(target, { force: options.force, signal: options.signal });
  const unpacked = decompress(r.compressor, stream, options.signal);
  try {
    await unpacked.stream.pipeTo(receiver.stdin!, { signal: options.signal });
  } catch (err) {
    receiver.kill();
    await receiver.done.catch(() => {});
    throw err;
  }
  await unpacked.done;
  await receiver.done;
}

/** Downloads `key` as a verified stream (see `verify.ts`). */
export async function openVerified(
  store: S3Store,
  key: string,
  config: Config,
  options: { signal?: AbortSignal; err: (line: string) => void },
): Promise<ReadableStream<Uint8Array>> {
  const retry = { attempts: config.maxRetries + 1, signal: options.signal };
  const info = await withRetry(() => store.head(key, options.signal), retry);
  if (!info) {
    throw new UsageError(`Cannot download "${key}": no such object in bucket "${store.bucket}"`);
  }
  const expected = {
    etag: info.etag,
    size: info.size,
    schedule: scheduleFromMetadata(info.metadata),
  };
  if (verifiability(expected) !== "etag") {
    options.err(
      `warning: ${key} has no recorded part sizes (written by another tool?): checking its size only`,
    );
  }
  const body = parallelDownload(store, key, {
    etag: info.etag,
    size: info.size,
    rangeSize: config.chunkSize,
    concurrency: config.concurrency,
    attempts: retry.attempts,
    signal: options.signal,
  });
  return verifying(body, expected, key);
}

/** `z3 get KEY`: the object's verified bytes to stdout (the key as given, or under S3_PREFIX). */
export async function get(
  config: Config,
  store: S3Store,
  key: string,
  options: { signal?: AbortSignal; err: (line: string) => void },
) {
  const candidates = [key, keyFor(config.s3Prefix, key)];
  for (const k of candidates) {
    if (await store.head(k, options.signal)) {
      const stream = await openVerified(store, k, config, options);
      await stream.pipeTo(Deno.stdout.writable, { signal: options.signal, preventClose: true });
      return;
    }
  }
  throw new UsageError(`Cannot download "${key}": no such object in bucket "${store.bucket}"`);
}
