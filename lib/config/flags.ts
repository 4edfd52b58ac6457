/**
 * Pure: parsed argv → the table's flag values.
 *
 * @module
 */

import { SETTINGS } from "./settings.ts";

/**
 * The table's flag values from parsed argv, by flag name: a switch given is `"true"`, a
 * repeatable flag's values are joined with commas.
 */
export function settingFlags(
  values: Record<string, string | boolean | string[] | undefined>,
): Record<string, string | undefined> {
  const flags: Record<string, string | undefined> = {};
  for (const s of SETTINGS) {
    if (!s.flag) continue;
    const v = values[s.flag];
    flags[s.flag] = v === undefined || v === false
      ? undefined
      : Array.isArray(v)
      ? v.join(",")
      : String(v);
  }
  return flags;
}
