/**
 * What the CLI tests assert about a finished z3 run: success with its stdout lines, or a failure
 * with the documented exit code, nothing on stdout, and exactly one `z3:` error line, the last on
 * stderr (progress lines may come before it).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { CliResult } from "./cli.ts";

/** Asserts exit 0 and returns stdout's non-empty lines. */
export function ok(result: CliResult): string[] {
  assert.deepEqual(result.code, 0, `exit status; stderr: ${result.stderr}`);
  return result.stdout.trimEnd().split("\n").filter((l) => l !== "");
}

/**
 * Asserts a failure (see module doc) whose error line, prefixed `program: ` (z3 or pput), matches
 * `pattern`; returns that line.
 */
export function failure(
  result: CliResult,
  code: number | number[],
  pattern: RegExp,
  program = "z3",
): string {
  const codes = Array.isArray(code) ? code : [code];
  assert.ok(
    codes.includes(result.code),
    `exit ${result.code}, expected ${codes}: ${result.stderr}`,
  );
  assert.deepEqual(result.signal, null, "z3 exits by itself");
  assert.deepEqual(result.stdout, "", "a failed run prints nothing on stdout");
  const lines = result.stderr.trimEnd().split("\n");
  const errors = lines.filter((l) => l.startsWith(`${program}: `));
  assert.deepEqual(errors.length, 1, `expected one ${program}: error line, got: ${result.stderr}`);
  assert.deepEqual(lines.at(-1), errors[0], "the error is the last line on stderr");
  assert.match(errors[0], pattern);
  return errors[0];
}
