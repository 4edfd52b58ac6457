import assert from "node:assert/strict";
import {
  checkIncrementalFlags,
  checkRestoreFlags,
  formatSendFlags,
  isLargeBlock,
  parseSendFlags,
  readSendFlags,
  sendOptions,
} from "../../../lib/config/send_flags.ts";
import { resolveConfig } from "../../../lib/config/config.ts";
import { ChainError, IntegrityError, UsageError } from "../../../lib/base/errors.ts";
import { sendArgv } from "../../../lib/zfs/zfs.ts";

Deno.test("parseSendFlags() takes -L -e -c in any spelling, in one canonical order", () => {
  assert.deepEqual(parseSendFlags(""), []);
  assert.deepEqual(parseSendFlags("-c -L"), ["-L", "-c"]);
  assert.deepEqual(parseSendFlags("-Lec"), ["-L", "-e", "-c"]);
  assert.deepEqual(parseSendFlags("--large-block,--compressed"), ["-L", "-c"]);
  assert.deepEqual(parseSendFlags("-L -L"), ["-L"]);
});

Deno.test("parseSendFlags() refuses every other zfs send option, -w included", () => {
  for (const bad of ["-w", "-R", "-Lw", "-p", "L", "--raw", "-i pool@x", "-D", "; rm"]) {
    assert.throws(() => parseSendFlags(bad, "$SEND_FLAGS"), (err: unknown) => {
      assert.ok(err instanceof UsageError, bad);
      assert.match(err.message, /^Cannot parse SEND_FLAGS .* from \$SEND_FLAGS: /);
      return true;
    });
  }
});

Deno.test("resolveConfig() parses SEND_FLAGS and HOLD (default: none, on)", () => {
  const d = resolveConfig({});
  assert.deepEqual(d.sendFlags, []);
  assert.equal(d.hold, true);
  const c = resolveConfig({ env: { SEND_FLAGS: "-c -L", HOLD: "false" } });
  assert.deepEqual(c.sendFlags, ["-L", "-c"]);
  assert.equal(c.hold, false);
  assert.throws(() => resolveConfig({ flags: { "send-flags": "-R" } }), UsageError);
});

Deno.test("sendOptions() puts -w first for an encrypted dataset; formatSendFlags() records it", () => {
  assert.deepEqual(sendOptions(["-L", "-c"], true), ["-w", "-L", "-c"]);
  assert.deepEqual(sendOptions([], false), []);
  assert.equal(formatSendFlags(["-w", "-c"]), "-w -c");
  assert.equal(formatSendFlags([]), undefined);
});

Deno.test("sendArgv() puts the options before -i and refuses anything unvalidated", () => {
  assert.deepEqual(sendArgv("p/d@b", "p/d@a", ["-w", "-L"]).slice(1), [
    "send",
    "-w",
    "-L",
    "-i",
    "p/d@a",
    "p/d@b",
  ]);
  assert.deepEqual(sendArgv("p/d@a", undefined, ["-c"]).slice(1), ["send", "-c", "p/d@a"]);
  assert.throws(() => sendArgv("p/d@a", undefined, ["-R"]));
});

Deno.test("readSendFlags() reads the bucket's z3-send-flags and refuses options z3 never writes", () => {
  assert.deepEqual(readSendFlags("p/d@a", {}), []);
  assert.deepEqual(readSendFlags("p/d@a", { "z3-send-flags": "-c  -w" }), ["-w", "-c"]);
  assert.throws(() => readSendFlags("p/d@a", { "z3-send-flags": "-w -R" }), IntegrityError);
});

Deno.test("checkIncrementalFlags() refuses a change of -L or of raw-ness mid-chain, naming --full", () => {
  checkIncrementalFlags("p/d@a", ["-L"], ["-L", "-c"]); // -c may change
  checkIncrementalFlags("p/d@a", ["-w"], ["-w", "-L"]); // -w implies -L
  assert.ok(isLargeBlock(["-w"]));
  for (
    const [previous, next, why] of [
      [[], ["-L"], /-L \(--large-block\), to match previous receive/],
      [["-L"], [], /large-block/],
      [[], ["-w"], /raw/],
      [["-w"], ["-L"], /raw/],
    ] as [string[], string[], RegExp][]
  ) {
    assert.throws(() => checkIncrementalFlags("p/d@a", previous, next), (err: unknown) => {
      assert.ok(err instanceof ChainError);
      assert.match(err.message, why);
      assert.match(err.message, /z3 backup --full/);
      return true;
    });
  }
});

Deno.test("checkRestoreFlags() refuses raw on non-raw and the reverse, along the chain and onto the target", () => {
  const raw = { name: "p/d@a", flags: ["-w"] };
  const plain = { name: "p/d@b", flags: [] };
  checkRestoreFlags([raw, { ...raw, name: "p/d@b" }], "p/r", undefined);
  checkRestoreFlags([plain], "p/r", false);
  checkRestoreFlags([raw], "p/r", true);
  for (
    const [steps, encrypted] of [
      [[raw, plain], undefined],
      [[plain, raw], undefined],
      [[raw], false],
      [[plain], true],
    ] as [typeof raw[], boolean | undefined][]
  ) {
    assert.throws(() => checkRestoreFlags(steps, "p/r", encrypted), (err: unknown) => {
      assert.ok(err instanceof ChainError);
      assert.match(err.message, /Can't perform a raw receive on top of a non-raw receive/);
      return true;
    });
  }
});
