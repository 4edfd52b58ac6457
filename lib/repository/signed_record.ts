/**
 * Signed records: what z3 writes beside each object so that a host holding only trusted public
 * keys can tell z3's objects from whatever else is in the bucket. A record holds every field z3
 * acts on ({@linkcode SignedFields}), the signer's public key and an Ed25519 signature.
 *
 * - **What is signed** is not the stored JSON but a canonical text built from the fields
 *   ({@linkcode canonicalBytes}): the line `z3 signed record v1` (the domain separator and
 *   version), the line `signer=<public key>`, then one line `name=<value>` a field in the fixed
 *   order of {@linkcode FIELD_ORDER}, each value in `JSON.stringify` form of a string, a safe
 *   integer, a boolean, `null` or an array of strings (the part schedule as
 *   `[base,doubleEvery,growAfter]`); no object is ever stringified, so no key order is involved,
 *   and JSON strings escape newlines, so a value cannot forge a line.
 * - **What is stored** is one JSON line, `{"z3SignedRecord":1,"fields":{…},"signer":…,
 *   "signature":…}`, fields in that same order. On reading, the record must be byte for byte what
 *   z3 would write for the fields it holds: unknown or missing fields, wrong types, another key
 *   order, spacing, `1e3` or `1.0` for a number, or non-canonical Base64 are all `malformed`.
 * - **Where it belongs** is part of what is signed (bucket, prefix, object key, and the key must
 *   be the key of `dataset@snapshot` under the prefix), so a record moved to another object, prefix
 *   or bucket is refused (`misplaced`).
 *
 * Errors are {@linkcode SignedRecordError}s (exit 6) naming the object and why; they hold public
 * keys and field values only, never a secret.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { sign, verify } from "node:crypto";
import { IntegrityError } from "../base/errors.ts";
import { keyFor } from "../chain/keys.ts";
import { quote } from "../chain/walk.ts";
import { MAX_RECIPIENTS } from "../config/age_keys.ts";
import { normalizePrefix } from "../config/prefix.ts";
import { parsePublicKey, type SigningKey, type TrustedKeys } from "../config/signing_keys.ts";
import { MAX_PARTS } from "../transfer/part_size.ts";
import { multipartEtag } from "../transfer/etag.ts";

/** Every field z3 acts on for one object; all are signed. */
export interface SignedFields {
  /** The bucket the object is in. */
  bucket: string;
  /** `S3_PREFIX` as keys are built from it (`normalizePrefix`: `""` or ending in one `/`). */
  prefix: string;
  /** The object's key: `prefix` + `dataset@snapshot`. */
  key: string;
  /** The dataset (`pool/fs`). */
  dataset: string;
  /** The snapshot's short name (after `@`). */
  snapshot: string;
  /** The snapshot's GUID, decimal. */
  guid: string;
  /** Whether the object is a full stream. */
  full: boolean;
  /** For an incremental, its parent `dataset@snap`; `null` for a full. */
  parent: string | null;
  /** For an incremental, its parent's GUID; `null` for a full. */
  parentGuid: string | null;
  /** The snapshot's creation time, seconds since the epoch. */
  created: number;
  /** The compressor of the stored bytes (`none` when not compressed). */
  compressor: string;
  /** `age` when the stored bytes are age-encrypted, else `none`. */
  encryption: "none" | "age";
  /** The age recipients (`age1…`) it was encrypted to; empty when not encrypted. */
  recipients: string[];
  /** The `zfs send` options the stream was made with (`-w`, `-L`, `-e`, `-c`), in order. */
  sendFlags: string[];
  /** The part size schedule of the upload. */
  schedule: { base: number; doubleEvery: number; growAfter: number };
  /** The storage class it was written with; `null` for the bucket's default. */
  storageClass: string | null;
  /** The object's ETag, without quotes. */
  etag: string;
  /** The object's size in bytes. */
  size: number;
  /** Each part's MD5 (hex), in part order. */
  partMd5s: string[];
  /** The SHA-256 (hex) of the stored bytes. */
  sha256: string;
  /** For a full, the SHA-256 (hex) of its properties sidecar; `null` when there is none. */
  propertiesSha256: string | null;
}

/** The order of the fields in the signed text and in the stored JSON. */
export const FIELD_ORDER: readonly (keyof SignedFields)[] = [
  "bucket",
  "prefix",
  "key",
  "dataset",
  "snapshot",
  "guid",
  "full",
  "parent",
  "parentGuid",
  "created",
  "compressor",
  "encryption",
  "recipients",
  "sendFlags",
  "schedule",
  "storageClass",
  "etag",
  "size",
  "partMd5s",
  "sha256",
  "propertiesSha256",
];

/** The first line of the signed text: what it is and its version. */
export const DOMAIN = "z3 signed record v1\n";

/** Larger than any record z3 writes (10,000 part MD5s take about 350 KB): refused. */
export const MAX_SIGNED_RECORD_BYTES = 1024 * 1024;

/** Why a record is not trusted. */
export type RecordFlaw =
  | "unsigned"
  | "bad signature"
  | "untrusted key"
  | "malformed"
  | "misplaced";

/** A record that cannot be trusted; `flaw` says why. */
export class SignedRecordError extends IntegrityError {
  /** Why the record is not trusted. */
  readonly flaw: RecordFlaw;
  constructor(key: string, flaw: RecordFlaw, detail: string) {
    super(`Cannot trust the signed record of ${quote(key)}: ${detail}`);
    this.flaw = flaw;
  }
}

/** Where a record must belong: the object it is read for. */
export interface RecordPlace {
  /** The bucket. */
  bucket: string;
  /** `S3_PREFIX` (normalized here). */
  prefix: string;
  /** The object's key. */
  key: string;
}

type Check = (value: unknown) => string | undefined;

const isString = (v: unknown): v is string => typeof v === "string";
const matching = (re: RegExp, what: string): Check => (v) =>
  isString(v) && re.test(v) ? undefined : `must be ${what}`;
// C0 control characters and DEL: never in a name z3 writes.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * A string of `min` to 1024 UTF-16 units (S3 keys: 1024 bytes) without a control character;
 * with `at` false, without an `@` too.
 */
const chars = (min: number, what: string, at = true): Check => (v) =>
  isString(v) && v.length >= min && v.length <= 1024 && !CONTROL.test(v) && (at || !v.includes("@"))
    ? undefined
    : `must be ${what}`;
const text = chars(0, "a string of printable characters");
const name = chars(1, "a non-empty printable string");
const guid = matching(/^(0|[1-9][0-9]{0,19})$/, "a GUID in decimal");
const md5 = matching(/^[0-9a-f]{32}$/, "an MD5 in lower-case hex");
const sha256 = matching(/^[0-9a-f]{64}$/, "a SHA-256 in lower-case hex");
const etag = matching(/^[0-9a-f]{32}(-[1-9][0-9]{0,4})?$/, "an S3 ETag without quotes");
const count: Check = (v) =>
  Number.isSafeInteger(v) && (v as number) >= 0 ? undefined : "must be a whole number ≥ 0";
const bool: Check = (v) => typeof v === "boolean" ? undefined : "must be true or false";
const orNull = (check: Check): Check => (v) => v === null ? undefined : check(v);
const list = (check: Check, max: number): Check => (v) => {
  if (!Array.isArray(v) || v.length > max) return `must be a list of at most ${max}`;
  const bad = v.findIndex((item) => check(item) !== undefined);
  return bad < 0 ? undefined : `item ${bad + 1} ${check(v[bad])}`;
};
const schedule: Check = (v) => {
  const s = v as Record<string, unknown>;
  const keys = ["base", "doubleEvery", "growAfter"];
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "must be an object";
  if (Object.keys(s).join() !== keys.join()) return `must hold exactly ${keys.join(", ")}`;
  const bad = keys.find((k) => count(s[k]) !== undefined);
  return bad ? `${bad} must be a whole number ≥ 0` : undefined;
};

const CHECKS: Record<keyof SignedFields, Check> = {
  bucket: name,
  prefix: text,
  key: name,
  dataset: chars(1, "a dataset name", false),
  snapshot: chars(1, "a snapshot's short name", false),
  guid,
  full: bool,
  parent: orNull(name),
  parentGuid: orNull(guid),
  created: count,
  compressor: name,
  encryption: (v) => v === "none" || v === "age" ? undefined : `must be "none" or "age"`,
  recipients: list(name, MAX_RECIPIENTS),
  sendFlags: list(matching(/^-[A-Za-z]$/, "a short option"), 8),
  schedule,
  storageClass: orNull(name),
  etag,
  size: count,
  partMd5s: list(md5, MAX_PARTS),
  sha256,
  propertiesSha256: orNull(sha256),
};

/** The first problem with the fields' types and forms, or `undefined`. */
function typeProblem(raw: unknown): string | undefined {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return "its fields are not an object";
  }
  const fields = raw as Record<string, unknown>;
  const unknown = Object.keys(fields).find((k) => !(FIELD_ORDER as string[]).includes(k));
  if (unknown !== undefined) return `it holds an unknown field ${quote(unknown)}`;
  for (const field of FIELD_ORDER) {
    if (!(field in fields)) return `it has no field "${field}"`;
    const problem = CHECKS[field](fields[field]);
    if (problem) return `its field "${field}" ${problem}`;
  }
  return undefined;
}

/** The first way the fields disagree with each other, or `undefined`. */
function consistencyProblem(f: SignedFields): string | undefined {
  if (normalizePrefix(f.prefix) !== f.prefix) return "its prefix is not in normal form";
  if (f.key !== keyFor(f.prefix, `${f.dataset}@${f.snapshot}`)) {
    return "its key is not the key of its dataset and snapshot under its prefix";
  }
  if (f.full !== (f.parent === null) || f.full !== (f.parentGuid === null)) {
    return "a full has no parent, and an incremental has a parent and its GUID";
  }
  if (!f.full && f.propertiesSha256 !== null) return "an incremental has no properties sidecar";
  if ((f.encryption === "none") !== (f.recipients.length === 0)) {
    return "an encrypted object has recipients, and only an encrypted one";
  }
  const parts = f.partMd5s.map((m) => new Uint8Array(Buffer.from(m, "hex")));
  const multipart = /-\d+$/.test(f.etag);
  if (multipart ? multipartEtag(parts) !== f.etag : f.partMd5s.join() !== f.etag) {
    return "its part MD5s do not make its ETag";
  }
  return undefined;
}

/** The canonical text of the fields under `signer` that the signature covers (module doc). */
export function canonicalBytes(fields: SignedFields, signer: string): Uint8Array {
  const value = (field: keyof SignedFields) => {
    if (field !== "schedule") return JSON.stringify(fields[field]);
    const s = fields.schedule;
    return JSON.stringify([s.base, s.doubleEvery, s.growAfter]);
  };
  const lines = FIELD_ORDER.map((field) => `${field}=${value(field)}\n`);
  return new TextEncoder().encode(`${DOMAIN}signer=${JSON.stringify(signer)}\n${lines.join("")}`);
}

/** The stored form: one JSON line, keys in their fixed order (module doc). */
function serialize(fields: SignedFields, signer: string, signature: string): string {
  const ordered: Record<string, unknown> = {};
  for (const field of FIELD_ORDER) ordered[field] = fields[field];
  const s = fields.schedule;
  ordered.schedule = { base: s.base, doubleEvery: s.doubleEvery, growAfter: s.growAfter };
  return JSON.stringify({ z3SignedRecord: 1, fields: ordered, signer, signature }) + "\n";
}

/**
 * The record of `fields` signed with `signer`, as stored beside the object. Throws an `Error` (a
 * bug: z3 signs only what it built) when the fields are not what a record holds.
 */
export function signRecord(fields: SignedFields, signer: SigningKey): Uint8Array {
  const problem = typeProblem(fields) ?? consistencyProblem(fields);
  if (problem) {
    throw new Error(`Cannot sign the record of ${quote(String(fields.key))}: ${problem}`);
  }
  const signerText = signer.publicKey.text;
  const signature = sign(null, canonicalBytes(fields, signerText), signer.key).toString("base64");
  return new TextEncoder().encode(serialize(fields, signerText, signature));
}

/** A stored record's parts, in the form z3 writes them. */
interface Envelope {
  fields: SignedFields;
  signer: string;
  signature: Uint8Array;
}

/** The JSON value of a stored record's bytes; throws `malformed` when they are not JSON. */
function parseJson(bytes: Uint8Array, label: string): { text: string; value: unknown } {
  const malformed = (why: string) => new SignedRecordError(label, "malformed", why);
  if (bytes.length > MAX_SIGNED_RECORD_BYTES) {
    throw malformed(`it is ${bytes.length} bytes, more than any record z3 writes`);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw malformed("it is not UTF-8 text");
  }
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    throw malformed("it is not JSON");
  }
}

const ENVELOPE_KEYS = ["z3SignedRecord", "fields", "signer", "signature"];

/** The parts of a stored record, checked to be exactly what z3 writes (module doc). */
function parseEnvelope(bytes: Uint8Array, label: string): Envelope {
  const malformed = (why: string) => new SignedRecordError(label, "malformed", why);
  const { text, value } = parseJson(bytes, label);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw malformed("it is not a JSON object");
  }
  const record = value as Record<string, unknown>;
  if (!("signature" in record)) {
    throw new SignedRecordError(
      label,
      "unsigned",
      "it carries no signature (a record of an older z3, or not written by z3)",
    );
  }
  const extra = Object.keys(record).find((k) => !ENVELOPE_KEYS.includes(k));
  if (extra !== undefined) throw malformed(`it holds an unknown field ${quote(extra)}`);
  if (record.z3SignedRecord !== 1) throw malformed("its version is not 1, the one z3 reads");
  const signer = record.signer;
  try {
    parsePublicKey(isString(signer) ? signer : "", "signer");
  } catch {
    throw malformed("its signer is not a z3 public key");
  }
  const signature = isString(record.signature) && /^[A-Za-z0-9+/]{86}==$/.test(record.signature)
    ? Buffer.from(record.signature, "base64")
    : undefined;
  if (signature?.length !== 64 || signature.toString("base64") !== record.signature) {
    throw malformed("its signature is not 64 bytes in Base64");
  }
  const problem = typeProblem(record.fields);
  if (problem) throw malformed(problem);
  const envelope = { fields: record.fields as SignedFields, signer: signer as string, signature };
  if (serialize(envelope.fields, envelope.signer, record.signature) !== text) {
    throw malformed("it is not byte for byte what z3 writes (spacing, order or number form)");
  }
  return { ...envelope, signature: new Uint8Array(signature) };
}

/**
 * The fields of a stored record, once it is shown to be signed by a key in `trusted` and to
 * belong to the object at `place`. Throws a {@linkcode SignedRecordError} (exit 6) whose `flaw`
 * says why not: `unsigned`, `untrusted key` (naming the key), `bad signature`, `malformed`
 * (oversize, not JSON, not the form z3 writes, fields that disagree) or `misplaced` (signed for
 * another bucket, prefix or object).
 */
export function verifyRecord(
  bytes: Uint8Array,
  trusted: TrustedKeys,
  place: RecordPlace,
): SignedFields {
  const { fields, signer, signature } = parseEnvelope(bytes, place.key);
  const fail = (flaw: RecordFlaw, why: string) => new SignedRecordError(place.key, flaw, why);
  const key = trusted.get(signer);
  if (!key) {
    throw fail(
      "untrusted key",
      `it is signed by ${signer}, which is not in TRUSTED_KEYS or TRUSTED_KEYS_FILE`,
    );
  }
  let valid = false;
  try {
    valid = verify(null, canonicalBytes(fields, signer), key.key, signature);
  } catch { /* an unusable signature is a bad one */ }
  if (!valid) throw fail("bad signature", `its signature by ${signer} does not match its fields`);
  const problem = consistencyProblem(fields);
  if (problem) throw fail("malformed", problem);
  const here = { bucket: place.bucket, prefix: normalizePrefix(place.prefix), key: place.key };
  if (fields.bucket !== here.bucket || fields.prefix !== here.prefix || fields.key !== here.key) {
    throw fail(
      "misplaced",
      `it is signed for ${quote(`s3://${fields.bucket}/${fields.key}`)} under prefix ` +
        `${quote(fields.prefix)}, not for ${quote(`s3://${here.bucket}/${here.key}`)} under ` +
        `${quote(here.prefix)}`,
    );
  }
  return fields;
}
