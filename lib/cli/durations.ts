/**
 * Pure: durations as sysadmins write them (`30m`, `12h`, `1d`) and ages as people read them
 * (`3d4h`).
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/**
 * Parses a duration: a whole number with a unit, `30s`, `30m`, `12h`, `1d`, `2w`, or several
 * (`1d12h`); a bare `0` means no age at all. Throws {@linkcode UsageError} naming the value.
 */
export function parseDuration(text: string, what = "--max-age"): number {
  const t = text.trim().toLowerCase();
  if (t === "0") return 0;
  if (!/^(\d+[smhdw])+$/.test(t)) {
    throw new UsageError(
      `Cannot parse ${what} "${text}": expected a duration like 30m, 12h, 1d or 0`,
    );
  }
  let ms = 0;
  for (const [, n, unit] of t.matchAll(/(\d+)([smhdw])/g)) ms += Number(n) * UNIT_MS[unit];
  if (!Number.isSafeInteger(ms)) throw new UsageError(`Cannot parse ${what} "${text}": too long`);
  return ms;
}

/** Renders an age for people: `3d4h`, `5h12m`, `7m3s`, `42s`. */
export function formatAge(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts: [number, string][] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3600], ["m", 60], ["s", 1]] as const) {
    parts.push([Math.floor(s / size), unit]);
    s %= size;
  }
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return "0s";
  return parts.slice(first, first + 2).filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join(
    "",
  );
}
