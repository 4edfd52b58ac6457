/**
 * Pure: where a snapshot's object lives in the bucket, `S3_PREFIX` + `dataset@snap`, the key
 * the original Python z3 wrote.
 *
 * @module
 */

import { normalizePrefix } from "../config/prefix.ts";

/** The object key of `snapshotFullName` (`dataset@snap`) under `prefix`. */
export function keyFor(prefix: string, snapshotFullName: string): string {
  return normalizePrefix(prefix) + snapshotFullName;
}
