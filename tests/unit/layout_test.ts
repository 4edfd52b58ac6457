/**
 * The house rules of lib/ (README "Modules"): lib/ holds folders only; each folder's README.md
 * says which folders its files may import (`May import:`), from which only types
 * (`Types only from:`), and whether its files may import each other (`Siblings: no`). This test
 * reads every import under lib/ and fails on a cycle between files or an import against those
 * rules, naming the files. The rules are read from the READMEs, so the map a reader sees is the
 * one that is enforced.
 *
 * @module
 */

import assert from "node:assert/strict";

const LIB = new URL("../../lib/", import.meta.url).pathname;

/** One folder's rules, as its README states them. */
interface Rules {
  may: Set<string>;
  typesOnly: Set<string>;
  siblings: boolean;
}

/** One relative import of a file under lib/: its target (lib-relative) and whether only types. */
interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^;"]*?)\s*from\s*"(\.[^"]+)"/g;
const BARE = /(?:^|\n)\s*import\s*(?:\(\s*)?"(\.[^"]+)"/g;

/** The lib-relative path `spec` names from `file` (lib-relative), or undefined outside lib/. */
function resolve(file: string, spec: string): string | undefined {
  const parts = file.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "..") {
      if (parts.length === 0) return undefined;
      parts.pop();
    } else if (seg !== ".") parts.push(seg);
  }
  return parts.join("/");
}

/** The imports of one file's source. */
export function importsOf(file: string, source: string): Edge[] {
  const edges: Edge[] = [];
  for (const [, , typeKw, clause, spec] of source.matchAll(IMPORT)) {
    const to = resolve(file, spec);
    if (to === undefined) continue;
    const named = /^\{([\s\S]*)\}$/.exec(clause.trim());
    const allTyped = named !== null &&
      named[1].split(",").map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith("type "));
    edges.push({ from: file, to, typeOnly: Boolean(typeKw) || allTyped });
  }
  for (const [, spec] of source.matchAll(BARE)) {
    const to = resolve(file, spec);
    if (to !== undefined) edges.push({ from: file, to, typeOnly: false });
  }
  return edges;
}

/** Parses a folder README's rule lines. */
export function rulesOf(readme: string): Rules | undefined {
  const line = (name: string) =>
    new RegExp(`^(?:- )?${name}:\\s*(.*)$`, "m").exec(readme.replace(/\n {2,}/g, " "))?.[1]
      .replace(/[`.]/g, "").trim();
  const list = (text: string | undefined) =>
    new Set((text ?? "").split(",").map((s) => s.trim()).filter((s) => s && s !== "nothing"));
  const may = line("May import");
  if (may === undefined) return undefined;
  return {
    may: list(may),
    typesOnly: list(line("Types only from")),
    siblings: line("Siblings") !== "no",
  };
}

/** Every problem of a tree: forbidden edges and file cycles, each naming the files. */
export function layoutProblems(rules: Map<string, Rules>, edges: Edge[]): string[] {
  const problems: string[] = [];
  const folder = (path: string) => path.split("/")[0];
  for (const e of edges) {
    const [a, b] = [folder(e.from), folder(e.to)];
    const r = rules.get(a);
    if (!r) problems.push(`${e.from}: folder ${a}/ has no rules (README.md "May import:")`);
    else if (a === b) {
      if (!r.siblings) problems.push(`${e.from} imports ${e.to}: files of ${a}/ import no sibling`);
    } else if (!r.may.has(b) && !(e.typeOnly && r.typesOnly.has(b))) {
      const how = r.typesOnly.has(b) ? " (types only are allowed)" : "";
      problems.push(`${e.from} imports ${e.to}: ${a}/ may not import ${b}/${how}`);
    }
  }
  problems.push(...cyclesOf(edges).map((c) => `import cycle: ${c.join(" -> ")}`));
  return problems;
}

/** The file cycles of `edges` (type imports included), each once. */
function cyclesOf(edges: Edge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const e of edges) next.set(e.from, (next.get(e.from) ?? new Set()).add(e.to));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string) => {
    state.set(f, "open");
    stack.push(f);
    for (const t of next.get(f) ?? []) {
      if (state.get(t) === "open") cycles.push([...stack.slice(stack.indexOf(t)), t]);
      else if (!state.has(t)) visit(t);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of [...next.keys()].sort()) if (!state.has(f)) visit(f);
  return cycles;
}

/** The folder graph of the rules must itself have no cycle, or layering means nothing. */
function ruleCycles(rules: Map<string, Rules>): string[][] {
  const edges: Edge[] = [];
  for (const [a, r] of rules) {
    for (const b of [...r.may, ...r.typesOnly]) edges.push({ from: a, to: b, typeOnly: false });
  }
  return cyclesOf(edges);
}

function readTree(): { rules: Map<string, Rules>; edges: Edge[]; loose: string[] } {
  const rules = new Map<string, Rules>();
  const edges: Edge[] = [];
  const loose: string[] = [];
  for (const top of Deno.readDirSync(LIB)) {
    if (!top.isDirectory) {
      loose.push(top.name);
      continue;
    }
    const readme = Deno.readTextFileSync(`${LIB}${top.name}/README.md`);
    const r = rulesOf(readme);
    assert.ok(r, `lib/${top.name}/README.md has no "May import:" line`);
    rules.set(top.name, r);
    for (const f of Deno.readDirSync(`${LIB}${top.name}`)) {
      if (!f.name.endsWith(".ts")) continue;
      const path = `${top.name}/${f.name}`;
      edges.push(...importsOf(path, Deno.readTextFileSync(`${LIB}${path}`)));
    }
  }
  return { rules, edges, loose };
}

Deno.test("lib/ holds folders only, each with its rules", () => {
  const { rules, loose } = readTree();
  assert.deepEqual(loose, []);
  assert.ok(rules.size >= 10, `only ${rules.size} folders`);
  assert.deepEqual(ruleCycles(rules), []);
});

Deno.test("no import under lib/ is against its folder's rules or closes a cycle", () => {
  const { rules, edges } = readTree();
  assert.ok(edges.length > 100, `only ${edges.length} imports found: the parser is broken`);
  assert.deepEqual(layoutProblems(rules, edges), []);
});

Deno.test("layoutProblems() names a forbidden import, a value import of a types-only folder, a sibling import and a cycle", () => {
  const rules = new Map<string, Rules>([
    ["base", { may: new Set(), typesOnly: new Set(), siblings: true }],
    ["chain", { may: new Set(["base"]), typesOnly: new Set(["backend"]), siblings: true }],
    ["backend", { may: new Set(["base"]), typesOnly: new Set(), siblings: true }],
    ["commands", { may: new Set(["base", "chain"]), typesOnly: new Set(), siblings: false }],
  ]);
  const src = {
    "base/errors.ts": 'import { x } from "../chain/walk.ts";\n',
    "chain/walk.ts": 'import type { S3Store } from "../backend/s3.ts";\n' +
      'import { retry } from "../backend/retry.ts";\nimport { a } from "./chain.ts";\n',
    "chain/chain.ts": 'import {\n  type RemoteSnapshot,\n  type Y,\n} from "./walk.ts";\n',
    "commands/check.ts": 'import { formatAge } from "./cleanup.ts";\n',
  };
  const edges = Object.entries(src).flatMap(([f, s]) => importsOf(f, s));
  assert.deepEqual(layoutProblems(rules, edges), [
    "base/errors.ts imports chain/walk.ts: base/ may not import chain/",
    "chain/walk.ts imports backend/retry.ts: chain/ may not import backend/ (types only are allowed)",
    "commands/check.ts imports commands/cleanup.ts: files of commands/ import no sibling",
    "import cycle: chain/walk.ts -> chain/chain.ts -> chain/walk.ts",
  ]);
});

Deno.test("rulesOf() reads the rule lines of a folder README", () => {
  const r = rulesOf("# chain/\n\n- May import: `base`, `config`.\n- Types only from: `backend`.\n");
  assert.deepEqual(r, {
    may: new Set(["base", "config"]),
    typesOnly: new Set(["backend"]),
    siblings: true,
  });
  assert.deepEqual(rulesOf("May import: nothing.\nSiblings: no.\n")?.siblings, false);
  assert.equal(rulesOf("no rules here"), undefined);
});
