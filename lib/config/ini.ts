/**
 * Pure: parses the INI dialect of z3's config file as the original z3 read it with Python 2's
 * `ConfigParser` (`[section]`, `KEY=value`, whole-line `#`/`;` comments), keeping the line of
 * every value so errors can name it. Stands in for `@std/ini`, which cannot be fetched here (no
 * JSR). As in `ConfigParser` (Python 2.7 `Lib/ConfigParser.py`, `_read`):
 * - the first `;` of a value starts a comment when whitespace precedes it
 *   (`S3_PREFIX=z3-backup/   ; the prefix` is `z3-backup/`); a `#` inside a value is kept;
 * - a value of `""` is empty; a key given twice in a section keeps the later value (here with a
 *   warning naming both lines).
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";

/** One value and where it came from. */
export interface IniValue {
  value: string;
  line: number;
}

/** Section name → key → value. Keys are upper-cased, as z3's keys are. */
export type IniFile = Map<string, Map<string, IniValue>>;

/** Options for {@linkcode parseIni}. */
export interface ParseIniOptions {
  /** Called with each warning (a key given twice in one section). */
  warn?: (message: string) => void;
}

/** The value part of `KEY=value` without its inline `;` comment (see module doc). */
function stripComment(value: string): string {
  const pos = value.indexOf(";");
  return pos > 0 && /\s/.test(value[pos - 1]) ? value.slice(0, pos) : value;
}

/** Parses `text` (read from `path`, used in messages). */
export function parseIni(text: string, path: string, options: ParseIniOptions = {}): IniFile {
  const sections: IniFile = new Map();
  let current: Map<string, IniValue> | undefined;
  let currentName = "";
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const where = `${path}:${i + 1}`;
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const section = /^\[([^\]]+)\]$/.exec(line);
    if (section) {
      currentName = section[1].trim();
      current = sections.get(currentName) ?? new Map();
      sections.set(currentName, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (eq <= 0) throw new UsageError(`Cannot parse ${where}: expected KEY=value or [section]`);
    if (!current) throw new UsageError(`Cannot parse ${where}: a value before any [section]`);
    const key = line.slice(0, eq).trim().toUpperCase();
    let value = stripComment(line.slice(eq + 1)).trim();
    if (/^(["']).*\1$/.test(value) && value.length >= 2) value = value.slice(1, -1);
    const before = current.get(key);
    if (before) {
      options.warn?.(
        `warning: ${key} is set twice in [${currentName}] of ${path}, on lines ${before.line} ` +
          `and ${i + 1}: line ${i + 1} is used`,
      );
    }
    current.set(key, { value, line: i + 1 });
  }
  return sections;
}
