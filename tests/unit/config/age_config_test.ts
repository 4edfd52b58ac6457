import assert from "node:assert/strict";
import { resolveConfig } from "../../../lib/config/config.ts";
import { loadConfig } from "../../../lib/config/load.ts";
import { UsageError } from "../../../lib/base/errors.ts";

// The X25519 example of the age spec (c2sp.org/age).
const IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
const RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

Deno.test("resolveConfig() parses AGE_RECIPIENTS and refuses a bad one naming the setting", () => {
  const config = resolveConfig({ env: { AGE_RECIPIENTS: `${RECIPIENT}, ${RECIPIENT}` } });
  assert.deepEqual(config.ageRecipients?.map((r) => r.text), [RECIPIENT]);
  assert.deepEqual(resolveConfig({}).ageRecipients, []);
  assert.throws(
    () => resolveConfig({ flags: { "age-recipients": "age1qqqq" } }),
    (e) =>
      e instanceof UsageError && /^Cannot use AGE_RECIPIENTS recipient "age1qqqq"/.test(e.message),
  );
});

Deno.test("loadConfig() reads AGE_RECIPIENTS_FILE and AGE_IDENTITY_FILE; the identity becomes a secret", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-age-config-" });
  try {
    await Deno.writeTextFile(`${dir}/recipients.txt`, `# keys\n${RECIPIENT}\n`);
    await Deno.writeTextFile(`${dir}/key.txt`, `# created: x\n${IDENTITY}\n`);
    await Deno.writeTextFile(
      `${dir}/z3.conf`,
      `[main]\nAGE_RECIPIENTS_FILE=${dir}/recipients.txt\nAGE_IDENTITY_FILE=${dir}/key.txt\n`,
    );
    const config = await loadConfig({ configPath: `${dir}/z3.conf` });
    assert.deepEqual(config.ageRecipients?.map((r) => r.text), [RECIPIENT]);
    assert.deepEqual(config.ageIdentities?.map((i) => i.recipient.text), [RECIPIENT]);
    assert.ok(config.secrets.includes(IDENTITY));
    await Deno.writeTextFile(`${dir}/key.txt`, `${IDENTITY.slice(0, -1)}\n`);
    await assert.rejects(
      loadConfig({ configPath: `${dir}/z3.conf` }),
      (e) =>
        e instanceof UsageError && e.message.includes(`AGE_IDENTITY_FILE ${dir}/key.txt: line 1`) &&
        !e.message.includes(IDENTITY.slice(15, 40)),
    );
    await Deno.remove(`${dir}/key.txt`);
    await assert.rejects(
      loadConfig({ configPath: `${dir}/z3.conf` }),
      /Cannot read AGE_IDENTITY_FILE .*: it does not exist/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
