import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { sign } from "node:crypto";
import {
  generateSigningKey,
  parsePublicKey,
  parseSigningKey,
  parseTrustedKeys,
  signingKeySecrets,
} from "../../../lib/config/signing_keys.ts";
import {
  loadSigningKey,
  loadSigningSettings,
  loadTrustedKeys,
} from "../../../lib/config/load_signing_keys.ts";
import { resolveConfig } from "../../../lib/config/config.ts";
import { UsageError } from "../../../lib/base/errors.ts";

// RFC 8032 §7.1, TEST 1: secret key (seed), public key, and the signature of the empty message.
const SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const PUBLIC_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const EMPTY_SIGNATURE_HEX = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555" +
  "fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
const SEED_B64 = Buffer.from(SEED_HEX, "hex").toString("base64");
const KEY_LINE = `z3-sign-1:${SEED_B64}`;
const PUBLIC = `z3ed25519:${Buffer.from(PUBLIC_HEX, "hex").toString("base64")}`;

/** Asserts that `fn` throws a UsageError matching `re` whose message holds no secret. */
function refuses(fn: () => unknown, re: RegExp) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, re);
    assert.ok(!e.message.includes(SEED_B64), e.message);
    return true;
  });
}

Deno.test("parseSigningKey() reads RFC 8032's test key: its public key and signature match", () => {
  const key = parseSigningKey(`# z3 signing key\n# public key: x\n\n${KEY_LINE}\n`, "/k");
  assert.equal(key.publicKey.text, PUBLIC);
  assert.equal(sign(null, new Uint8Array(), key.key).toString("hex"), EMPTY_SIGNATURE_HEX);
});

Deno.test("parseSigningKey() refuses a bad file naming file and line, never the line's text", () => {
  refuses(
    () => parseSigningKey("# nothing\n", "/k"),
    /^Cannot use SIGNING_KEY_FILE "\/k": it holds no/,
  );
  refuses(() => parseSigningKey(`${KEY_LINE}\n${KEY_LINE}\n`, "/k"), /2 key lines \(lines 1, 2\)/);
  const almost = [
    KEY_LINE.slice(0, -2) + "==", // not canonical Base64 of 32 bytes
    KEY_LINE.slice(0, -1), // padding missing
    `z3-sign-2:${SEED_B64}`,
    SEED_B64,
    `AGE-SECRET-KEY-1${SEED_B64}`,
  ];
  for (const text of almost) {
    refuses(() => parseSigningKey(`#\n${text}\n`, "/k"), /line 2 is not a z3 signing key/);
  }
});

Deno.test("parsePublicKey() takes the canonical text only and never echoes the value", () => {
  assert.equal(parsePublicKey(PUBLIC, "TRUSTED_KEYS item 1").text, PUBLIC);
  for (const text of [PUBLIC.slice(0, -1), PUBLIC.toUpperCase(), `${PUBLIC}=`, "z3ed25519:", ""]) {
    refuses(
      () => parsePublicKey(text, "TRUSTED_KEYS item 1"),
      /^Cannot use TRUSTED_KEYS item 1: it is not a z3 public key/,
    );
  }
  refuses(
    () => parsePublicKey(KEY_LINE, "TRUSTED_KEYS item 3"),
    /it is a signing key, which is secret/,
  );
  refuses(() => parsePublicKey(KEY_LINE.toUpperCase(), "x"), /it is a signing key/);
});

Deno.test("parseTrustedKeys() joins TRUSTED_KEYS, TRUSTED_KEYS_FILE and the signing key's own", () => {
  const other = generateSigningKey().key;
  const signing = generateSigningKey().key;
  const trusted = parseTrustedKeys(` ${PUBLIC} ,, ${PUBLIC}`, {
    file: { path: "/t", text: `# ops team\n\n  ${other.publicKey.text}  \n# old\n` },
    signing,
  });
  assert.deepEqual(
    [...trusted.keys()].sort(),
    [PUBLIC, other.publicKey.text, signing.publicKey.text].sort(),
  );
  assert.equal(parseTrustedKeys(undefined).size, 0);
  refuses(
    () => parseTrustedKeys("", { file: { path: "/t", text: "# none\n\n" } }),
    /^Cannot use TRUSTED_KEYS_FILE "\/t": it holds no public key$/,
  );
  refuses(
    () => parseTrustedKeys(undefined, { file: { path: "/t", text: `${PUBLIC}\n${KEY_LINE}\n` } }),
    /^Cannot use TRUSTED_KEYS_FILE "\/t" line 2: it is a signing key/,
  );
  refuses(() => parseTrustedKeys(`${PUBLIC},nope`), /^Cannot use TRUSTED_KEYS item 2: /);
});

Deno.test("generateSigningKey() writes a file parseSigningKey() reads back to the same key", () => {
  const { key, fileText } = generateSigningKey();
  assert.match(
    fileText,
    /^# z3 signing key.*\n# public key: z3ed25519:\S{44}\nz3-sign-1:\S{44}\n$/,
  );
  assert.ok(fileText.includes(`# public key: ${key.publicKey.text}\n`));
  assert.equal(parseSigningKey(fileText, "/k").publicKey.text, key.publicKey.text);
  assert.notEqual(generateSigningKey().key.publicKey.text, key.publicKey.text);
});

Deno.test("signingKeySecrets() lists the key line and its Base64, not the comments", () => {
  assert.deepEqual(signingKeySecrets(`# public key: ${PUBLIC}\n${KEY_LINE}\n`), [
    KEY_LINE,
    SEED_B64,
  ]);
});

Deno.test("loadSigningKey() and loadTrustedKeys() read files; errors name the file, not its text", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-signing-keys-" });
  try {
    const keyPath = `${dir}/signing.key`;
    await Deno.writeTextFile(keyPath, `${KEY_LINE}\n`, { mode: 0o644 });
    await Deno.chmod(keyPath, 0o644);
    const warnings: string[] = [];
    const { key, secrets } = await loadSigningKey(keyPath, { warn: (w) => warnings.push(w) });
    assert.equal(key.publicKey.text, PUBLIC);
    assert.deepEqual(secrets, [KEY_LINE, SEED_B64]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /is readable by other users; run chmod 600/);
    await Deno.chmod(keyPath, 0o600);
    await loadSigningKey(keyPath, { warn: (w) => warnings.push(w) });
    assert.equal(warnings.length, 1);

    await Deno.writeTextFile(`${dir}/trusted`, `# one\n${PUBLIC}\n`);
    const trusted = await loadTrustedKeys(undefined, { file: `${dir}/trusted` });
    assert.deepEqual([...trusted.keys()], [PUBLIC]);

    await assert.rejects(
      () => loadSigningKey(`${dir}/absent`),
      (e) =>
        e instanceof UsageError &&
        e.message === `Cannot read SIGNING_KEY_FILE "${dir}/absent": it does not exist`,
    );
    await assert.rejects(
      () => loadSigningKey(dir),
      (e) =>
        e instanceof UsageError &&
        /^Cannot read SIGNING_KEY_FILE ".*": it is not a file$/.test(e.message),
    );
    await Deno.writeTextFile(`${dir}/big`, "#".repeat(70_000));
    await assert.rejects(
      () => loadTrustedKeys(undefined, { file: `${dir}/big` }),
      (e) =>
        e instanceof UsageError &&
        /^Cannot read TRUSTED_KEYS_FILE ".*": it is 70000 bytes/.test(e.message),
    );
    await Deno.writeTextFile(keyPath, `${KEY_LINE}x\n`);
    await assert.rejects(
      () => loadSigningKey(keyPath),
      (e) =>
        e instanceof UsageError && !e.message.includes(SEED_B64) &&
        /^Cannot use SIGNING_KEY_FILE ".*": line 1 is not a z3 signing key/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveConfig() and loadSigningSettings() read SIGNING_KEY_FILE, TRUSTED_KEYS and TRUSTED_KEYS_FILE", async () => {
  const dir = await Deno.makeTempDir({ prefix: "z3-signing-settings-" });
  try {
    const keyPath = `${dir}/signing.key`;
    await Deno.writeTextFile(keyPath, `${KEY_LINE}\n`, { mode: 0o600 });
    await Deno.chmod(keyPath, 0o600);
    const other = generateSigningKey().key.publicKey.text;
    await Deno.writeTextFile(`${dir}/trusted`, `# the monitor's list\n${other}\n`);
    const config = resolveConfig({
      flags: { "signing-key-file": keyPath },
      env: { TRUSTED_KEYS_FILE: `${dir}/trusted` },
    });
    assert.equal(config.sources.SIGNING_KEY_FILE, "--signing-key-file");
    await loadSigningSettings(config);
    assert.equal(config.signingKey?.publicKey.text, PUBLIC);
    assert.deepEqual([...config.trustedKeys!.keys()].sort(), [PUBLIC, other].sort());
    assert.ok(config.secrets.includes(KEY_LINE) && config.secrets.includes(SEED_B64));

    const listed = resolveConfig({ env: { TRUSTED_KEYS: other } });
    await loadSigningSettings(listed);
    assert.deepEqual([...listed.trustedKeys!.keys()], [other]);
    assert.equal(listed.signingKey, undefined);

    const none = resolveConfig({ env: {} });
    await loadSigningSettings(none);
    assert.equal(none.trustedKeys, undefined, "no key configured: no record is asked for");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
