/**
 * Issue #24's tamper matrix, end to end on zfs-fuse and Ceph: a backup host signs its records
 * (SIGNING_KEY_FILE, the key made by `z3 keygen`), a monitor trusts its public key (TRUSTED_KEYS),
 * and an attacker who can only write the bucket forges, replaces, rewrites and replays objects.
 * Each case asserts what status, check, restore, get, verify, prune and backup answer, and that
 * nothing was received, printed, uploaded or deleted (a forged properties sidecar included). One pool and one bucket for the whole file:
 * the signed bucket is saved once and put back after each case.
 *
 * @module
 */

import assert from "node:assert/strict";
import { CopyObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { createHash } from "node:crypto";
import { integration } from "../bed/bed.ts";
import { failure, ok } from "../bed/expect.ts";
import { type CliResult, runZ3 } from "../bed/cli.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { createPool } from "../bed/zfs_bed.ts";
import { checkKey } from "../../lib/repository/check_records.ts";
import { type SignedFields, signRecord } from "../../lib/repository/signed_record.ts";
import { generateSigningKey } from "../../lib/config/signing_keys.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import * as zfs from "../../lib/zfs/zfs.ts";

const DATA = "tampered";
const md5b64 = (b: Uint8Array) => createHash("md5").update(b).digest("base64");
const md5hex = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const text = (s: string) => new TextEncoder().encode(s);

interface Saved {
  bytes: Uint8Array;
  metadata: Record<string, string>;
}

/** The whole file's bed: a pool whose dataset has s1..s4, s1..s3 backed up signed. */
interface Fixture {
  s3: S3Env;
  store: S3Store;
  client: S3Client;
  dataset: string;
  poolName: string;
  /** The signing key's file and its public key. */
  keyFile: string;
  publicKey: string;
  /** z3 as the monitor runs it (TRUSTED_KEYS); `env` adds or overrides. */
  z3(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  /** z3 as the backup host runs it (SIGNING_KEY_FILE). */
  z3Signing(args: string[], env?: Record<string, string | undefined>): Promise<CliResult>;
  key(snap: string): string;
  record(snap: string): string;
  /** Every key under the prefix and beside it, sorted. */
  keys(): Promise<string[]>;
  read(key: string): Promise<Saved>;
  put(key: string, bytes: Uint8Array, metadata?: Record<string, string>): Promise<void>;
  /** Puts the signed bucket back as it was after the backup. */
  reset(): Promise<void>;
}

async function readAll(store: S3Store, key: string): Promise<Saved> {
  const info = (await store.head(key))!;
  const bytes = new Uint8Array(await new Response(await store.get(key)).arrayBuffer());
  return { bytes, metadata: info.metadata };
}

async function withFixture(s3: S3Env, fn: (f: Fixture) => Promise<void>): Promise<void> {
  const pool = await createPool(128);
  const dir = await Deno.makeTempDir({ prefix: "z3-tamper-" });
  let store: S3Store | undefined;
  const client = new S3Client({
    endpoint: s3.S3_ENDPOINT,
    region: s3.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.S3_KEY_ID, secretAccessKey: s3.S3_SECRET },
  });
  try {
    store = await freshBucket(s3, "tamper");
    const theStore = store;
    const mount = await pool.createDataset(DATA);
    const dataset = `${pool.name}/${DATA}`;
    await run(["zfs", "set", "z3test:origin=signed", `${pool.name}/${DATA}`]);
    for (const [i, s] of ["s1", "s2", "s3", "s4"].entries()) {
      await Deno.writeFile(`${mount}/${s}.bin`, pseudoRandom(16 * 1024, i + 1));
      await pool.snapshot(DATA, s);
    }
    const keyFile = `${dir}/signing.key`;
    const made = await runZ3(["keygen", keyFile]);
    const publicKey = ok(made)[0];
    const env = { ...childEnv(s3, theStore.bucket), FILESYSTEM: dataset };
    const z3 = (args: string[], more: Record<string, string | undefined> = {}) =>
      runZ3(args, { ...env, TRUSTED_KEYS: publicKey, ...more });
    const z3Signing = (args: string[], more: Record<string, string | undefined> = {}) =>
      runZ3(args, { ...env, SIGNING_KEY_FILE: keyFile, HOLD: "false", ...more });
    const keys = async () => {
      const out: string[] = [];
      for await (const o of theStore.list("z3-backup")) out.push(o.key);
      return out.sort();
    };
    ok(await z3Signing(["backup", "--snapshot", "s3"]));
    const saved = new Map<string, Saved>();
    for (const k of await keys()) saved.set(k, await readAll(theStore, k));
    const put = async (key: string, bytes: Uint8Array, metadata: Record<string, string> = {}) => {
      await theStore.put(key, bytes, md5b64(bytes), { metadata });
    };
    await fn({
      s3,
      store: theStore,
      client,
      dataset,
      poolName: pool.name,
      keyFile,
      publicKey,
      z3,
      z3Signing,
      key: (snap) => `z3-backup/${dataset}@${snap}`,
      record: (snap) => checkKey("z3-backup/", `${dataset}@${snap}`),
      keys,
      read: (key) => readAll(theStore, key),
      put,
      async reset() {
        for (const k of await keys()) if (!saved.has(k)) await theStore.delete(k);
        for (const [k, v] of saved) await put(k, v.bytes, v.metadata);
      },
    });
  } finally {
    client.destroy();
    store?.close();
    await pool.destroy();
    await Deno.remove(dir, { recursive: true });
  }
}

/** `z3 status --json` as short name → health. */
async function healthOf(f: Fixture, env?: Record<string, string>): Promise<Record<string, string>> {
  const rows = JSON.parse(ok(await f.z3(["status", "--json"], env)).join("\n")) as {
    name: string;
    health: string;
  }[];
  return Object.fromEntries(rows.filter((r) => r.health !== "-").map((r) => [r.name, r.health]));
}

/** Server-side copy of `from` onto `to`, replacing the metadata with `metadata` when given. */
async function copy(f: Fixture, from: string, to: string, metadata?: Record<string, string>) {
  await f.client.send(
    new CopyObjectCommand({
      Bucket: f.store.bucket,
      Key: to,
      CopySource: `${f.store.bucket}/${from.split("/").map(encodeURIComponent).join("/")}`,
      MetadataDirective: metadata ? "REPLACE" : "COPY",
      ...(metadata ? { Metadata: metadata } : {}),
    }),
  );
}

/** The signed fields of `snap`'s record as stored. */
async function fieldsOf(f: Fixture, snap: string): Promise<SignedFields> {
  const raw = new TextDecoder().decode((await f.read(f.record(snap))).bytes);
  return JSON.parse(raw).fields as SignedFields;
}

/** A property's value on `dataset` (`-` when unset). */
async function propertyOf(dataset: string, property: string): Promise<string> {
  return (await run(["zfs", "get", "-H", "-o", "value", property, dataset])).trim();
}

/** Asserts a run that prints its verdict on stdout and then fails: exit `code`, `stdout` matching. */
function exits(result: CliResult, code: number, stdout: RegExp) {
  assert.equal(result.code, code, `exit status; stderr: ${result.stderr}`);
  assert.match(result.stdout, new RegExp(stdout.source, "m"));
}

/** Asserts restore and get of `snap` refuse with exit 6 before anything is received or printed. */
async function refusesToRead(f: Fixture, snap: string, pattern: RegExp) {
  const target = `${f.poolName}/back-${snap}`;
  failure(await f.z3(["restore", snap, "--target", target]), 6, pattern);
  assert.equal(await zfs.datasetExists(target), false, "nothing was received");
  const got = await f.z3(["get", `${f.dataset}@${snap}`]);
  failure(got, 6, pattern);
  assert.equal(got.stdout, "", "nothing reached stdout");
}

integration("tamper matrix: with trusted keys z3 acts only on what its key signed", async (bed) => {
  await withFixture(bed.s3, async (f) => {
    const stranger = generateSigningKey().key;
    const before = await f.keys();
    await (async function signedBucketIsOk() {
      assert.deepEqual(await healthOf(f), { s1: "ok", s2: "ok", s3: "ok" });
      ok(await f.z3(["check"]));
      const lines = ok(await f.z3(["verify"]));
      assert.ok(lines.every((l) => l.split("\t")[1] === "ok"), lines.join("\n"));
    })();

    // 1. Object and record both replaced (a forged incremental with a plain check record).
    const forged = text("forged stream bytes");
    const forgedMeta = (await f.read(f.key("s3"))).metadata;
    await f.put(f.key("s3"), forged, forgedMeta);
    const plain = { etag: md5hex(forged), size: forged.length, guid: forgedMeta["z3-guid"] };
    await f.put(f.record("s3"), text(JSON.stringify(plain) + "\n"));
    assert.equal(
      (await healthOf(f, { TRUSTED_KEYS: "" })).s3,
      "ok",
      "no keys: as before, forged ok",
    );
    assert.equal((await healthOf(f)).s3, "unsigned");
    exits(await f.z3(["check"]), 5, /^BROKEN\t/);
    await refusesToRead(f, "s3", /no signature|signed record/);
    exits(await f.z3(["verify"]), 6, /@s3\tcorrupt\t.*no signature/);
    await f.reset();

    // 2. A record signed by a key nobody trusts, for forged bytes.
    const s3Fields = await fieldsOf(f, "s3");
    await f.put(f.key("s3"), forged, forgedMeta);
    const foreign = {
      ...s3Fields,
      etag: md5hex(forged),
      size: forged.length,
      partMd5s: [md5hex(forged)],
      sha256: sha256(forged),
    };
    await f.put(f.record("s3"), signRecord(foreign, stranger));
    assert.equal((await healthOf(f)).s3, "bad signature");
    await refusesToRead(f, "s3", /not in TRUSTED_KEYS/);
    await f.reset();

    // 3. Signature bytes flipped.
    const signed = new TextDecoder().decode((await f.read(f.record("s2"))).bytes);
    await f.put(
      f.record("s2"),
      text(signed.replace(/"signature":"(.)/, (_m, c) => `"signature":"${c === "A" ? "B" : "A"}`)),
    );
    assert.deepEqual(await healthOf(f), { s1: "ok", s2: "bad signature", s3: "parent broken" });
    exits(await f.z3(["check"]), 5, /^BROKEN\t/);
    await refusesToRead(f, "s2", /signature/);
    await f.reset();

    // 4. Legacy downgrade: metadata stripped (no z3-version), records deleted.
    await copy(f, f.key("s1"), f.key("s1"), { isfull: "true" });
    await f.store.delete(f.record("s1"));
    assert.equal((await healthOf(f, { TRUSTED_KEYS: "" })).s1, "ok", "no keys: today");
    assert.equal((await healthOf(f)).s1, "unsigned");
    await refusesToRead(f, "s1", /no signed record/);
    await f.reset();

    // 5. Metadata rewritten by copy-object: s3 made a full, created at 0, not compressed.
    const meta3 = (await f.read(f.key("s3"))).metadata;
    const rewritten: Record<string, string> = {
      ...meta3,
      isfull: "true",
      "z3-created": "0",
      compressor: "none",
    };
    delete rewritten.parent;
    await copy(f, f.key("s3"), f.key("s3"), rewritten);
    assert.deepEqual(await healthOf(f), { s1: "ok", s2: "ok", s3: "ok" });
    const pruned = JSON.parse(
      ok(await f.z3(["prune", "--dry-run", "--json"], { KEEP_LAST: "1" })).join("\n"),
    ) as { snapshot: string; action: string }[];
    const kept = pruned.filter((l) => l.action === "keep").map((l) => l.snapshot).sort();
    assert.deepEqual(kept, ["s1", "s2", "s3"].map((s) => `${f.dataset}@${s}`), "s3 is newest");
    const lines = ok(await f.z3(["verify", "s3"]));
    assert.ok(lines.every((l) => l.split("\t")[1] === "ok"), lines.join("\n"));
    await f.reset();

    // 6. Two objects swapped between snapshots (records kept).
    const o2 = await f.read(f.key("s2"));
    const o3 = await f.read(f.key("s3"));
    await f.put(f.key("s2"), o3.bytes, o3.metadata);
    await f.put(f.key("s3"), o2.bytes, o2.metadata);
    const swapped = await healthOf(f);
    assert.equal(swapped.s2, "record mismatch");
    assert.equal(swapped.s3, "record mismatch");
    await refusesToRead(f, "s3", /changed in the bucket/);
    failure(
      await f.z3(["prune"], { KEEP_LAST: "1" }),
      6,
      /Cannot prune .*nothing was deleted/,
    );
    assert.deepEqual(await f.keys(), before, "prune deleted nothing");
    await f.reset();

    // 7. An old object replayed under a new name (s1 and its signed record as s4).
    await copy(f, f.key("s1"), f.key("s4"));
    await copy(f, f.record("s1"), f.record("s4"));
    assert.equal((await healthOf(f)).s4, "bad signature");
    failure(
      await f.z3Signing(["backup"]),
      5,
      /Cannot back up ".*@s4": the bucket holds an object z3 did not write/,
    );
    await refusesToRead(f, "s4", /signed for/);
    await f.reset();

    // 8. A placeholder for the next snapshot's name: backup stops, never "up to date".
    await f.put(f.key("s4"), new Uint8Array(0));
    assert.equal((await healthOf(f)).s4, "unsigned");
    exits(await f.z3(["check"]), 5, /^BROKEN\t/);
    const stopped = await f.z3Signing(["backup"]);
    failure(stopped, 5, /@s4": the bucket holds an object z3 did not write .*\(unsigned\)/);
    assert.deepEqual((await f.keys()).filter((k) => k.endsWith("@s4")), [f.key("s4")]);
    assert.equal((await f.read(f.key("s4"))).bytes.length, 0, "never written over");
    await f.reset();

    // 9. Prune leaves an unsigned object alone and counts it as no restore point.
    await f.put(f.key("s4"), forged, { ...forgedMeta, "z3-created": "9999999999" });
    const decided = JSON.parse(
      ok(await f.z3(["prune", "--dry-run", "--json"], { KEEP_LAST: "1" })).join("\n"),
    ) as { snapshot: string; action: string; reasons: string[] }[];
    const s4 = decided.find((d) => d.snapshot.endsWith("@s4"))!;
    assert.equal(s4.action, "keep");
    assert.match(s4.reasons.join(), /unhealthy chain/);
    const s3 = decided.find((d) => d.snapshot.endsWith("@s3"))!;
    assert.equal(s3.action, "keep", "the newest signed snapshot is the one KEEP_LAST keeps");
    await f.reset();

    // 11. A forged properties sidecar: restore --properties refuses it before any receive (exit 6).
    const sidecar = `${f.record("s1")}#properties`;
    const signedSidecar = await f.read(sidecar);
    const props = JSON.parse(new TextDecoder().decode(signedSidecar.bytes)).properties;
    assert.equal(props["z3test:origin"], "signed");
    await f.put(
      sidecar,
      text(JSON.stringify({ properties: { "z3test:origin": "forged" } }) + "\n"),
    );
    const forgedTarget = `${f.poolName}/props-forged`;
    failure(
      await f.z3(["restore", "s2", "--target", forgedTarget, "--properties"]),
      6,
      /Cannot trust the properties .*the signed record/,
    );
    assert.equal(await zfs.datasetExists(forgedTarget), false, "refused before any receive");
    await f.reset();
    const signedTarget = `${f.poolName}/props-signed`;
    const named = ["--property", "z3test:origin"];
    ok(await f.z3(["restore", "s2", "--target", signedTarget, "--properties", ...named]));
    assert.equal(await propertyOf(signedTarget, "z3test:origin"), "signed");

    // 10. verify --adopt signs what the bucket holds after checking it.
    for (const s of ["s1", "s2", "s3"]) await f.store.delete(f.record(s));
    const unsigned = { s1: "unsigned", s2: "unsigned", s3: "unsigned" };
    assert.deepEqual(await healthOf(f), unsigned);
    failure(await f.z3(["verify", "--adopt"]), 2, /set SIGNING_KEY_FILE/);
    const adopted = ok(await f.z3Signing(["verify", "--adopt"]));
    assert.deepEqual(adopted.map((l) => l.split("\t")[1]), ["adopted", "adopted", "adopted"]);
    assert.deepEqual(await healthOf(f), { s1: "ok", s2: "ok", s3: "ok" });
    const target = `${f.poolName}/adopted`;
    ok(await f.z3(["restore", "s3", "--target", target]));
    assert.equal(await zfs.datasetExists(target), true, "the adopted chain restores");
  });
});
