/**
 * Pure: `--help`'s settings section, rendered from the table.
 *
 * @module
 */

import { SETTINGS } from "./settings.ts";

/** Renders `--help`'s settings section from the table. */
export function settingsHelp(): string {
  return SETTINGS.map((s) => {
    const flag = s.flag ? `--${s.flag}` : "(env/file only)";
    const def = s.default !== undefined ? ` [default: ${s.default === "" ? '""' : s.default}]` : "";
    return `  ${s.key.padEnd(17)} ${flag.padEnd(20)} ${s.help}${def}`;
  }).join("\n");
}
