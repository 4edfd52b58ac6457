/** Human sizes: the status table's column and the progress lines. */
import assert from "node:assert/strict";
import { humanBytes } from "../../../lib/cli/human.ts";

Deno.test("humanBytes() with style table prints like the original z3 from 1 MiB, K and B below (never 0 M)", () => {
  const M = 1024 ** 2;
  const cases: [number | undefined, string][] = [
    [undefined, ""],
    [0, "0 B"],
    [312, "312 B"],
    [100_000, "97.66 K"],
    [1023, "1023 B"],
    [1024, "1 K"],
    [12.5 * M, "12.5 M"],
    [M, "1 M"],
    [1024 * M, "1024 M"],
    [1.2 * 1024 * M, "1.2 G"],
    [1.234 * 1024 * M, "1.23 G"],
    [3 * 1024 ** 2 * M, "3 T"],
    [5000 * 1024 ** 2 * M, "5000 T"],
    [Number.NaN, ""],
  ];
  for (const [bytes, want] of cases) {
    assert.equal(humanBytes(bytes, { style: "table" }), want, String(bytes));
  }
});

Deno.test("humanBytes() prints progress lines in IEC units, one decimal above B", () => {
  const cases: [number, string][] = [
    [0, "0 B"],
    [312, "312 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [100_000, "97.7 KiB"],
    [12.5 * 1024 ** 2, "12.5 MiB"],
    [1024 ** 3, "1.0 GiB"],
    [1024 ** 5, "1024.0 TiB"],
  ];
  for (const [bytes, want] of cases) assert.equal(humanBytes(bytes), want, String(bytes));
});
