/**
 * Pure: where a snapshot's object lives in the bucket, `S3_PREFIX` + `dataset@snap`, the key
 * the original Python z3 wrote.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { normalizePrefix } from "../config/prefix.ts";

/** S3's limit on an object key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * The object key of `snapshotFullName` (`dataset@snap`) under `prefix`.
 *
 * @throws {UsageError} when the key would be longer than {@linkcode MAX_KEY_BYTES}, naming
 * `S3_PREFIX` and the limit: S3 would refuse it, after requests z3 need not make.
 */
export function keyFor(prefix: string, snapshotFullName: string): string {
  const key = normalizePrefix(prefix) + snapshotFullName;
  const bytes = new TextEncoder().encode(key).length;
  if (bytes > MAX_KEY_BYTES) {
    const start = (text: string) => text.length > 60 ? `${text.slice(0, 60)}…` : text;
    throw new UsageError(
      `Cannot use S3_PREFIX "${start(normalizePrefix(prefix))}" for "${
        start(snapshotFullName)
      }": the key would be ${bytes} bytes, over S3's limit of ${MAX_KEY_BYTES} bytes for a key`,
    );
  }
  return key;
}
