/**
 * No function past ~80 lines in lib/, main.ts or pput.ts (README "Modules"): a function that does
 * five jobs hides its bugs. Measured on `deno fmt`'s layout: a function, method or callback runs
 * from the line that opens its body to the next line at the same indent that starts with `}`, so
 * a nested function counts in its parent too.
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

/** The longest a function may be, in lines, its first and last included. */
const MAX_LINES = 80;

/** Lines that open a function body (`deno fmt` puts the `{` last on the line). */
const OPENS = [
  /\bfunction\b.*\{$/, // function name(…) {, async function* …, function (…) {
  /=>\s*\{$/, // (…) => {
  /^\s*(?:(?:public|private|static|async|get|set)\s+)*[*#]?[A-Za-z_$][\w$]*\s*\([^)]*\)(?::[^{]+)?\s*\{$/,
];
const NOT_FUNCTIONS = /^\s*(?:\}\s*)?(?:if|for|while|switch|catch|else|do|try|with)\b/;

/** The functions of `source` longer than `max` lines: `file:line length`. */
export function longFunctions(file: string, source: string, max = MAX_LINES): string[] {
  const lines = source.split("\n");
  const indentOf = (l: string) => /^\s*/.exec(l)![0].length;
  const found: string[] = [];
  lines.forEach((line, i) => {
    if (!line.endsWith("{")) return;
    const indent = indentOf(line);
    // A signature over several lines (`deno fmt` puts `)` back at its indent) starts above.
    let start = i;
    if (/^\s*\)/.test(line)) {
      while (start > 0 && !(indentOf(lines[start - 1]) === indent && lines[start - 1].trim())) {
        start--;
      }
      start--;
    }
    const header = lines.slice(start, i + 1).map((l) => l.trim()).join(" ");
    if (NOT_FUNCTIONS.test(header) || !OPENS.some((re) => re.test(header))) return;
    let end = i + 1;
    while (end < lines.length && !(indentOf(lines[end]) === indent && /^\s*\}/.test(lines[end]))) {
      end++;
    }
    const length = end - start + 1;
    if (length > max) found.push(`${file}:${start + 1} ${length} lines`);
  });
  return found;
}

function sources(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_wasm.ts")) {
        out.push([path, Deno.readTextFileSync(`${ROOT}${path}`)]);
      }
    }
  };
  walk("lib");
  for (const f of ["main.ts", "pput.ts"]) out.push([f, Deno.readTextFileSync(`${ROOT}${f}`)]);
  return out;
}

Deno.test("no function in lib/, main.ts or pput.ts is longer than 80 lines", () => {
  const all = sources();
  assert.ok(all.length > 50, `only ${all.length} files read`);
  assert.deepEqual(all.flatMap(([file, source]) => longFunctions(file, source)), []);
});

Deno.test("longFunctions() measures functions, methods and callbacks, not blocks", () => {
  const body = (n: number, indent: string) => `${indent}  x++;\n`.repeat(n);
  const source = [
    `export function a(\n  x: number,\n): number {\n${body(4, "")}}`,
    `const b = async (y: string) => {\n${body(2, "")}};`,
    `class C {\n  async m(z: number): Promise<void> {\n${body(3, "  ")}  }\n}`,
    `if (x) {\n${body(9, "")}}`,
  ].join("\n");
  assert.deepEqual(longFunctions("f.ts", source, 5), ["f.ts:1 8 lines"]);
  assert.deepEqual(longFunctions("f.ts", source, 3), [
    "f.ts:1 8 lines",
    "f.ts:9 4 lines",
    "f.ts:14 5 lines",
  ]);
});
