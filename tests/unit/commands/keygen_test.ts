import assert from "node:assert/strict";
import { keygen } from "../../../lib/commands/keygen.ts";
import { parseSigningKey } from "../../../lib/config/signing_keys.ts";
import { EXIT, UsageError } from "../../../lib/base/errors.ts";
import { runZ3 } from "../../bed/cli.ts";

Deno.test("keygen() writes a 0600 key file and prints its public key, one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-keygen-" });
  try {
    const path = `${dir}/signing.key`;
    const lines: string[] = [];
    const publicKey = await keygen(path, { out: (l) => lines.push(l) });
    assert.deepEqual(lines, [publicKey]);
    assert.match(publicKey, /^z3ed25519:[A-Za-z0-9+/]{43}=$/);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(path);
    assert.equal(parseSigningKey(text, path).publicKey.text, publicKey);
    const secret = text.split("\n").find((l) => l.startsWith("z3-sign-1:"))!.slice(10);
    assert.ok(!lines.join("\n").includes(secret), "the secret is never printed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("keygen() refuses to overwrite an existing file (exit 2) and leaves it as it was", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-keygen-" });
  try {
    const path = `${dir}/signing.key`;
    await Deno.writeTextFile(path, "the old key\n");
    const lines: string[] = [];
    await assert.rejects(
      () => keygen(path, { out: (l) => lines.push(l) }),
      (e) =>
        e instanceof UsageError && e.exitCode === EXIT.usage &&
        e.message === `Cannot write signing key "${path}": it already exists; z3 keygen never ` +
            "overwrites a key (move it away first, or name a new file)",
    );
    assert.equal(await Deno.readTextFile(path), "the old key\n");
    assert.deepEqual(lines, []);
    await assert.rejects(
      () => keygen(`${dir}/no/such/dir/key`),
      (e) => e instanceof UsageError && /its directory does not exist$/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("z3 keygen FILE writes the key (0600), prints its public key and never overwrites", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-keygen-cli-" });
  try {
    const path = `${dir}/signing.key`;
    const made = await runZ3(["keygen", path]);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^z3ed25519:[A-Za-z0-9+/]{43}=\n$/);
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const text = await Deno.readTextFile(path);
    assert.equal(parseSigningKey(text, path).publicKey.text, made.stdout.trim());
    const again = await runZ3(["keygen", path]);
    assert.equal(again.code, EXIT.usage);
    assert.equal(again.stdout, "");
    assert.match(again.stderr, /it already exists; z3 keygen never overwrites a key/);
    assert.equal(await Deno.readTextFile(path), text);
    const none = await runZ3(["keygen"]);
    assert.equal(none.code, EXIT.usage);
    assert.match(none.stderr, /Cannot run keygen: expected exactly one FILE/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
