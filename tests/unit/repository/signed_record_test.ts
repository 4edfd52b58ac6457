import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash, sign } from "node:crypto";
import {
  canonicalBytes,
  DOMAIN,
  MAX_SIGNED_RECORD_BYTES,
  type RecordFlaw,
  type SignedFields,
  SignedRecordError,
  signRecord,
  verifyRecord,
} from "../../../lib/repository/signed_record.ts";
import {
  parseSigningKey,
  parseTrustedKeys,
  signingKeyOf,
} from "../../../lib/config/signing_keys.ts";
import { multipartEtag } from "../../../lib/transfer/etag.ts";
import { EXIT } from "../../../lib/base/errors.ts";

// RFC 8032 §7.1 TEST 1's secret key, and a second key made from 32 bytes of 0x42.
const SEED_B64 = Buffer.from(
  "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
  "hex",
).toString("base64");
const SIGNER = parseSigningKey(`z3-sign-1:${SEED_B64}\n`, "/k");
const OTHER = signingKeyOf(new Uint8Array(32).fill(0x42));
const TRUSTED = parseTrustedKeys(undefined, { signing: SIGNER });
const md5 = (s: string) => createHash("md5").update(s).digest("hex");
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

/** A full, single PUT, with a properties sidecar. */
const FULL: SignedFields = {
  bucket: "backups",
  prefix: "z3/",
  key: "z3/tank/data@2026-12-08",
  dataset: "tank/data",
  snapshot: "2026-12-08",
  guid: "1234567890123456789",
  full: true,
  parent: null,
  parentGuid: null,
  created: 1_765_152_000,
  compressor: "zstd",
  encryption: "none",
  recipients: [],
  sendFlags: ["-L", "-c"],
  schedule: { base: 8 * 1024 * 1024, doubleEvery: 909, growAfter: 0 },
  storageClass: null,
  etag: md5("bytes"),
  size: 5,
  partMd5s: [md5("bytes")],
  sha256: sha("bytes"),
  propertiesSha256: sha("{}"),
};

const PARTS = [md5("a"), md5("b")];
/** An encrypted incremental, two parts. */
const INCREMENTAL: SignedFields = {
  ...FULL,
  key: "z3/tank/data@2026-12-09",
  snapshot: "2026-12-09",
  guid: "42",
  full: false,
  parent: "tank/data@2026-12-08",
  parentGuid: "1234567890123456789",
  encryption: "age",
  recipients: ["age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"],
  storageClass: "STANDARD_IA",
  etag: multipartEtag(PARTS.map((m) => new Uint8Array(Buffer.from(m, "hex")))),
  size: 10 * 1024 * 1024,
  partMd5s: PARTS,
  propertiesSha256: null,
};

const placeOf = (f: SignedFields) => ({ bucket: f.bucket, prefix: f.prefix, key: f.key });
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (s: string) => new TextEncoder().encode(s);
/** Every message a refusal produced, checked for secrets at the end of the file's tests. */
const messages: string[] = [];

/** Asserts that verifying `record` for `place` fails with `flaw` and a message matching `re`. */
function refused(
  record: Uint8Array | string,
  flaw: RecordFlaw,
  re: RegExp,
  place = placeOf(FULL),
) {
  const input = typeof record === "string" ? bytes(record) : record;
  assert.throws(() => verifyRecord(input, TRUSTED, place), (e) => {
    assert.ok(e instanceof SignedRecordError, String(e));
    assert.equal(e.exitCode, EXIT.integrity);
    assert.equal(e.flaw, flaw, e.message);
    assert.match(e.message, /^Cannot trust the signed record of "/);
    assert.match(e.message, re);
    messages.push(e.message);
    return true;
  });
}

/** The stored record of FULL with its JSON changed by `edit`, in z3's own spelling. */
// deno-lint-ignore no-explicit-any -- the tests write fields of any type on purpose
function edited(edit: (r: Record<string, any>) => void, fields = FULL): string {
  const record = JSON.parse(text(signRecord(fields, SIGNER)));
  edit(record);
  return JSON.stringify(record) + "\n";
}

Deno.test("signRecord() then verifyRecord() gives back every field, full and incremental", () => {
  for (const fields of [FULL, INCREMENTAL]) {
    const record = signRecord(fields, SIGNER);
    assert.deepEqual(verifyRecord(record, TRUSTED, placeOf(fields)), fields);
    assert.deepEqual(verifyRecord(record, TRUSTED, { ...placeOf(fields), prefix: "z3//" }), fields);
  }
  const stored = text(signRecord(FULL, SIGNER));
  assert.ok(stored.startsWith(`{"z3SignedRecord":1,"fields":{"bucket":"backups","prefix":"z3/",`));
  assert.ok(
    stored.endsWith(
      `"signer":"${SIGNER.publicKey.text}","signature":"${JSON.parse(stored).signature}"}\n`,
    ),
  );
});

Deno.test("canonicalBytes() is the domain line, the signer, then one line a field in order", () => {
  const signed = text(canonicalBytes(INCREMENTAL, SIGNER.publicKey.text));
  assert.equal(DOMAIN, "z3 signed record v1\n");
  assert.equal(
    signed,
    `z3 signed record v1
signer="${SIGNER.publicKey.text}"
bucket="backups"
prefix="z3/"
key="z3/tank/data@2026-12-09"
dataset="tank/data"
snapshot="2026-12-09"
guid="42"
full=false
parent="tank/data@2026-12-08"
parentGuid="1234567890123456789"
created=1765152000
compressor="zstd"
encryption="age"
recipients=["age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj"]
sendFlags=["-L","-c"]
schedule=[8388608,909,0]
storageClass="STANDARD_IA"
etag="${INCREMENTAL.etag}"
size=10485760
partMd5s=["${PARTS[0]}","${PARTS[1]}"]
sha256="${INCREMENTAL.sha256}"
propertiesSha256=null
`,
  );
  // A value cannot forge a line: JSON strings escape the newline.
  const sneaky = { ...FULL, compressor: "zstd\nsize=1" };
  assert.ok(text(canonicalBytes(sneaky, "k")).includes('compressor="zstd\\nsize=1"\n'));
});

Deno.test("verifyRecord() refuses a record whose signature has one byte flipped", () => {
  const record = edited((r) => {
    const sig = Buffer.from(r.signature, "base64");
    sig[10] ^= 0x01;
    r.signature = sig.toString("base64");
  });
  refused(record, "bad signature", /: its signature by z3ed25519:\S+ does not match its fields$/);
});

Deno.test("verifyRecord() refuses a record with one field changed after signing", () => {
  refused(edited((r) => r.fields.created += 1), "bad signature", /does not match its fields/);
  refused(edited((r) => r.fields.guid = "43"), "bad signature", /does not match its fields/);
  refused(
    edited((r) => {
      r.fields.full = false;
      r.fields.parent = "tank/data@old";
      r.fields.parentGuid = "7";
      r.fields.propertiesSha256 = null;
    }),
    "bad signature",
    /does not match its fields/,
  );
  refused(edited((r) => r.fields.sendFlags = ["-L"]), "bad signature", /does not match/);
});

Deno.test("verifyRecord() refuses a record signed by a key it does not trust, naming the key", () => {
  const record = signRecord(FULL, OTHER);
  refused(
    record,
    "untrusted key",
    new RegExp(
      `: it is signed by ${OTHER.publicKey.text.replace(/[+/]/g, "\\$&")}, which is not in ` +
        "TRUSTED_KEYS or TRUSTED_KEYS_FILE$",
    ),
  );
  // The same record with the trusted key's name on it does not verify either.
  refused(
    edited((r) => r.signer = SIGNER.publicKey.text, FULL).replace(
      /"signature":"[^"]+"/,
      `"signature":"${JSON.parse(text(record)).signature}"`,
    ),
    "bad signature",
    /does not match its fields/,
  );
  const both = parseTrustedKeys(OTHER.publicKey.text, { signing: SIGNER });
  assert.deepEqual(verifyRecord(record, both, placeOf(FULL)), FULL);
});

Deno.test("verifyRecord() refuses a good record replayed for another object, prefix or bucket", () => {
  const record = signRecord(FULL, SIGNER);
  refused(record, "misplaced", /signed for "s3:\/\/backups\/z3\/tank\/data@2026-12-08"/, {
    ...placeOf(FULL),
    key: "z3/tank/data@2026-12-09",
  });
  refused(record, "misplaced", /under prefix "z3\/", not for .* under "other\/"$/, {
    ...placeOf(FULL),
    prefix: "other",
  });
  refused(record, "misplaced", /not for "s3:\/\/mirror\/z3\/tank\/data@2026-12-08"/, {
    ...placeOf(FULL),
    bucket: "mirror",
  });
});

Deno.test("verifyRecord() calls a record without a signature unsigned", () => {
  const legacy = JSON.stringify({ etag: FULL.etag, size: 5, guid: FULL.guid, full: true });
  refused(legacy, "unsigned", /: it carries no signature/);
  refused(edited((r) => delete r.signature), "unsigned", /carries no signature/);
});

Deno.test("verifyRecord() refuses an oversize or malformed record", () => {
  const good = text(signRecord(FULL, SIGNER));
  refused(new Uint8Array(MAX_SIGNED_RECORD_BYTES + 1), "malformed", /: it is 1048577 bytes/);
  refused(new Uint8Array([0x7b, 0xff, 0x7d]), "malformed", /: it is not UTF-8 text$/);
  refused("", "malformed", /: it is not JSON$/);
  refused(good.slice(0, 200), "malformed", /: it is not JSON$/);
  refused("[1]", "malformed", /: it is not a JSON object$/);
  refused(edited((r) => r.extra = 1), "malformed", /it holds an unknown field "extra"$/);
  refused(edited((r) => r.z3SignedRecord = 2), "malformed", /its version is not 1/);
  refused(edited((r) => r.signer = "z3ed25519:AAAA"), "malformed", /signer is not a z3 public/);
  refused(edited((r) => r.signature = "AAAA"), "malformed", /signature is not 64 bytes/);
  refused(edited((r) => r.fields.size = "5"), "malformed", /"size" must be a whole number/);
  refused(edited((r) => r.fields.size = -5), "malformed", /"size" must be a whole number/);
  refused(edited((r) => r.fields.size = 2 ** 53), "malformed", /"size" must be a whole number/);
  refused(edited((r) => r.fields.full = "true"), "malformed", /"full" must be true or false/);
  refused(edited((r) => r.fields.guid = "0042"), "malformed", /"guid" must be a GUID/);
  refused(edited((r) => r.fields.partMd5s = [1]), "malformed", /"partMd5s" item 1 must be an MD5/);
  refused(edited((r) => r.fields.dataset = "a@b"), "malformed", /"dataset" must be a dataset/);
  refused(edited((r) => r.fields.key = "x\ny"), "malformed", /"key" must be a non-empty print/);
  refused(edited((r) => r.fields.schedule.extra = 1), "malformed", /"schedule" must hold exactly/);
  refused(edited((r) => r.fields.etag = `"${FULL.etag}"`), "malformed", /"etag" must be an S3/);
  refused(edited((r) => r.fields.ownerOverride = true), "malformed", /unknown field "ownerOverr/);
  refused(edited((r) => delete r.fields.sha256), "malformed", /it has no field "sha256"$/);
  // Valid JSON of the same values, but not the bytes z3 writes.
  const notCanonical = /not byte for byte what z3 writes/;
  refused(good.replace('"size":5,', '"size":5.0,'), "malformed", notCanonical);
  refused(good.replace('"size":5,', '"size":5e0,'), "malformed", notCanonical);
  refused(good.replace('"size":5,', '"size": 5,'), "malformed", notCanonical);
  refused(
    good.replace('"bucket":"backups"', '"bucket":"back\\u0075ps"'),
    "malformed",
    notCanonical,
  );
  refused(good.trimEnd(), "malformed", notCanonical);
  refused(JSON.stringify(JSON.parse(good), null, 2) + "\n", "malformed", notCanonical);
  const reordered = JSON.parse(good);
  const { bucket, ...rest } = reordered.fields;
  refused(
    JSON.stringify({ ...reordered, fields: { ...rest, bucket } }) + "\n",
    "malformed",
    notCanonical,
  );
  refused(
    good.replace('"bucket":"backups"', '"bucket":"evil","bucket":"backups"'),
    "malformed",
    notCanonical,
  );
});

Deno.test("verifyRecord() refuses signed fields that disagree with each other", () => {
  // What signRecord() refuses to sign, signed by hand with the trusted key.
  const signedByHand = (fields: SignedFields) => {
    const signature = sign(null, canonicalBytes(fields, SIGNER.publicKey.text), SIGNER.key);
    return JSON.stringify({
      z3SignedRecord: 1,
      fields,
      signer: SIGNER.publicKey.text,
      signature: signature.toString("base64"),
    }) + "\n";
  };
  const cases: [Partial<SignedFields>, RegExp][] = [
    [{ key: "z3/tank/data@other" }, /its key is not the key of its dataset and snapshot/],
    [{ prefix: "z3", key: "z3tank/data@2026-12-08" }, /its prefix is not in normal form/],
    [{ parent: "tank/data@x" }, /a full has no parent/],
    [{ recipients: INCREMENTAL.recipients }, /an encrypted object has recipients/],
    [{ etag: md5("other") }, /its part MD5s do not make its ETag/],
  ];
  for (const [change, re] of cases) {
    const fields = { ...FULL, ...change };
    refused(signedByHand(fields), "malformed", re, placeOf(fields));
    assert.throws(() => signRecord(fields, SIGNER), (e) => {
      assert.ok(!(e instanceof SignedRecordError));
      assert.match((e as Error).message, /^Cannot sign the record of "/);
      messages.push((e as Error).message);
      return true;
    });
  }
  const incremental = { ...INCREMENTAL, propertiesSha256: sha("{}") };
  refused(
    signedByHand(incremental),
    "malformed",
    /an incremental has no properties/,
    placeOf(incremental),
  );
});

Deno.test("no refusal above shows a secret", () => {
  assert.ok(messages.length > 40, `${messages.length} messages`);
  const seedHex = Buffer.from(SEED_B64, "base64").toString("hex");
  for (const message of messages) {
    for (const secret of [SEED_B64, seedHex, "z3-sign-1:", SEED_B64.slice(0, 12)]) {
      assert.ok(!message.includes(secret), message);
    }
  }
});
