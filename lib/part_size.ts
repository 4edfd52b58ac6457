/**
 * Pure: how big each part of a multipart upload is. The schedule is deterministic and recorded
 * in the object's metadata, so a reader can find every part boundary again and recompute the
 * multipart ETag from the bytes alone.
 *
 * With no size known the part size doubles every `maxParts / 11` parts (909 of 10,000): eleven
 * groups of parts, the last at 1024 × the base (capped at 5 GiB), so even at the 5 MiB minimum
 * 10,000 parts hold more than S3's 5 TiB object limit.
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's largest object. */
export const MAX_OBJECT_SIZE = 5 * 1024 ** 4;
/** S3's largest part count. */
export const MAX_PARTS = 10_000;

/** A part size schedule. */
export interface PartSchedule {
  /** Size of the first parts, bytes. */
  base: number;
  /** The size doubles after every this many parts; 0 means it never changes. */
  doubleEvery: number;
}

/** Options for {@linkcode planSchedule}. */
export interface ScheduleOptions {
  /** Requested part size. @default {8 MiB} */
  partSize?: number;
  /** Known or estimated stream size; picks a fixed part size that fits in `maxParts`. */
  estimated?: number;
  /** Most parts allowed. @default {10000} */
  maxParts?: number;
  /** Smallest part allowed (tests lower it only against servers that allow it). @default {5 MiB} */
  minPartSize?: number;
}

/** Chooses a schedule: fixed when the size is estimated, growing when it is unknown. */
export function planSchedule(options: ScheduleOptions = {}): PartSchedule {
  const maxParts = options.maxParts ?? MAX_PARTS;
  const minPart = options.minPartSize ?? MIN_PART_SIZE;
  if (!Number.isInteger(maxParts) || maxParts < 1 || maxParts > MAX_PARTS) {
    throw new UsageError(`Cannot use a maximum of ${maxParts} parts: expected 1 to ${MAX_PARTS}`);
  }
  const requested = options.partSize ?? 8 * 1024 * 1024;
  if (!Number.isInteger(requested) || requested < minPart || requested > MAX_PART_SIZE) {
    throw new UsageError(
      `Cannot use part size ${requested}: expected ${minPart} to ${MAX_PART_SIZE} bytes (5M to 5G)`,
    );
  }
  if (options.estimated !== undefined) {
    const e = options.estimated;
    if (!Number.isSafeInteger(e) || e < 0) {
      throw new UsageError(`Cannot use estimated size ${e}: expected a whole number of bytes`);
    }
    if (e > MAX_OBJECT_SIZE) {
      throw new UsageError(`Cannot use estimated size ${e}: S3 objects hold at most 5 TiB`);
    }
    // Leave one part of slack for estimates that come out a little low.
    const fit = Math.ceil(options.estimated / Math.max(1, maxParts - 1));
    const base = Math.min(MAX_PART_SIZE, Math.max(requested, fit));
    return { base, doubleEvery: 0 };
  }
  return { base: requested, doubleEvery: Math.max(1, Math.floor(maxParts / 11)) };
}

/** Size of part `partNumber` (1-based) under `schedule`. */
export function partSizeOf(schedule: PartSchedule, partNumber: number): number {
  if (schedule.doubleEvery === 0) return schedule.base;
  const doublings = Math.floor((partNumber - 1) / schedule.doubleEvery);
  return Math.min(MAX_PART_SIZE, schedule.base * 2 ** Math.min(doublings, 30));
}

/** Metadata keys that record a schedule. */
export const SCHEDULE_KEYS = { base: "z3-part-size", doubleEvery: "z3-part-double-every" } as const;

/** The schedule as object metadata. */
export function scheduleToMetadata(schedule: PartSchedule): Record<string, string> {
  return {
    [SCHEDULE_KEYS.base]: String(schedule.base),
    [SCHEDULE_KEYS.doubleEvery]: String(schedule.doubleEvery),
  };
}

/** Reads a schedule back from metadata; `undefined` if absent or malformed. */
export function scheduleFromMetadata(metadata: Record<string, string>): PartSchedule | undefined {
  // Plain decimal digits only: Number() also reads "", "0x10", "8e6" and " 1000 ".
  const count = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN);
  const base = count(metadata[SCHEDULE_KEYS.base]);
  const doubleEvery = count(metadata[SCHEDULE_KEYS.doubleEvery]);
  if (!Number.isSafeInteger(base) || base < 1) return undefined;
  if (!Number.isSafeInteger(doubleEvery) || doubleEvery < 0) return undefined;
  return { base, doubleEvery };
}
