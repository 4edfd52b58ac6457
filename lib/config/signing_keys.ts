/**
 * Pure: z3's Ed25519 signing keys as people write them.
 *
 * - A signing key file (`SIGNING_KEY_FILE`, written by `z3 keygen`) holds one line
 *   `z3-sign-1:` + the standard Base64 (with padding) of the 32-byte Ed25519 seed (RFC 8032
 *   §5.1.5's private key), plus `#` comment lines and blank lines, which are ignored. `z3 keygen`
 *   puts the public key in a comment; it is derived from the seed on reading, never taken from the
 *   comment.
 * - A public key is one line `z3ed25519:` + the standard Base64 (with padding) of the 32-byte
 *   Ed25519 public key: 54 characters. Only the canonical spelling is accepted, so one key has one
 *   text, and that text is what errors and `TRUSTED_KEYS` show.
 * - `TRUSTED_KEYS` is a comma-separated list of public keys; `TRUSTED_KEYS_FILE` holds one a line,
 *   with `#` comments and blank lines. The public key of `SIGNING_KEY_FILE` is trusted too.
 *
 * Errors are {@linkcode UsageError}s naming the setting and the file and line; the text of a
 * signing key file is never put in a message.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes } from "node:crypto";
import { UsageError } from "../base/errors.ts";

/** The start of a signing key line. */
export const SIGNING_KEY_TAG = "z3-sign-1:";
/** The start of a public key. */
export const PUBLIC_KEY_TAG = "z3ed25519:";

const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");

/** An Ed25519 public key: its `z3ed25519:…` text and a node:crypto key object to verify with. */
export interface PublicKey {
  /** The canonical `z3ed25519:…` text. */
  text: string;
  /** The key, for `crypto.verify`. */
  key: KeyObject;
}

/** A signing key. Its secret lives only in `key`; printing it shows the public side. */
export interface SigningKey {
  /** The private key, for `crypto.sign`. */
  key: KeyObject;
  /** Its public key. */
  publicKey: PublicKey;
}

/** Trusted public keys by their text. */
export type TrustedKeys = ReadonlyMap<string, PublicKey>;

/** The 32 bytes of canonical Base64 `text`, or `undefined` for anything else. */
function base64Of32(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(text)) return undefined;
  const bytes = Buffer.from(text, "base64");
  if (bytes.length !== 32 || bytes.toString("base64") !== text) return undefined;
  return new Uint8Array(bytes);
}

/** The public key of 32 raw bytes. */
export function publicKeyOf(raw: Uint8Array): PublicKey {
  const key = createPublicKey({
    key: Buffer.concat([SPKI_ED25519, raw]),
    format: "der",
    type: "spki",
  });
  return { text: PUBLIC_KEY_TAG + Buffer.from(raw).toString("base64"), key };
}

/** The signing key of a 32-byte seed. */
export function signingKeyOf(seed: Uint8Array): SigningKey {
  const key = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519, seed]),
    format: "der",
    type: "pkcs8",
  });
  const der = createPublicKey(key).export({ format: "der", type: "spki" }) as Buffer;
  return { key, publicKey: publicKeyOf(new Uint8Array(der.subarray(der.length - 32))) };
}

/** A new signing key and the text of its file (see module doc), from 32 random bytes. */
export function generateSigningKey(): { key: SigningKey; fileText: string } {
  const seed = new Uint8Array(randomBytes(32));
  const key = signingKeyOf(seed);
  const fileText =
    "# z3 signing key (Ed25519), made by z3 keygen. Keep it secret: it signs backups.\n" +
    `# public key: ${key.publicKey.text}\n` +
    `${SIGNING_KEY_TAG}${Buffer.from(seed).toString("base64")}\n`;
  seed.fill(0);
  return { key, fileText };
}

/**
 * Parses one `z3ed25519:…` public key; `where` names where it came from in the error
 * (`TRUSTED_KEYS item 2`). The error never shows the value: it may be a secret pasted by mistake.
 */
export function parsePublicKey(text: string, where: string): PublicKey {
  if (text.toLowerCase().startsWith(SIGNING_KEY_TAG)) {
    throw new UsageError(
      `Cannot use ${where}: it is a signing key, which is secret (${SIGNING_KEY_TAG}…); list ` +
        `its public key (${PUBLIC_KEY_TAG}…, as z3 keygen prints it) and keep the secret off this host`,
    );
  }
  const raw = text.startsWith(PUBLIC_KEY_TAG)
    ? base64Of32(text.slice(PUBLIC_KEY_TAG.length))
    : undefined;
  if (!raw) {
    throw new UsageError(
      `Cannot use ${where}: it is not a z3 public key (${PUBLIC_KEY_TAG} and 44 Base64 ` +
        "characters, as z3 keygen prints it)",
    );
  }
  return publicKeyOf(raw);
}

/** Lines of a key file without comments and blank lines, with their line numbers. */
function keyLines(text: string): { line: number; value: string }[] {
  return text.split("\n").map((l, i) => ({ line: i + 1, value: l.trim() }))
    .filter((l) => l.value !== "" && !l.value.startsWith("#"));
}

/**
 * The signing key in the text of a `SIGNING_KEY_FILE` (see module doc). The error names the file
 * and the line, never the line's text.
 */
export function parseSigningKey(text: string, path: string): SigningKey {
  const bad = (why: string) =>
    new UsageError(`Cannot use SIGNING_KEY_FILE ${JSON.stringify(path)}: ${why}`);
  const lines = keyLines(text);
  if (lines.length === 0) throw bad(`it holds no ${SIGNING_KEY_TAG}… line`);
  if (lines.length > 1) {
    throw bad(
      `it holds ${lines.length} key lines (lines ${lines.map((l) => l.line).join(", ")}); ` +
        "one signing key a file",
    );
  }
  const { line, value } = lines[0];
  const seed = value.startsWith(SIGNING_KEY_TAG)
    ? base64Of32(value.slice(SIGNING_KEY_TAG.length))
    : undefined;
  if (!seed) {
    throw bad(`line ${line} is not a z3 signing key (${SIGNING_KEY_TAG}… as z3 keygen writes it)`);
  }
  return signingKeyOf(seed);
}

/**
 * The keys a signature may come from: `TRUSTED_KEYS` (comma-separated), the lines of a
 * `TRUSTED_KEYS_FILE`'s text, and the public key of the signing key, duplicates dropped. A
 * `TRUSTED_KEYS_FILE` with no key is an error (an empty file would trust nothing by mistake).
 */
export function parseTrustedKeys(
  list: string | undefined,
  options: { file?: { path: string; text: string }; signing?: SigningKey } = {},
): TrustedKeys {
  const out = new Map<string, PublicKey>();
  const add = (k: PublicKey) => out.set(k.text, k);
  const items = (list ?? "").split(",").map((s) => s.trim());
  items.forEach((item, i) => {
    if (item !== "") add(parsePublicKey(item, `TRUSTED_KEYS item ${i + 1}`));
  });
  const file = options.file;
  if (file) {
    const lines = keyLines(file.text);
    if (lines.length === 0) {
      throw new UsageError(
        `Cannot use TRUSTED_KEYS_FILE ${JSON.stringify(file.path)}: it holds no public key`,
      );
    }
    for (const { line, value } of lines) {
      add(parsePublicKey(value, `TRUSTED_KEYS_FILE ${JSON.stringify(file.path)} line ${line}`));
    }
  }
  if (options.signing) add(options.signing.publicKey);
  return out;
}

/**
 * The strings to redact from output for a signing key file's text: each key line, whole and as
 * its Base64 part alone.
 */
export function signingKeySecrets(text: string): string[] {
  return keyLines(text).flatMap(({ value }) =>
    value.startsWith(SIGNING_KEY_TAG) ? [value, value.slice(SIGNING_KEY_TAG.length)] : [value]
  );
}
