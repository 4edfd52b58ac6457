/**
 * Pure validation of ZFS dataset and snapshot names and of object keys derived from them.
 * Every name that reaches a `zfs` argv passes through here first, so that no value can be taken
 * for an option (a leading `-`) or carry characters ZFS would refuse. Refused values are shown
 * JSON-quoted, so a newline or a quote in them stays visible.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";

/** Characters ZFS accepts in a name component (as of OpenZFS 2; zfs-fuse is stricter). */
const COMPONENT = /^[A-Za-z0-9_.: -]+$/;

function validComponent(part: string): boolean {
  return part !== "" && COMPONENT.test(part) && part !== "." && part !== "..";
}

function checkComponent(kind: string, whole: string, part: string): void {
  if (!validComponent(part)) {
    throw new UsageError(
      `Cannot use ${kind} ${
        JSON.stringify(whole)
      }: ZFS names use letters, digits and _ - : . or space`,
    );
  }
}

/** Throws a {@linkcode UsageError} unless `name` is a valid dataset name like `pool/fs`. */
export function validateDataset(name: string): string {
  if (name.startsWith("-") || name.startsWith("/") || name.endsWith("/")) {
    throw new UsageError(
      `Cannot use dataset ${JSON.stringify(name)}: expected a name like pool/fs`,
    );
  }
  for (const part of name.split("/")) checkComponent("dataset", name, part);
  return name;
}

/** Throws unless `name` is a valid short snapshot name (the part after `@`). */
export function validateSnapshotName(name: string): string {
  if (name.startsWith("-")) {
    throw new UsageError(
      `Cannot use snapshot ${JSON.stringify(name)}: a name may not start with -`,
    );
  }
  checkComponent("snapshot", name, name);
  return name;
}

/**
 * Why ZFS would refuse `name` as a short snapshot name, or `undefined` when it is valid. For
 * names read from the bucket, which is untrusted input: such an object is no snapshot of ours.
 */
export function snapshotNameProblem(name: string): string | undefined {
  if (name.startsWith("-")) return "a snapshot name may not start with -";
  if (!validComponent(name)) return "ZFS names use letters, digits and _ - : . or space";
  return undefined;
}

// C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the backslash itself.
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\\\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
const SHORT_ESCAPES: Record<string, string> = {
  "\\": "\\\\",
  "\n": "\\n",
  "\t": "\\t",
  "\r": "\\r",
};

/**
 * `text` with every control character (and the backslash) written as an escape (`\n`, `\t`,
 * `\u001b`, `\\`), for printing a value from the bucket as one table cell or one line: a key
 * holding a newline or a tab cannot make rows or columns of its own. Text without them is
 * returned unchanged.
 */
export function printable(text: string): string {
  return text.replace(
    UNPRINTABLE,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

// The same controls as UNPRINTABLE but newline and tab, and not the backslash.
// deno-lint-ignore no-control-regex
const TERMINAL_CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * `text` with every control character but newline and tab written as an escape (`\r`,
 * `\u001b`), for a line about to reach a terminal: an ESC sequence from the bucket, the endpoint
 * or zfs cannot move the cursor, retitle the window or hide what came before. Unlike
 * {@linkcode printable} it leaves the backslash alone, so a JSON document keeps its meaning.
 */
export function escapeControls(text: string): string {
  return text.replace(
    TERMINAL_CONTROLS,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Splits `pool/fs@snap` into its dataset and short snapshot name, validating both. */
export function parseSnapshot(full: string): { dataset: string; snapshot: string } {
  const at = full.indexOf("@");
  if (at < 0 || full.indexOf("@", at + 1) >= 0) {
    throw new UsageError(`Cannot use snapshot ${JSON.stringify(full)}: expected dataset@snapshot`);
  }
  return {
    dataset: validateDataset(full.slice(0, at)),
    snapshot: validateSnapshotName(full.slice(at + 1)),
  };
}

/** Short name after the first `@`, or the whole name when it has none. */
export function shortName(fullName: string): string {
  const at = fullName.indexOf("@");
  return at < 0 ? fullName : fullName.slice(at + 1);
}
