/**
 * Pure: byte sizes written the way sysadmins write them: `10M`, `1G`, `512k`, `4096`, `1.5G`.
 * Units are binary (K = 1024), as in the original pput.
 *
 * @module
 */

const UNITS: Record<string, number> = { "": 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses a size; throws a plain Error with the reason (callers add context). */
export function parseSize(text: string): number {
  const bytes = sizeValue(text);
  if (!Number.isSafeInteger(bytes)) throw new Error("size too large");
  return bytes;
}

/**
 * The number a size stands for, however large (beyond 2^53 it is not exact); throws only when
 * `text` is not written like a size. For estimates, which may be absurd without being wrong input.
 */
export function sizeValue(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new Error("expected a size like 4096, 10M or 1G");
  return Math.round(Number(m[1]) * UNITS[m[2].toUpperCase()]);
}
