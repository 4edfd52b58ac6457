import assert from "node:assert/strict";
import { classifyError } from "../../../lib/backend/s3.ts";
import {
  localize,
  PPUT_PERMISSIONS,
  README_CONFIG_DIR,
  Z3_PERMISSIONS,
} from "../../bed/permission_flags.ts";

const ROOT = new URL("../../../", import.meta.url);

/** README.md with shell line continuations joined, so a wrapped command reads as one line. */
async function readmeCommands(): Promise<string> {
  const text = await Deno.readTextFile(new URL("README.md", ROOT));
  return text.replace(/\s*\\\n\s*/g, " ");
}

Deno.test("README.md documents exactly the permission flags the CLI tests use", async () => {
  const readme = await readmeCommands();
  const z3 = `deno run ${Z3_PERMISSIONS.join(" ")} main.ts`;
  for (const command of ["status", "backup", "restore"]) {
    assert.ok(readme.includes(`${z3} ${command}`), `README.md lacks: ${z3} ${command}`);
  }
  const pput = `deno run ${PPUT_PERMISSIONS.join(" ")} pput.ts`;
  assert.ok(readme.includes(pput), `README.md lacks: ${pput}`);
});

Deno.test("deno task compile bakes the README's permission flags into dist/z3 and dist/pput", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    tasks: Record<string, string | { command: string }>;
  };
  const task = config.tasks.compile;
  const command = typeof task === "string" ? task : task.command;
  const host = "$Z3_S3_HOST";
  for (
    const [flags, out, entry] of [
      [Z3_PERMISSIONS, "dist/z3", "main.ts"],
      [PPUT_PERMISSIONS, "dist/pput", "pput.ts"],
    ] as const
  ) {
    const want = `deno compile ${
      localize(flags, host, README_CONFIG_DIR).join(" ")
    } --output ${out} ${entry}`;
    assert.ok(command.includes(want), `the compile task lacks: ${want}\ngot: ${command}`);
  }
});

Deno.test("classifyError() names a permission Deno refused and the flag, and never retries", () => {
  const denied = new Deno.errors.NotCapable(
    'Requires net access to "127.0.0.1:17480", run again with the --allow-net flag',
  );
  const err = classifyError('list bucket "b"', denied);
  assert.deepEqual(
    err.message,
    'Cannot list bucket "b": not permitted: Deno needs net access to "127.0.0.1:17480"; ' +
      "grant it with --allow-net=127.0.0.1:17480",
  );
  assert.deepEqual(err.retryable, false);
  const all = classifyError(
    "read",
    new Deno.errors.NotCapable(
      'Requires all access to "/dev/fd/5", run again with the --allow-all flag',
    ),
  );
  assert.match(all.message, /all access to "\/dev\/fd\/5"; grant it with --allow-all$/);
});

Deno.test("contrib's wrapper scripts run frozen and cached-only with the README's flags", async () => {
  for (
    const [script, flags, entry] of [
      ["contrib/z3", Z3_PERMISSIONS, "/opt/z3/main.ts"],
      ["contrib/pput", PPUT_PERMISSIONS, "/opt/z3/pput.ts"],
    ] as const
  ) {
    const text = (await Deno.readTextFile(new URL(script, ROOT))).replace(/\s*\\\n\s*/g, " ");
    const want = `exec deno run --config /opt/z3/deno.json --frozen --cached-only ${
      flags.join(" ")
    } ${entry} "$@"`;
    assert.ok(text.includes(want), `${script} lacks: ${want}`);
    assert.equal((await Deno.stat(new URL(script, ROOT))).mode! & 0o111, 0o111, "executable");
  }
  const readme = await readmeCommands();
  assert.ok(!/deno run -A\b|deno run --allow-all\b/.test(readme), "README examples never use -A");
});
