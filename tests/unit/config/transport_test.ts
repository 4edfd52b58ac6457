import assert from "node:assert/strict";
import { loadConfig, plainHttpWarning } from "../../../lib/config/load.ts";
import { UsageError } from "../../../lib/base/errors.ts";

Deno.test("plainHttpWarning() warns for plain HTTP to anything but loopback", () => {
  for (
    const quiet of [
      undefined,
      "https://s3.example.com",
      "http://127.0.0.1:7480",
      "http://127.9.0.1",
      "http://localhost:9000",
      "http://[::1]:7480",
    ]
  ) {
    assert.equal(plainHttpWarning(quiet), undefined, quiet);
  }
  for (
    const host of [
      "http://10.0.0.5:7480",
      "http://s3.example.com",
      "http://localhost.example.com",
      "http://[fe80::1]:80",
    ]
  ) {
    assert.equal(
      plainHttpWarning(host),
      `warning: HOST ${host} is plain HTTP to a host that is not this machine: anyone on the ` +
        "path can read what z3 sends and change the answers; use https:// (with S3_CA_FILE for " +
        "a private CA)",
    );
  }
});

async function load(lines: string[], warn?: (line: string) => void) {
  const dir = await Deno.makeTempDir({ prefix: "z3-transport-" });
  try {
    await Deno.writeTextFile(`${dir}/z3.conf`, ["[main]", ...lines, ""].join("\n"));
    return await loadConfig({ configPath: `${dir}/z3.conf`, configDir: dir, warn });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadConfig() gives the plain-HTTP warning once, as a warning", async () => {
  const lines: string[] = [];
  const config = await load(["HOST=http://10.0.0.5:7480"], (l) => lines.push(l));
  assert.equal(config.endpoint, "http://10.0.0.5:7480");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^warning: HOST http:\/\/10\.0\.0\.5:7480 is plain HTTP/);
});

Deno.test("loadConfig() refuses S3_CA_ONLY=true without S3_CA_FILE, and defaults it to false", async () => {
  await assert.rejects(
    load(["S3_CA_ONLY=true"]),
    (e) =>
      e instanceof UsageError &&
      e.message === "Cannot use S3_CA_ONLY=true: S3_CA_FILE is not set (the CA to trust alone)",
  );
  assert.equal((await load([])).caOnly, false);
});
