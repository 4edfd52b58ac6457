import assert from "node:assert/strict";
import { printable, snapshotNameProblem } from "../../../lib/chain/names.ts";

Deno.test("printable() escapes control characters and the backslash, and nothing else", () => {
  const cases: [string, string][] = [
    ["daily-2024 01:00.x_y", "daily-2024 01:00.x_y"],
    ["a\nb", "a\\nb"],
    ["a\tb", "a\\tb"],
    ["a\rb", "a\\rb"],
    ["esc\u001b[31m", "esc\\u001b[31m"],
    ["del\u007f csi\u009b", "del\\u007f csi\\u009b"],
    ["ls\u2028ps\u2029", "ls\\u2028ps\\u2029"],
    ["back\\slash", "back\\\\slash"],
    ["ünïcode", "ünïcode"],
  ];
  for (const [input, want] of cases) assert.equal(printable(input), want, JSON.stringify(input));
});

Deno.test("snapshotNameProblem() refuses what ZFS would, and accepts what it allows", () => {
  for (const good of ["s1", "daily-2024-01-01", "a b", "x:y.z_w"]) {
    assert.equal(snapshotNameProblem(good), undefined, good);
  }
  for (const bad of ["", ".", "..", "-o", "a\nb", "a\tb", "a/b", "a@b", "é"]) {
    assert.ok(snapshotNameProblem(bad), JSON.stringify(bad));
  }
});
