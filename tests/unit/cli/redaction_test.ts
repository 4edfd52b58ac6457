import assert from "node:assert/strict";
import { redact } from "../../../lib/cli/run.ts";
import { bech32Encode } from "../../../lib/config/age_keys.ts";
import { runZ3 } from "../../bed/cli.ts";

const IDENTITY = bech32Encode("age-secret-key-", new Uint8Array(32).fill(7)).toUpperCase();
const SIGNING = "z3-sign-1:" + btoa(String.fromCharCode(...new Uint8Array(32).fill(9)));

Deno.test("redact() hides an age identity and a signing key that were never registered", () => {
  const text = `a "${IDENTITY}" b ${IDENTITY.toLowerCase()} c "${SIGNING}" d`;
  const out = redact(text);
  assert.equal(out, `a "***" b *** c "***" d`);
});

Deno.test("z3 never echoes an identity or signing key given to a recipient setting", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-redact-" });
  try {
    await Deno.writeTextFile(`${dir}/identity.txt`, `# created: now\n${IDENTITY}\n`);
    for (
      const env of [
        { AGE_RECIPIENTS_FILE: `${dir}/identity.txt` },
        { AGE_RECIPIENTS: IDENTITY },
        { AGE_RECIPIENTS: SIGNING },
      ]
    ) {
      for (const args of [["status"], ["status", "--debug"]]) {
        const result = await runZ3(args, env);
        assert.equal(result.code, 2, result.stderr);
        const printed = result.stdout + result.stderr;
        assert.match(result.stderr, /Cannot use AGE_RECIPIENTS/);
        for (const secret of [IDENTITY, SIGNING, SIGNING.slice(10), IDENTITY.slice(15)]) {
          assert.ok(!printed.toUpperCase().includes(secret.toUpperCase()), printed);
        }
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
