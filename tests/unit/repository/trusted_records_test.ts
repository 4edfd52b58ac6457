/**
 * Signed records read and acted on (`trusted_records.ts`), against a store of a few objects in
 * memory: what status, check and prune see of each object, and what restore/get/verify inspect.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  AGE_METADATA,
  backupRemote,
  overlaySigned,
  refuseForeign,
  refuseMixedEncryption,
  signedProperties,
  trustRemote,
} from "../../../lib/repository/trusted_records.ts";
import { inspectHeaded, openVerified } from "../../../lib/repository/verified_object.ts";
import { uploadedFields } from "../../../lib/repository/record_upload.ts";
import { rerecord } from "../../../lib/repository/rerecord.ts";
import { adoptObject } from "../../../lib/repository/adopt.ts";
import {
  type SignedFields,
  SignedRecordError,
  signRecord,
  verifyRecord,
} from "../../../lib/repository/signed_record.ts";
import { checkKey } from "../../../lib/repository/check_records.ts";
import { generateSigningKey, parseTrustedKeys } from "../../../lib/config/signing_keys.ts";
import { resolveConfig } from "../../../lib/config/config.ts";
import { parseRemote } from "../../../lib/chain/metadata.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";
import type { ObjectInfo, S3Store } from "../../../lib/backend/s3.ts";
import { ChainError, EXIT } from "../../../lib/base/errors.ts";
import { AGE_META } from "../../../lib/pipeline/age.ts";

const SIGNER = generateSigningKey().key;
const STRANGER = generateSigningKey().key;
const BUCKET = "b";
const PREFIX = "z3-backup/";

/** A store of `objects` (key → bytes, metadata) in memory. */
function memoryStore(
  objects: Map<string, { bytes: Uint8Array; metadata: Record<string, string> }>,
) {
  return {
    bucket: BUCKET,
    head(key: string): Promise<ObjectInfo | undefined> {
      const o = objects.get(key);
      if (!o) return Promise.resolve(undefined);
      const etag = createHash("md5").update(o.bytes).digest("hex");
      return Promise.resolve({
        key,
        size: o.bytes.length,
        etag,
        metadata: { ...o.metadata },
        encryption: {},
        lockHeaders: {},
      });
    },
    get(key: string): Promise<ReadableStream<Uint8Array>> {
      const bytes = objects.get(key)!.bytes;
      return Promise.resolve(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream());
    },
    getInto(key: string, into: Uint8Array, options: { start: number; end: number }) {
      const bytes = objects.get(key)!.bytes.subarray(options.start, options.end + 1);
      into.set(bytes);
      return Promise.resolve({
        bytes: into.subarray(0, bytes.length),
        filled: bytes.length,
        more: false,
      });
    },
    put(key: string, body: Uint8Array) {
      objects.set(key, { bytes: body, metadata: {} });
      return Promise.resolve("etag");
    },
  } as unknown as S3Store;
}

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** The signed fields of an object holding `bytes` at `dataset@snap`. */
function fieldsOf(snap: string, bytes: Uint8Array, parent?: string): SignedFields {
  return {
    bucket: BUCKET,
    prefix: PREFIX,
    key: `${PREFIX}pool/fs@${snap}`,
    dataset: "pool/fs",
    snapshot: snap,
    guid: String(100 + snap.charCodeAt(0)),
    full: parent === undefined,
    parent: parent === undefined ? null : `pool/fs@${parent}`,
    parentGuid: parent === undefined ? null : String(100 + parent.charCodeAt(0)),
    created: 1000 + snap.charCodeAt(0),
    compressor: "zstd",
    encryption: "none",
    recipients: [],
    sendFlags: [],
    schedule: { base: 8 << 20, doubleEvery: 0, growAfter: 0 },
    storageClass: null,
    etag: md5(bytes),
    size: bytes.length,
    partMd5s: [md5(bytes)],
    sha256: sha(bytes),
    propertiesSha256: null,
  };
}

const text = (s: string) => new TextEncoder().encode(s);
const A = text("the full a");
const B = text("the incremental b");

/** A bucket with a signed full `a` and a signed incremental `b` on it, metadata as z3 writes. */
function signedBucket() {
  const objects = new Map<string, { bytes: Uint8Array; metadata: Record<string, string> }>();
  const meta = { "z3-version": "1", "z3-part-size": String(8 << 20), "z3-part-double-every": "0" };
  objects.set(`${PREFIX}pool/fs@a`, {
    bytes: A,
    metadata: { ...meta, isfull: "true", "z3-guid": "197", "z3-created": "1097" },
  });
  objects.set(`${PREFIX}pool/fs@b`, {
    bytes: B,
    metadata: {
      ...meta,
      parent: "pool/fs@a",
      "z3-guid": "198",
      "z3-parent-guid": "197",
      "z3-created": "1098",
    },
  });
  objects.set(checkKey(PREFIX, "pool/fs@a"), {
    bytes: signRecord(fieldsOf("a", A), SIGNER),
    metadata: {},
  });
  objects.set(checkKey(PREFIX, "pool/fs@b"), {
    bytes: signRecord(fieldsOf("b", B, "a"), SIGNER),
    metadata: {},
  });
  return objects;
}

const trusting = () => {
  const config = resolveConfig({ env: { BUCKET } });
  config.trustedKeys = parseTrustedKeys(undefined, { signing: SIGNER });
  return config;
};

/** The listing of `objects` as `loadRemote` makes it. */
async function listing(store: S3Store, objects: Map<string, unknown>) {
  const remote = new Map<string, RemoteSnapshot>();
  for (const key of objects.keys()) {
    const info = (await store.head(key))!;
    const snap = parseRemote(PREFIX, "pool/fs", key, info.metadata, info.size);
    if (!snap) continue;
    snap.etag = info.etag;
    remote.set(snap.name, snap);
  }
  return remote;
}

Deno.test("trustRemote() takes each signed object's fields from its record, not its metadata", async () => {
  const objects = signedBucket();
  // A copy-object rewrite: b claims to be a full created at 0.
  const b = objects.get(`${PREFIX}pool/fs@b`)!;
  b.metadata = { ...b.metadata, isfull: "true", "z3-created": "0", compressor: "none" };
  delete b.metadata.parent;
  const store = memoryStore(objects);
  const remote = await listing(store, objects);
  assert.equal(remote.get("pool/fs@b")!.isFull, true);
  const flaws = await trustRemote(store, trusting(), remote);
  assert.deepEqual([...flaws], []);
  const got = remote.get("pool/fs@b")!;
  assert.deepEqual(
    [got.isFull, got.parent, got.parentGuid, got.created, got.compressor],
    [false, "pool/fs@a", "197", 1098, "zstd"],
  );
  assert.equal(got.metadata.isfull, undefined);
  assert.equal(got.metadata["z3-created"], "1098");
});

Deno.test("trustRemote() flags unsigned, foreign-signed, flipped, replaced and legacy objects", async () => {
  const objects = signedBucket();
  const put = (snap: string, bytes: Uint8Array, metadata: Record<string, string> = {}) =>
    objects.set(`${PREFIX}pool/fs@${snap}`, { bytes, metadata });
  const record = (snap: string, bytes: Uint8Array) =>
    objects.set(checkKey(PREFIX, `pool/fs@${snap}`), { bytes, metadata: {} });
  // c: an object and a plain check record, both forged.
  put("c", text("forged c"), { "z3-version": "1", parent: "pool/fs@b" });
  record("c", text(JSON.stringify({ etag: md5(text("forged c")), size: 8 }) + "\n"));
  // d: signed by a key nobody trusts.
  put("d", text("d"), { isfull: "true" });
  record("d", signRecord(fieldsOf("d", text("d")), STRANGER));
  // e: signature bytes flipped.
  put("e", text("e"), { isfull: "true" });
  const flipped = new TextDecoder().decode(signRecord(fieldsOf("e", text("e")), SIGNER))
    .replace(/"signature":"(.)/, (_m, c) => `"signature":"${c === "A" ? "B" : "A"}`);
  record("e", text(flipped));
  // f: an object of the original z3 (no z3-version, no record).
  put("f", text("legacy"), { isfull: "true" });
  // b: replaced by other bytes, its signed record kept.
  objects.get(`${PREFIX}pool/fs@b`)!.bytes = text("other bytes");
  const store = memoryStore(objects);
  const flaws = await trustRemote(store, trusting(), await listing(store, objects));
  const health = Object.fromEntries([...flaws].map(([name, f]) => [name, f.health]));
  assert.deepEqual(health, {
    "pool/fs@b": "record mismatch",
    "pool/fs@c": "unsigned",
    "pool/fs@d": "bad signature",
    "pool/fs@e": "bad signature",
    "pool/fs@f": "unsigned",
  });
  assert.match(flaws.get("pool/fs@d")!.detail, /not in TRUSTED_KEYS/);
  assert.match(flaws.get("pool/fs@f")!.detail, /z3 verify --adopt/);
});

Deno.test("trustRemote() without trusted keys reads check records as before signing", async () => {
  const objects = signedBucket();
  objects.set(`${PREFIX}pool/fs@f`, { bytes: text("legacy"), metadata: { isfull: "true" } });
  const store = memoryStore(objects);
  const config = resolveConfig({ env: { BUCKET } });
  // Signed records read as the check records they state; the legacy object needs none.
  assert.deepEqual([...(await trustRemote(store, config, await listing(store, objects)))], []);
  objects.get(`${PREFIX}pool/fs@b`)!.bytes = text("other bytes");
  const flaws = await trustRemote(store, config, await listing(store, objects));
  assert.deepEqual([...flaws].map(([name, f]) => [name, f.health]), [
    ["pool/fs@b", "record mismatch"],
  ]);
});

Deno.test("inspectHeaded() with trusted keys refuses an unsigned object (exit 6) and uses signed metadata", async () => {
  const objects = signedBucket();
  objects.set(`${PREFIX}pool/fs@x`, {
    bytes: text("x"),
    metadata: { "z3-version": "1", isfull: "true" },
  });
  const store = memoryStore(objects);
  const config = trusting();
  await assert.rejects(
    async () => await inspectHeaded(store, (await store.head(`${PREFIX}pool/fs@x`))!, config),
    (e) => e instanceof SignedRecordError && e.flaw === "unsigned" && e.exitCode === EXIT.integrity,
  );
  const info = (await store.head(`${PREFIX}pool/fs@b`))!;
  info.metadata.compressor = "none";
  const expected = await inspectHeaded(store, info, config);
  assert.deepEqual(expected.parts, [md5(B)]);
  assert.equal(info.metadata.compressor, "zstd", "the signed compressor, not the listed one");
});

Deno.test("backupRemote() and refuseForeign() stop a backup at a foreign object where it uploads (exit 5)", async () => {
  const objects = signedBucket();
  objects.set(`${PREFIX}pool/fs@c`, { bytes: text("placeholder"), metadata: {} });
  const store = memoryStore(objects);
  const { remote, foreign } = await backupRemote(store, trusting(), await listing(store, objects));
  assert.deepEqual([...remote.keys()].sort(), ["pool/fs@a", "pool/fs@b"]);
  assert.deepEqual([...foreign.keys()], ["pool/fs@c"]);
  const keyOf = (name: string) => `${PREFIX}${name}`;
  refuseForeign(["pool/fs@d"], foreign, keyOf);
  assert.throws(
    () => refuseForeign(["pool/fs@c", "pool/fs@d"], foreign, keyOf),
    (e) =>
      e instanceof ChainError && e.exitCode === EXIT.chain &&
      /Cannot back up "pool\/fs@c": the bucket holds an object z3 did not write/.test(e.message) &&
      e.message.includes(`"${PREFIX}pool/fs@c" (unsigned)`),
  );
});

Deno.test("refuseMixedEncryption() refuses a plaintext object in a chain signed encrypted", () => {
  const config = trusting();
  const snap = (name: string, age: boolean) =>
    ({ name, metadata: age ? { "z3-encryption": "age" } : {} }) as unknown as RemoteSnapshot;
  refuseMixedEncryption(config, [snap("p@a", true), snap("p@b", true)]);
  refuseMixedEncryption(config, [snap("p@a", false), snap("p@b", false)]);
  assert.throws(
    () => refuseMixedEncryption(config, [snap("p@a", true), snap("p@b", false)]),
    (e) => e instanceof Error && /"p@b": its signed record says plaintext/.test(e.message),
  );
  refuseMixedEncryption(resolveConfig({ env: {} }), [snap("p@a", true), snap("p@b", false)]);
});

Deno.test("uploadedFields() signs what the upload made, and verifyRecord() reads it back", () => {
  const config = resolveConfig({ env: { BUCKET, COMPRESSOR: "zstd" } });
  const fields = uploadedFields(config, BUCKET, {
    snapshot: { name: "pool/fs@b", snapshot: "b", guid: "198", creation: 1098, createtxg: 5 },
    from: { name: "pool/fs@a", snapshot: "a", guid: "197", creation: 1097, createtxg: 4 },
    key: `${PREFIX}pool/fs@b`,
    result: {
      key: `${PREFIX}pool/fs@b`,
      etag: md5(B),
      bytes: B.length,
      parts: 1,
      resumedParts: 0,
      partMd5s: [md5(B)],
      sha256: sha(B),
    },
    metadata: {
      compressor: "zstd",
      "z3-send-flags": "-L -c",
      "z3-encryption": "age",
      "z3-age-recipients": "age1x,age1y",
      "z3-part-size": String(8 << 20),
      "z3-part-double-every": "0",
    },
  });
  const trusted = parseTrustedKeys(undefined, { signing: SIGNER });
  const place = { bucket: BUCKET, prefix: PREFIX, key: `${PREFIX}pool/fs@b` };
  const read = verifyRecord(signRecord(fields, SIGNER), trusted, place);
  assert.deepEqual(
    [read.full, read.parent, read.parentGuid, read.created, read.sendFlags, read.recipients],
    [false, "pool/fs@a", "197", 1098, ["-L", "-c"], ["age1x", "age1y"]],
  );
  assert.equal(read.sha256, sha(B));
  assert.throws(
    () => uploadedFields(config, BUCKET, { ...fieldsArgs(), result: { ...fieldsArgs().result } }),
    /no SHA-256/,
  );
});

function fieldsArgs() {
  return {
    snapshot: { name: "pool/fs@a", snapshot: "a", guid: "1", creation: 1, createtxg: 1 },
    key: `${PREFIX}pool/fs@a`,
    result: { key: "k", etag: md5(A), bytes: A.length, parts: 1, resumedParts: 0, partMd5s: [] },
    metadata: {},
  };
}

Deno.test("rerecord() never writes a record where trusted keys are configured", async () => {
  const objects = signedBucket();
  const store = memoryStore(objects);
  const snap = (await listing(store, objects)).get("pool/fs@a")!;
  await assert.rejects(
    () => rerecord(trusting(), store, snap, { action: "repair" }),
    (e) =>
      e instanceof Error && /Cannot repair "pool\/fs@a": it has no signed record/.test(e.message) &&
      /z3 verify --adopt/.test(e.message),
  );
});

Deno.test("AGE_METADATA names the keys pipeline/age.ts writes", () => {
  assert.deepEqual(AGE_METADATA, AGE_META);
});

Deno.test("adoptObject() checks an unsigned object's bytes, then signs its record; refuses what it cannot check", async () => {
  const objects = signedBucket();
  const meta = { "z3-version": "1", "z3-part-size": String(8 << 20), "z3-part-double-every": "0" };
  const C = text("incremental c");
  objects.set(`${PREFIX}pool/fs@c`, {
    bytes: C,
    metadata: {
      ...meta,
      parent: "pool/fs@b",
      "z3-guid": "199",
      "z3-parent-guid": "198",
      "z3-created": "1099",
      compressor: "zstd",
    },
  });
  // Its plain check record, as a z3 without signing wrote it.
  objects.set(checkKey(PREFIX, "pool/fs@c"), {
    bytes: text(
      JSON.stringify({
        etag: md5(C),
        size: C.length,
        guid: "199",
        full: false,
        parent: "pool/fs@b",
        parentGuid: "198",
        parts: [md5(C)],
      }) + "\n",
    ),
    metadata: {},
  });
  objects.set(`${PREFIX}pool/fs@legacy`, { bytes: text("old"), metadata: { isfull: "true" } });
  const store = memoryStore(objects);
  const config = trusting();
  config.signingKey = SIGNER;
  const remote = await listing(store, objects);
  assert.deepEqual([...(await trustRemote(store, config, remote)).keys()].sort(), [
    "pool/fs@c",
    "pool/fs@legacy",
  ]);
  const fields = await adoptObject(config, store, remote.get("pool/fs@c")!);
  assert.deepEqual([fields.parent, fields.created, fields.sha256], ["pool/fs@b", 1099, sha(C)]);
  await assert.rejects(
    () => adoptObject(config, store, remote.get("pool/fs@legacy")!),
    (e) => e instanceof Error && /Cannot adopt "pool\/fs@legacy"/.test(e.message),
  );
  // A z3 object whose bytes changed since its check record: not adopted, record untouched.
  objects.get(`${PREFIX}pool/fs@b`)!.bytes = text("changed");
  const before = objects.get(checkKey(PREFIX, "pool/fs@b"))!.bytes;
  await assert.rejects(
    () => adoptObject(config, store, remote.get("pool/fs@b")!),
    /changed in the bucket/,
  );
  assert.equal(objects.get(checkKey(PREFIX, "pool/fs@b"))!.bytes, before);
  const after = await trustRemote(store, config, await listing(store, objects));
  assert.deepEqual([...after.keys()].sort(), ["pool/fs@b", "pool/fs@legacy"]);
  const noKey = trusting();
  await assert.rejects(
    () => adoptObject(noKey, store, remote.get("pool/fs@a")!),
    /set SIGNING_KEY_FILE/,
  );
});

Deno.test("openVerified() with trusted keys fails at the end of bytes whose SHA-256 is not the signed one", async () => {
  const objects = signedBucket();
  const wrong = { ...fieldsOf("b", B, "a"), sha256: sha(text("something else")) };
  objects.set(checkKey(PREFIX, "pool/fs@b"), { bytes: signRecord(wrong, SIGNER), metadata: {} });
  const store = memoryStore(objects);
  const config = trusting();
  const stream = await openVerified(store, `${PREFIX}pool/fs@b`, config, { err: () => {} });
  const chunks: Uint8Array[] = [];
  await assert.rejects(
    () => stream.pipeTo(new WritableStream({ write: (c) => void chunks.push(c) })),
    (e) => e instanceof Error && /hash to SHA-256 .*, its signed record says/.test(e.message),
  );
  assert.equal(chunks.reduce((n, c) => n + c.length, 0), 0, "the held-back tail never came out");
  const good = await openVerified(store, `${PREFIX}pool/fs@a`, config, { err: () => {} });
  assert.deepEqual(new Uint8Array(await new Response(good).arrayBuffer()), A);
});

Deno.test("a full's signed properties SHA-256 is what restore --properties checks the sidecar by", () => {
  const full = { ...fieldsOf("a", A), propertiesSha256: sha(text("sidecar")) };
  const trusted = parseTrustedKeys(undefined, { signing: SIGNER });
  const place = { bucket: BUCKET, prefix: PREFIX, key: full.key };
  const read = verifyRecord(signRecord(full, SIGNER), trusted, place);
  const snap = { name: "pool/fs@a", metadata: { "z3-version": "1" } } as unknown as RemoteSnapshot;
  overlaySigned(snap, read);
  assert.deepEqual(signedProperties(trusting(), snap), { sha256: sha(text("sidecar")) });
  overlaySigned(snap, fieldsOf("a", A));
  assert.deepEqual(signedProperties(trusting(), snap), { sha256: null });
  assert.equal(signedProperties(resolveConfig({ env: {} }), snap), undefined);
  const uploaded = uploadedFields(resolveConfig({ env: {} }), BUCKET, {
    ...fieldsArgs(),
    result: { ...fieldsArgs().result, partMd5s: [md5(A)], sha256: sha(A) },
    metadata: { "z3-part-size": "8388608", "z3-part-double-every": "0" },
    propertiesSha256: sha(text("sidecar")),
  });
  assert.equal(uploaded.propertiesSha256, sha(text("sidecar")));
});
