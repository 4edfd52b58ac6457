/** `contrib/z3-backup.service`: the hardening issue #28 asks for, and what systemd makes of it. */
import assert from "node:assert/strict";

const ROOT = new URL("../../../", import.meta.url);
const UNIT = new URL("contrib/z3-backup.service", ROOT);

Deno.test("z3-backup.service sets the hardening directives, each under a comment", async () => {
  const lines = (await Deno.readTextFile(UNIT)).split("\n");
  const directives = new Map(
    lines.filter((l) => /^[A-Z]\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l]),
  );
  for (
    const want of [
      "UMask=077",
      "LimitCORE=0",
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "PrivateTmp=yes",
      "SystemCallFilter=@system-service",
      "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_DAC_READ_SEARCH",
      "ReadWritePaths=-/var/lib/node_exporter/textfile_collector",
      "MemoryMax=2G",
    ]
  ) {
    assert.equal(directives.get(want.slice(0, want.indexOf("="))), want);
  }
  // Every hardening directive sits under a comment (its own, or its group's).
  const start = lines.findIndex((l) => l.startsWith("# Hardening"));
  let explained = false;
  for (const line of lines.slice(start)) {
    if (line.startsWith("#")) explained = true;
    else if (line === "") explained = false;
    else assert.ok(explained, `no comment above: ${line}`);
  }
});

Deno.test("systemd-analyze verify accepts z3-backup.service and its timer", async (t) => {
  const which = await new Deno.Command("sh", { args: ["-c", "command -v systemd-analyze"] })
    .output();
  if (!which.success) {
    return void await t.step({ name: "systemd-analyze absent", ignore: true, fn() {} });
  }
  const root = await Deno.makeTempDir({ prefix: "z3-unit-" });
  try {
    const sh = [
      `mkdir -p "$R/etc/systemd/system" "$R/usr/lib/systemd" "$R/usr/local/bin"`,
      `cp -r /usr/lib/systemd/system "$R/usr/lib/systemd/"`,
      `cp contrib/z3 "$R/usr/local/bin/z3"`,
      `cp contrib/z3-backup.service contrib/z3-backup.timer "$R/etc/systemd/system/"`,
      `systemd-analyze verify --root="$R" z3-backup.service z3-backup.timer`,
    ].join(" && ");
    const out = await new Deno.Command("sh", {
      args: ["-c", sh],
      cwd: ROOT.pathname,
      env: { R: root },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.ok(out.success, said);
    assert.equal(said, "", "no warning about any line");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
