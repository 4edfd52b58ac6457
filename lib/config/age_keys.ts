/**
 * Pure: age X25519 keys as people write them. Recipients are Bech32 strings with HRP `age`
 * (`age1…`), identities Bech32 with HRP `AGE-SECRET-KEY-` (`AGE-SECRET-KEY-1…`, upper case), both
 * holding 32 bytes (age-encryption.org/v1, "The X25519 recipient type"). Lists are read the way
 * `age -R` and `age -i` read files: one key a line, `#` comments and blank lines ignored.
 *
 * Errors are {@linkcode UsageError}s that name the setting and, for a recipient, the value; an
 * identity's text is never put in a message.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { UsageError } from "../base/errors.ts";

const CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATORS = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATORS[i];
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  return [...codes.map((c) => c >> 5), 0, ...codes.map((c) => c & 31)];
}

function convertBits(data: number[], from: number, to: number, pad: boolean): number[] | null {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const max = (1 << to) - 1;
  for (const v of data) {
    acc = (acc << from) | v;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >> bits) & max);
    }
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & max);
  } else if (bits >= from || ((acc << (to - bits)) & max) !== 0) {
    return null;
  }
  return out;
}

/** Bech32 (BIP 173, no length limit, as age uses it) of `bytes` under `hrp`, lower case. */
export function bech32Encode(hrp: string, bytes: Uint8Array): string {
  const data = convertBits([...bytes], 8, 5, true)!;
  const mod = polymod([...hrpExpand(hrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = [0, 1, 2, 3, 4, 5].map((i) => (mod >>> (5 * (5 - i))) & 31);
  return `${hrp}1${[...data, ...checksum].map((d) => CHARSET[d]).join("")}`;
}

/** Decodes Bech32 `text` (one case throughout); `undefined` when it is not valid Bech32. */
export function bech32Decode(text: string): { hrp: string; bytes: Uint8Array } | undefined {
  if (text !== text.toLowerCase() && text !== text.toUpperCase()) return undefined;
  const s = text.toLowerCase();
  const sep = s.lastIndexOf("1");
  if (sep < 1 || sep + 7 > s.length) return undefined;
  const hrp = s.slice(0, sep);
  if ([...hrp].some((c) => c.charCodeAt(0) < 33 || c.charCodeAt(0) > 126)) return undefined;
  const data = [...s.slice(sep + 1)].map((c) => CHARSET.indexOf(c));
  if (data.some((d) => d < 0)) return undefined;
  if (polymod([...hrpExpand(hrp), ...data]) !== 1) return undefined;
  const bytes = convertBits(data.slice(0, -6), 5, 8, false);
  return bytes ? { hrp, bytes: new Uint8Array(bytes) } : undefined;
}

/** An X25519 recipient: its `age1…` string and its 32-byte public key. */
export interface Recipient {
  /** The `age1…` string. */
  text: string;
  /** The raw public key. */
  publicKey: Uint8Array;
}

/** An X25519 identity. Its secret lives only in `key`; printing it shows the public side. */
export interface Identity {
  /** The private key, for `diffieHellman`. */
  key: KeyObject;
  /** Its recipient (public key). */
  recipient: Recipient;
}

const PKCS8_X25519 = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519 = Buffer.from("302a300506032b656e032100", "hex");

/** A node:crypto public key object of a raw X25519 public key. */
export function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_X25519, raw]),
    format: "der",
    type: "spki",
  });
}

/** The raw 32 bytes of an X25519 public key object. */
export function rawPublicKey(key: KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" }) as Buffer;
  return new Uint8Array(der.subarray(der.length - 32));
}

/** Parses one `age1…` recipient; `setting` names where it came from in the error. */
export function parseRecipient(text: string, setting: string): Recipient {
  const decoded = bech32Decode(text);
  if (!decoded || decoded.hrp !== "age" || decoded.bytes.length !== 32) {
    throw new UsageError(
      `Cannot use ${setting} recipient ${JSON.stringify(text)}: not an age X25519 public key ` +
        `(age1… as age-keygen prints it)`,
    );
  }
  return { text: bech32Encode("age", decoded.bytes), publicKey: decoded.bytes };
}

/** Lines of a key file without comments and blank lines, with their line numbers. */
function keyLines(text: string): { line: number; value: string }[] {
  return text.split("\n").map((l, i) => ({ line: i + 1, value: l.trim() }))
    .filter((l) => l.value !== "" && !l.value.startsWith("#"));
}

/**
 * Recipients from `AGE_RECIPIENTS` (comma-separated) and/or an `AGE_RECIPIENTS_FILE`'s text (one
 * a line), duplicates dropped. At most {@linkcode MAX_RECIPIENTS}: they go into the object's
 * metadata, and S3 allows 2 KiB of it.
 */
export function parseRecipients(
  list: string | undefined,
  file?: { path: string; text: string },
): Recipient[] {
  const out: Recipient[] = [];
  for (const item of (list ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    out.push(parseRecipient(item, "AGE_RECIPIENTS"));
  }
  if (file) {
    for (const { line, value } of keyLines(file.text)) {
      out.push(parseRecipient(value, `AGE_RECIPIENTS_FILE ${file.path}:${line}`));
    }
    if (keyLines(file.text).length === 0) {
      throw new UsageError(`Cannot use AGE_RECIPIENTS_FILE ${file.path}: it holds no recipient`);
    }
  }
  const unique = [...new Map(out.map((r) => [r.text, r])).values()];
  if (unique.length > MAX_RECIPIENTS) {
    throw new UsageError(
      `Cannot use ${unique.length} age recipients: at most ${MAX_RECIPIENTS} fit in an object's metadata`,
    );
  }
  return unique;
}

/** The most recipients one object records. */
export const MAX_RECIPIENTS = 20;

/**
 * The identities of an `age-keygen` file (`AGE-SECRET-KEY-1…` lines). The error names the file
 * and line, never the line's text.
 */
export function parseIdentities(text: string, path: string): Identity[] {
  const out: Identity[] = [];
  for (const { line, value } of keyLines(text)) {
    const decoded = bech32Decode(value);
    if (!decoded || decoded.hrp !== "age-secret-key-" || decoded.bytes.length !== 32) {
      throw new UsageError(
        `Cannot use AGE_IDENTITY_FILE ${path}: line ${line} is not an age X25519 identity ` +
          `(AGE-SECRET-KEY-1… as age-keygen writes it)`,
      );
    }
    out.push(identityOf(decoded.bytes));
  }
  if (out.length === 0) {
    throw new UsageError(
      `Cannot use AGE_IDENTITY_FILE ${path}: it holds no AGE-SECRET-KEY-1… line`,
    );
  }
  return out;
}

/** The identity of 32 secret bytes. */
export function identityOf(secret: Uint8Array): Identity {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_X25519, secret]),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = rawPublicKey(createPublicKey(key));
  return { key, recipient: { text: bech32Encode("age", publicKey), publicKey } };
}
