import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, hkdfSync, randomBytes } from "node:crypto";
import {
  AGE_META,
  checkIdentity,
  CHUNK,
  encodeHeader,
  encryptStream,
  openAge,
} from "../../../lib/pipeline/age.ts";
import {
  bech32Decode,
  identityOf,
  parseIdentities,
  parseRecipient,
  parseRecipients,
} from "../../../lib/config/age_keys.ts";
import { IntegrityError, UsageError } from "../../../lib/base/errors.ts";

// The X25519 example of the age spec (c2sp.org/age, "The X25519 recipient type").
const SPEC_IDENTITY = "AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX";
const SPEC_RECIPIENT = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";

// $ printf 'z3 age fixture\n' | age -r age1zvkyg2lq…unujwj | base64 -w0   (Debian age 1.1.1)
const AGE_CLI_FIXTURE =
  "YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBuK21lWG9EY29NZjU5MTRpMGhFNGNaTjFpUU1TMWxnYldJNnNTY1RIeVZNCjI3cTVwaE9MaEo0ZFhheis4b2ZZWVA2TmNJMmJZL2JqRlptNVlBeTU1TlUKLS0tIGI2cmtLTFUvOUp4Tkp3Z002QmgwNllremZpckJqSm03WThHbVNYK1BGMXMKqME7FdSAlnul4eCdOP9n/madbrYzOYc+y9JHpn2tPgs6JUmsAn8s9Qc5FQtSM54=";

/** A stream of `bytes` cut into pieces of `piece` bytes. */
function streamOf(bytes: Uint8Array, piece = 7919): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= bytes.length) return c.close();
      c.enqueue(bytes.slice(off, off + piece));
      off += piece;
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function encrypt(plain: Uint8Array, recipients = [parseRecipient(SPEC_RECIPIENT, "t")]) {
  return await collect(encryptStream(streamOf(plain), recipients));
}

async function decrypt(sealed: Uint8Array, identities = parseIdentities(SPEC_IDENTITY, "k.txt")) {
  return await collect(await openAge(streamOf(sealed, 5000), identities, { label: "obj" }));
}

Deno.test("identityOf() derives the age spec's X25519 recipient from its identity", () => {
  const [id] = parseIdentities(`# created: now\n# public key: x\n${SPEC_IDENTITY}\n`, "k.txt");
  assert.equal(id.recipient.text, SPEC_RECIPIENT);
  assert.deepEqual(
    identityOf(bech32Decode(SPEC_IDENTITY)!.bytes).recipient.publicKey,
    parseRecipient(SPEC_RECIPIENT, "t").publicKey,
  );
});

Deno.test("openAge() decrypts a file written by the age CLI", async () => {
  const plain = await decrypt(new Uint8Array(Buffer.from(AGE_CLI_FIXTURE, "base64")));
  assert.equal(new TextDecoder().decode(plain), "z3 age fixture\n");
});

Deno.test("encryptStream() then openAge() round-trips at every chunk boundary", async () => {
  for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 5]) {
    const plain = new Uint8Array(randomBytes(size));
    const sealed = await encrypt(plain);
    assert.equal(
      sealed.length - plain.length > 16 * Math.max(1, Math.ceil(size / CHUNK)),
      true,
      `${size}: overhead`,
    );
    assert.deepEqual(await decrypt(sealed), plain, `size ${size}`);
  }
});

Deno.test("encryptStream() writes to every recipient; each identity decrypts alone", async () => {
  const a = identityOf(new Uint8Array(randomBytes(32)));
  const b = identityOf(new Uint8Array(randomBytes(32)));
  const plain = new Uint8Array(randomBytes(1000));
  const sealed = await encrypt(plain, [a.recipient, b.recipient]);
  assert.deepEqual(await decrypt(sealed, [b]), plain);
  assert.deepEqual(await decrypt(sealed, [a]), plain);
});

Deno.test("openAge() refuses an identity of no recipient before yielding, naming AGE_IDENTITY_FILE", async () => {
  const sealed = await encrypt(new Uint8Array(100));
  const other = identityOf(new Uint8Array(randomBytes(32)));
  await assert.rejects(
    openAge(streamOf(sealed), [other], { label: "obj", identityFile: "/k/other.txt" }),
    (err) =>
      err instanceof UsageError &&
      err.message ===
        'Cannot decrypt "obj": no identity in AGE_IDENTITY_FILE /k/other.txt matches its age recipients',
  );
  await assert.rejects(
    openAge(streamOf(sealed), [], { label: "obj" }),
    (err) => err instanceof UsageError && /set AGE_IDENTITY_FILE/.test(err.message),
  );
});

Deno.test("openAge() fails a flipped payload byte, a cut file and trailing bytes as integrity errors", async () => {
  const plain = new Uint8Array(randomBytes(3 * CHUNK + 100));
  const sealed = await encrypt(plain);
  const headerEnd = sealed.indexOf(0x0a, Buffer.from(sealed).indexOf("\n--- ") + 1) + 1;
  const cases: [string, Uint8Array, RegExp][] = [];
  for (const at of [headerEnd + 20, headerEnd + 16 + CHUNK + 40, sealed.length - 1]) {
    const flipped = sealed.slice();
    flipped[at] ^= 1;
    cases.push([`flip at ${at}`, flipped, /does not authenticate/]);
  }
  const macFlip = sealed.slice();
  macFlip[headerEnd - 5] ^= 1;
  cases.push(["flipped MAC", macFlip, /./]);
  // Cut at a chunk boundary (the chunks before it are whole) and inside one.
  const boundary = headerEnd + 16 + 2 * (CHUNK + 16);
  cases.push(["cut at a chunk boundary", sealed.slice(0, boundary), /final/]);
  cases.push(["cut inside a chunk", sealed.slice(0, sealed.length - 50), /does not authenticate/]);
  cases.push(["cut in the header", sealed.slice(0, 30), /header/]);
  cases.push(["trailing bytes", new Uint8Array([...sealed, 1, 2, 3]), /does not authenticate/]);
  for (const [what, bytes, pattern] of cases) {
    await assert.rejects(
      decrypt(bytes),
      (err) => err instanceof IntegrityError && pattern.test(err.message),
      what,
    );
  }
  // A plaintext of whole chunks cut after a whole chunk: the rest lacks its final flag.
  const whole = await encrypt(new Uint8Array(2 * CHUNK));
  await assert.rejects(
    decrypt(whole.slice(0, whole.length - (CHUNK + 16))),
    (err) => err instanceof IntegrityError && /final/.test(err.message),
  );
});

Deno.test("openAge() yields only authenticated chunks: a flipped chunk 2 stops after chunk 1", async () => {
  const plain = new Uint8Array(randomBytes(3 * CHUNK));
  const sealed = await encrypt(plain);
  const headerEnd = sealed.indexOf(0x0a, Buffer.from(sealed).indexOf("\n--- ") + 1) + 1;
  sealed[headerEnd + 16 + (CHUNK + 16) + 3] ^= 0x80;
  const reader = (await openAge(streamOf(sealed), parseIdentities(SPEC_IDENTITY, "k"), {
    label: "obj",
  })).getReader();
  const first = await reader.read();
  assert.deepEqual(first.value, plain.subarray(0, CHUNK));
  await assert.rejects(reader.read(), /its chunk 1 does not authenticate/);
});

Deno.test("openAge() says a plain stream is not an age file", async () => {
  await assert.rejects(
    decrypt(new TextEncoder().encode("x".repeat(70000))),
    (err) => err instanceof IntegrityError && /not an age/.test(err.message),
  );
});

Deno.test("parseRecipients() reads a list and a file, refuses a bad key naming the setting", () => {
  const file = { path: "/etc/r.txt", text: `# backup keys\n\n${SPEC_RECIPIENT}\n` };
  const other = identityOf(new Uint8Array(randomBytes(32))).recipient.text;
  assert.deepEqual(
    parseRecipients(` ${other} ,${SPEC_RECIPIENT}`, file).map((r) => r.text),
    [other, SPEC_RECIPIENT],
  );
  assert.throws(
    () => parseRecipients("age1nope"),
    (e) =>
      e instanceof UsageError &&
      e.message.startsWith('Cannot use AGE_RECIPIENTS recipient "age1nope": not an age X25519'),
  );
  assert.throws(
    () => parseRecipients(undefined, { path: "/r", text: `${SPEC_RECIPIENT}x\n` }),
    /AGE_RECIPIENTS_FILE \/r:1/,
  );
  assert.throws(() => parseRecipients(SPEC_IDENTITY), UsageError); // a secret is no recipient
});

Deno.test("parseIdentities() refuses a bad line without printing it", () => {
  const broken = SPEC_IDENTITY.slice(0, -1) + "Q";
  assert.throws(
    () => parseIdentities(`# c\n${broken}\n`, "/k.txt"),
    (e) =>
      e instanceof UsageError && e.message.includes("AGE_IDENTITY_FILE /k.txt: line 2") &&
      !e.message.includes(broken.slice(16, 40)),
  );
  assert.throws(() => parseIdentities("# only comments\n", "/k.txt"), /holds no AGE-SECRET-KEY/);
});

Deno.test("checkIdentity() refuses, from metadata, no identity or one of no listed recipient", () => {
  const mine = parseIdentities(SPEC_IDENTITY, "k");
  const meta = { [AGE_META.encryption]: "age", [AGE_META.recipients]: SPEC_RECIPIENT };
  checkIdentity("o", meta, mine);
  checkIdentity("o", {}, []); // not encrypted
  assert.throws(() => checkIdentity("o", meta, []), /set AGE_IDENTITY_FILE/);
  const other = [identityOf(new Uint8Array(randomBytes(32)))];
  assert.throws(() => checkIdentity("o", meta, other, "/k"), /AGE_IDENTITY_FILE \/k matches/);
});

Deno.test("openAge() refuses an empty final chunk after a full one, as the spec requires", async () => {
  // Sealed by hand as the spec says: payload key = HKDF(file key, nonce, "payload"), chunk nonce
  // = 11-byte counter || final flag.
  const fileKey = new Uint8Array(randomBytes(16));
  const nonce = new Uint8Array(randomBytes(16));
  const key = new Uint8Array(hkdfSync("sha256", fileKey, nonce, "payload", 32));
  const sealChunk = (plain: Uint8Array, counter: number, last: boolean) => {
    const n = new Uint8Array(12);
    n[10] = counter;
    n[11] = last ? 1 : 0;
    const c = createCipheriv("chacha20-poly1305", key, n, { authTagLength: 16 });
    return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  };
  const header = encodeHeader(fileKey, [parseRecipient(SPEC_RECIPIENT, "t")]);
  const plain = new Uint8Array(randomBytes(CHUNK));
  const good = Buffer.concat([header, nonce, sealChunk(plain, 0, true)]);
  assert.deepEqual(await decrypt(new Uint8Array(good)), plain); // the hand sealing is right
  const emptyLast = Buffer.concat([
    header,
    nonce,
    sealChunk(plain, 0, false),
    sealChunk(new Uint8Array(0), 1, true),
  ]);
  await assert.rejects(decrypt(new Uint8Array(emptyLast)), /its final chunk is empty/);
});
