/**
 * Pure: the form of `S3_PREFIX` every key is built from.
 *
 * @module
 */

/** Returns `prefix` ending in exactly one `/`, or `""` when it is empty (or only slashes). */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/\/+$/, "");
  return trimmed === "" ? "" : `${trimmed}/`;
}
