import assert from "node:assert/strict";
import { escapeControls } from "../../../lib/chain/names.ts";
import { formatTable } from "../../../lib/commands/status.ts";

const FIXTURE = new URL("./fixtures/hostile_text.ts", import.meta.url).pathname;
// deno-lint-ignore no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

async function run(kind: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", FIXTURE, kind],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("escapeControls() escapes control characters but keeps newline, tab and backslash", () => {
  assert.equal(
    escapeControls("a\u001b[1m\tb\\c\nd\u009b\u007f\r"),
    "a\\u001b[1m\tb\\c\nd\\u009b\\u007f\\r",
  );
  assert.equal(escapeControls("plain text"), "plain text");
});

for (
  const [kind, code, said] of [
    ["s3-message", 4, /^z3: Cannot list bucket "b": AccessDenied: \\u001b\[31mred/],
    ["zfs-stderr", 3, /^z3: Cannot receive "tank\/x": zfs said: \\u001b\[31mred/],
    ["age-recipients", 2, /matches its age recipients \(age1\\u001b\[31mred/],
    [
      "warning",
      0,
      /^warning: Cannot write METRICS_FILE "m": \\u001b\[31mred\\u001b\]0;title\\u0007/,
    ],
    ["summary", 1, /^2 datasets: 2 failed: a \(cannot open: \\u001b\[31mred/m],
  ] as const
) {
  Deno.test(`an ESC from outside reaches stderr escaped: ${kind}`, async () => {
    const result = await run(kind);
    assert.equal(result.code, code, result.stderr);
    assert.ok(!RAW_CONTROL.test(result.stderr), JSON.stringify(result.stderr));
    assert.match(result.stderr, said);
  });
}

Deno.test("--json keeps an outside text's value: the document parses to the same string", async () => {
  const result = await run("json");
  assert.equal(result.code, 0, result.stderr);
  assert.ok(!RAW_CONTROL.test(result.stdout), JSON.stringify(result.stdout));
  assert.deepEqual(JSON.parse(result.stdout), [{
    detail: "\u001b[31mred\u001b]0;title\u0007\u009b2J",
  }]);
});

Deno.test("formatTable() escapes an ESC in the ENCRYPTION cell", () => {
  const [, row] = formatTable([{
    dataset: "tank/x",
    name: "s1",
    parent: "",
    type: "full",
    health: "ok",
    localState: "ok",
    encryption: "age",
    recipients: ["\u001b[2Jx"],
  }]);
  assert.ok(!RAW_CONTROL.test(row), JSON.stringify(row));
  assert.match(row, /age: \\u001b\[2Jx/);
});
