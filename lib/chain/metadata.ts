/**
 * Pure: one listed object → a {@linkcode RemoteSnapshot}, from its key and metadata. No I/O;
 * callers list the bucket and feed the results in.
 *
 * Reads buckets written by the original Python z3: an object's key is `S3_PREFIX` +
 * `dataset@snap`; its metadata says `isfull=true` (old objects: `is_full`) or names its
 * `parent` as `dataset@snap`, and may carry `compressor` and `size` (an estimate, in bytes).
 * Objects written by this z3 also record `z3-guid`, `z3-parent-guid` and `z3-created`; where
 * present they are checked against the pool's GUIDs, where absent matching is by name alone.
 *
 * @module
 */

import { normalizePrefix } from "../config/prefix.ts";
import type { RemoteSnapshot } from "./types.ts";

/** Metadata keys this module reads (all lower case, as S3 returns them). */
export const META_KEYS = {
  isFull: "isfull",
  isFullLegacy: "is_full",
  parent: "parent",
  compressor: "compressor",
  size: "size",
  guid: "z3-guid",
  parentGuid: "z3-parent-guid",
  created: "z3-created",
} as const;

const DECIMAL = /^[0-9]+$/;

function decimal(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed !== undefined && DECIMAL.test(trimmed) ? trimmed : undefined;
}

function safeNumber(value: string | undefined): number | undefined {
  const text = decimal(value);
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

function isTrue(value: string | undefined): boolean {
  return value?.trim().toLowerCase() === "true";
}

/** What an object's metadata says about its place in a chain (the part a check record covers). */
export interface Shape {
  /** True for a full stream. */
  isFull: boolean;
  /** For an incremental: its parent, `dataset@snap`, when recorded. */
  parent?: string;
  /** The snapshot's GUID (decimal), when recorded. */
  guid?: string;
  /** For an incremental: its parent's GUID (decimal), when recorded. */
  parentGuid?: string;
}

/** Reads the chain's shape from metadata (keys lower-cased); malformed GUIDs count as absent. */
export function shapeOf(meta: Record<string, string>): Shape {
  const isFull = isTrue(meta[META_KEYS.isFull]) || isTrue(meta[META_KEYS.isFullLegacy]);
  const shape: Shape = { isFull };
  const parent = isFull ? undefined : meta[META_KEYS.parent]?.trim() || undefined;
  if (parent !== undefined) shape.parent = parent;
  const guid = decimal(meta[META_KEYS.guid]);
  if (guid !== undefined) shape.guid = guid;
  const parentGuid = isFull ? undefined : decimal(meta[META_KEYS.parentGuid]);
  if (parentGuid !== undefined) shape.parentGuid = parentGuid;
  return shape;
}

/**
 * Parses one listed object of `dataset`. Returns `undefined` for keys that are not
 * `prefix + dataset@snap` (other datasets, child datasets, stray objects). Malformed optional
 * metadata (`size`, GUIDs, `z3-created`) is treated as absent.
 */
export function parseRemote(
  prefix: string,
  dataset: string,
  key: string,
  metadata: Record<string, string>,
  objectSize: number,
  lastModified?: Date,
): RemoteSnapshot | undefined {
  const head = normalizePrefix(prefix) + dataset + "@";
  if (!key.startsWith(head)) return undefined;
  const snapshot = key.slice(head.length);
  if (snapshot === "" || snapshot.includes("@") || snapshot.includes("/")) return undefined;
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) meta[k.toLowerCase()] = v;
  const remote: RemoteSnapshot = {
    name: `${dataset}@${snapshot}`,
    snapshot,
    key,
    ...shapeOf(meta),
    objectSize,
    metadata: meta,
  };
  const created = safeNumber(meta[META_KEYS.created]);
  if (created !== undefined) remote.created = created;
  const compressor = meta[META_KEYS.compressor]?.trim();
  if (compressor) remote.compressor = compressor;
  const size = safeNumber(meta[META_KEYS.size]);
  if (size !== undefined) remote.size = size;
  if (lastModified !== undefined) remote.lastModified = lastModified;
  return remote;
}

/** Indexes parsed objects by full name, the shape the other functions take. */
export function indexRemote(snapshots: Iterable<RemoteSnapshot>): Map<string, RemoteSnapshot> {
  const map = new Map<string, RemoteSnapshot>();
  for (const snap of snapshots) map.set(snap.name, snap);
  return map;
}
