/**
 * Pure: the shapes the chain decisions work on, a snapshot as the pool knows it and as the
 * bucket holds it, with no code. Kept apart so that every module of chain/ and zfs/ can name them
 * without importing the decisions.
 *
 * @module
 */

import type { Retention } from "../backend/s3.ts";

/** A snapshot as the local pool knows it. */
export interface LocalSnapshot {
  /** Full name, `pool/fs@snap`. */
  name: string;
  /** The short name after `@`. */
  snapshot: string;
  /** ZFS GUID as a decimal string (too large for a JS number). */
  guid: string;
  /** Creation time, seconds since the epoch (1 s resolution: not an order, see `createtxg`). */
  creation: number;
  /** The transaction group the snapshot was created in: zfs's own order of snapshots. */
  createtxg: number;
}

/** One snapshot stored as an object in the bucket. */
export interface RemoteSnapshot {
  /** Full name, `dataset@snap`. */
  name: string;
  /** The short name after `@`. */
  snapshot: string;
  /** The object key (prefix + name). */
  key: string;
  /** True for a full stream, false for an incremental one. */
  isFull: boolean;
  /** Full name of the parent of an incremental; undefined for a full or when not recorded. */
  parent?: string;
  /** ZFS GUID of the snapshot (decimal), when recorded. */
  guid?: string;
  /** ZFS GUID of the parent snapshot (decimal), when recorded. */
  parentGuid?: string;
  /** Snapshot creation time, seconds since the epoch, when recorded. */
  created?: number;
  /** Name of the compressor the stream went through (`pigz1`, …), if any. */
  compressor?: string;
  /** Estimated size of the uncompressed stream in bytes, when recorded and well formed. */
  size?: number;
  /** Size of the object itself in bytes. */
  objectSize: number;
  /** The object's ETag without quotes, when the caller read it (HeadObject). */
  etag?: string;
  /** When the object was written, if the listing says. */
  lastModified?: Date;
  /** All metadata, keys lower-cased. */
  metadata: Record<string, string>;
  /** The version HeadObject saw, in a versioned bucket (Object Lock buckets are). */
  versionId?: string;
  /** Its Object Lock retention as HeadObject read it (`object_lock_policy.ts`); absent: not read. */
  lock?: LockState;
}

/** The two Object Lock modes. */
export type LockMode = Retention["mode"];

/** An object's lock as read back: none, a parsed retention, or headers that do not parse. */
export type LockState =
  | { kind: "none" }
  | { kind: "locked"; mode: LockMode; until: Date }
  | { kind: "unreadable"; detail: string };
