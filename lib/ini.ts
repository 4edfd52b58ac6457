/**
 * Pure: parses the INI dialect of z3's config file (`[section]`, `KEY=value`, `#`/`;` comments),
 * keeping the line of every value so errors can name it. Stands in for `@std/ini`, which cannot
 * be fetched here (no JSR).
 *
 * @module
 */

import { UsageError } from "./errors.ts";

/** One value and where it came from. */
export interface IniValue {
  value: string;
  line: number;
}

/** Section name → key → value. Keys are upper-cased, as z3's keys are. */
export type IniFile = Map<string, Map<string, IniValue>>;

/** Parses `text` (read from `path`, used in messages). */
export function parseIni(text: string, path: string): IniFile {
  const sections: IniFile = new Map();
  let current: Map<string, IniValue> | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const where = `${path}:${i + 1}`;
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      const name = section[1].trim();
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot parse ${where}: expected KEY=value or [section]`);
    if (!current) throw new UsageError(`Cannot parse ${where}: a value before any [section]`);
    const key = line.slice(0, eq).trim().toUpperCase();
    let value = line.slice(eq + 1).trim();
    if (/^(["']).*\1$/.test(value) && value.length >= 2) value = value.slice(1, -1);
    current.set(key, { value, line: i + 1 });
  }
  return sections;
}
