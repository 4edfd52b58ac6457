import assert from "node:assert/strict";
import { commandHelp, type FlagSpec, splitCommand } from "../../../lib/cli/run.ts";

const SPEC: FlagSpec = { config: { type: "string" }, debug: { type: "boolean" } };

Deno.test("splitCommand() finds the command after global options and their values", () => {
  assert.deepEqual(splitCommand(["--config", "backup", "status", "--json"], SPEC), {
    command: "status",
    rest: ["--config", "backup", "--json"],
  });
  assert.deepEqual(splitCommand(["--debug", "--config=x", "backup"], SPEC), {
    command: "backup",
    rest: ["--debug", "--config=x"],
  });
  assert.deepEqual(splitCommand(["--version"], SPEC), { rest: ["--version"] });
});

const HELP = `p 1: demo

Usage:
  p alpha [--x]
          [--y]
  p beta  [--z]

Commands:
  alpha   does a
          and more a
  beta    does b

Exit status:
  0  ok`;

Deno.test("commandHelp() keeps one command's usage and paragraph", () => {
  assert.equal(
    commandHelp(HELP, "p", "alpha"),
    [
      "Usage:",
      "  p alpha [--x]",
      "          [--y]",
      "",
      "  alpha   does a",
      "          and more a",
      "",
      "Settings, other options and exit status: p --help",
    ].join("\n"),
  );
});
