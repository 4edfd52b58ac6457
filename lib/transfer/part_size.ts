/**
 * Pure: how big each part of a multipart upload is. The schedule is deterministic and recorded
 * in the object's metadata, so a reader can find every part boundary again and recompute the
 * multipart ETag from the bytes alone.
 *
 * A schedule is `growAfter` parts of `base` bytes, then parts that start at `base` and double
 * after every `doubleEvery` parts, capped at 5 GiB (`doubleEvery` 0: all parts are `base`).
 *
 * - With no size known: `base` is the requested part size, no fixed head, doubling every
 *   `maxParts / 11` parts (909 of 10,000): eleven groups, the last at 1024 × the base, so even at
 *   the 5 MiB minimum 10,000 parts hold more than S3's 5 TiB object limit.
 * - With an estimate: the head of `growAfter` parts of `base` holds the estimate plus 10 %
 *   (OpenZFS's estimates can be that much low), and the parts after it double every
 *   `maxParts / 50` parts (200 of 10,000). The head is as long as it can be while the whole
 *   schedule still holds what the schedule without an estimate holds (with 10,000 parts: S3's
 *   5 TiB limit). So a low estimate costs larger parts past it, never a failed upload.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";

/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** S3's largest object. */
export const MAX_OBJECT_SIZE = 5 * 1024 ** 4;
/** S3's largest part count. */
export const MAX_PARTS = 10_000;

/** How much more than its estimate the head of a schedule holds (a fraction). */
export const ESTIMATE_SLACK = 0.1;

/** A part size schedule. */
export interface PartSchedule {
  /** Size of the first parts, bytes. */
  base: number;
  /** The size doubles after every this many parts (past `growAfter`); 0 means it never changes. */
  doubleEvery: number;
  /** Parts of `base` bytes before the doubling starts (absent in older objects: 0). */
  growAfter?: number;
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

/**
 * An estimate of a stream's size that a schedule can use, or `undefined` for none: anything that
 * is not a whole number of bytes from 0 to S3's 5 TiB object limit (OpenZFS has printed
 * 18446744073614344448) is treated as unknown rather than refused.
 */
export function usableEstimate(estimated: number | undefined): number | undefined {
  if (estimated === undefined || !Number.isSafeInteger(estimated)) return undefined;
  return estimated >= 0 && estimated <= MAX_OBJECT_SIZE ? estimated : undefined;
}

/**
 * Chooses a schedule (see the module doc): growing from the requested part size when the size
 * is unknown, a head sized from the estimate then growing when one is given. An estimate that
 * {@linkcode usableEstimate} refuses counts as unknown.
 */
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
  const unknown = { base: requested, doubleEvery: Math.max(1, Math.floor(maxParts / 11)) };
  const estimated = usableEstimate(options.estimated);
  if (estimated === undefined) return unknown;
  // What the schedule must hold whatever the estimate said: as much as without an estimate.
  const needed = Math.min(MAX_OBJECT_SIZE, capacity(unknown, maxParts));
  const doubleEvery = Math.max(1, Math.floor(maxParts / 50));
  const held = estimated * (1 + ESTIMATE_SLACK);
  for (let head = maxParts; head > 0; head--) {
    const base = Math.min(MAX_PART_SIZE, Math.max(requested, Math.ceil(held / head)));
    const schedule = { base, doubleEvery, growAfter: head };
    if (capacity(schedule, maxParts) >= needed) return schedule;
  }
  return { base: requested, doubleEvery, growAfter: 0 };
}

/** Size of part `partNumber` (1-based) under `schedule`. */
export function partSizeOf(schedule: PartSchedule, partNumber: number): number {
  if (schedule.doubleEvery === 0) return schedule.base;
  const past = Math.max(0, partNumber - 1 - (schedule.growAfter ?? 0));
  const doublings = Math.floor(past / schedule.doubleEvery);
  return Math.min(MAX_PART_SIZE, schedule.base * 2 ** Math.min(doublings, 30));
}

/** Bytes that the first `parts` parts of `schedule` hold together. */
export function capacity(schedule: PartSchedule, parts: number): number {
  if (schedule.doubleEvery === 0) return schedule.base * parts;
  const head = Math.min(parts, schedule.growAfter ?? 0);
  let total = head * schedule.base;
  // Past the head, whole groups of `doubleEvery` parts share one size.
  for (let n = head + 1; n <= parts; n += schedule.doubleEvery) {
    total += partSizeOf(schedule, n) * Math.min(schedule.doubleEvery, parts - n + 1);
  }
  return total;
}

/**
 * The part sizes that the first `parts` parts of `schedule` go through, in order, each with the
 * stream size up to which it is the largest part (what one part buffer holds, and so memory).
 */
export function sizeSteps(schedule: PartSchedule, parts: number): { size: number; upTo: number }[] {
  const steps: { size: number; upTo: number }[] = [];
  let upTo = 0;
  for (let n = 1; n <= parts; n++) {
    const size = partSizeOf(schedule, n);
    upTo += size;
    if (steps.at(-1)?.size === size) steps.at(-1)!.upTo = upTo;
    else steps.push({ size, upTo });
  }
  return steps;
}

/** Metadata keys that record a schedule. */
export const SCHEDULE_KEYS = {
  base: "z3-part-size",
  doubleEvery: "z3-part-double-every",
  growAfter: "z3-part-grow-after",
} as const;

/** The schedule as object metadata (`z3-part-grow-after` only when there is a head). */
export function scheduleToMetadata(schedule: PartSchedule): Record<string, string> {
  return {
    [SCHEDULE_KEYS.base]: String(schedule.base),
    [SCHEDULE_KEYS.doubleEvery]: String(schedule.doubleEvery),
    ...(schedule.growAfter ? { [SCHEDULE_KEYS.growAfter]: String(schedule.growAfter) } : {}),
  };
}

/**
 * Reads a schedule back from metadata; `undefined` if absent or malformed. Objects written before
 * `z3-part-grow-after` existed have no head (fixed, or doubling from the first part).
 */
export function scheduleFromMetadata(metadata: Record<string, string>): PartSchedule | undefined {
  // Plain decimal digits only: Number() also reads "", "0x10", "8e6" and " 1000 ".
  const count = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : NaN);
  const base = count(metadata[SCHEDULE_KEYS.base]);
  const doubleEvery = count(metadata[SCHEDULE_KEYS.doubleEvery]);
  if (!Number.isSafeInteger(base) || base < 1) return undefined;
  if (!Number.isSafeInteger(doubleEvery) || doubleEvery < 0) return undefined;
  const head = metadata[SCHEDULE_KEYS.growAfter];
  if (head === undefined) return { base, doubleEvery };
  const growAfter = count(head);
  if (!Number.isSafeInteger(growAfter) || growAfter < 1) return undefined;
  return { base, doubleEvery, growAfter };
}
