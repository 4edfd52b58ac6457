/**
 * The age file format (age-encryption.org/v1) with X25519 recipients, in-process over
 * `node:crypto`, as web streams with bounded memory: one 64 KiB chunk buffered at a time.
 *
 * - Header: `age-encryption.org/v1`, one `-> X25519 SHARE` stanza per recipient wrapping a fresh
 *   16-byte file key (ChaCha20-Poly1305 under HKDF-SHA-256 of the X25519 shared secret), then
 *   `--- MAC`, an HMAC-SHA-256 of the header under a key derived from the file key.
 * - Payload: a 16-byte nonce, then 64 KiB chunks sealed with ChaCha20-Poly1305 under a key
 *   derived from the file key and nonce; the 12-byte chunk nonce is an 11-byte big-endian
 *   counter and a final-chunk flag. A chunk that does not authenticate, a missing final chunk
 *   (a cut object) or bytes after it are an {@linkcode IntegrityError} (exit 6).
 *
 * Decryption ({@linkcode openAge}) reads and unwraps the header before it returns, so an identity
 * that matches no recipient fails before any consumer (zfs receive) starts; that is a
 * {@linkcode UsageError} (exit 2) naming `AGE_IDENTITY_FILE`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { IntegrityError, UsageError } from "../base/errors.ts";
import {
  type Identity,
  publicKeyObject,
  rawPublicKey,
  type Recipient,
} from "../config/age_keys.ts";

/** Metadata of an encrypted object: `z3-encryption=age` and its recipients, comma-separated. */
export const AGE_META = { encryption: "z3-encryption", recipients: "z3-age-recipients" } as const;

/** Plaintext bytes per payload chunk. */
export const CHUNK = 64 * 1024;
const TAG = 16;
const VERSION_LINE = "age-encryption.org/v1";
const X25519_INFO = "age-encryption.org/v1/X25519";
/** A header longer than this is refused (20 X25519 stanzas take about 2 KiB). */
const MAX_HEADER = 64 * 1024;

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64").replace(/=+$/, "");
}

/** Canonical unpadded base64, or undefined. */
function unb64(text: string): Uint8Array | undefined {
  if (/[^A-Za-z0-9+/]/.test(text)) return undefined;
  const bytes = new Uint8Array(Buffer.from(text, "base64"));
  return b64(bytes) === text ? bytes : undefined;
}

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", ikm, salt, info, 32));
}

function seal(key: Uint8Array, nonce: Uint8Array, plain: Uint8Array): Uint8Array {
  const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
  const out = new Uint8Array(plain.length + TAG);
  out.set(cipher.update(plain));
  cipher.final();
  out.set(cipher.getAuthTag(), plain.length);
  return out;
}

/** The plaintext, or undefined when `sealed` does not authenticate. */
function open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  const decipher = createDecipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const plain = decipher.update(sealed.subarray(0, sealed.length - TAG));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return new Uint8Array(plain.buffer, plain.byteOffset, plain.length);
}

function headerMac(fileKey: Uint8Array, macInput: Uint8Array): Uint8Array {
  const key = hkdf(fileKey, new Uint8Array(0), "header");
  return new Uint8Array(createHmac("sha256", key).update(macInput).digest());
}

/** The header (and payload nonce) of a new file whose file key is `fileKey`. */
export function encodeHeader(fileKey: Uint8Array, recipients: Recipient[]): Uint8Array {
  let text = `${VERSION_LINE}\n`;
  for (const r of recipients) {
    const eph = generateKeyPairSync("x25519");
    const share = rawPublicKey(eph.publicKey);
    const shared = new Uint8Array(
      diffieHellman({ privateKey: eph.privateKey, publicKey: publicKeyObject(r.publicKey) }),
    );
    const wrapKey = hkdf(shared, Buffer.concat([share, r.publicKey]), X25519_INFO);
    text += `-> X25519 ${b64(share)}\n${b64(seal(wrapKey, new Uint8Array(12), fileKey))}\n`;
  }
  text += "---";
  const mac = headerMac(fileKey, new TextEncoder().encode(text));
  return new TextEncoder().encode(`${text} ${b64(mac)}\n`);
}

/** One recipient stanza of a header. */
export interface Stanza {
  args: string[];
  body: Uint8Array;
}

/** A parsed header: its stanzas, MAC and the bytes the MAC covers. */
export interface Header {
  stanzas: Stanza[];
  mac: Uint8Array;
  macInput: Uint8Array;
}

/**
 * Parses `bytes`, a whole header through the newline after its MAC; throws an IntegrityError
 * naming `label` for anything that is not a v1 header.
 */
export function parseHeader(bytes: Uint8Array, label: string): Header {
  const bad = (why: string) => new IntegrityError(`Cannot decrypt "${label}": ${why}`);
  const text = Buffer.from(bytes).toString("latin1");
  const lines = text.split("\n");
  if (lines[0] !== VERSION_LINE) {
    throw bad(`it is not an age v1 file (its first line is not "${VERSION_LINE}")`);
  }
  const stanzas: Stanza[] = [];
  let i = 1;
  while (lines[i]?.startsWith("-> ")) {
    const args = lines[i].slice(3).split(" ");
    if (args.some((a) => !/^[\x21-\x7e]+$/.test(a))) throw bad("its age header is malformed");
    i++;
    const body: string[] = [];
    for (;;) {
      const line = lines[i++];
      if (line === undefined || line.length > 64 || /[^A-Za-z0-9+/]/.test(line)) {
        throw bad("its age header is malformed");
      }
      body.push(line);
      if (line.length < 64) break;
    }
    const decoded = unb64(body.join(""));
    if (!decoded) throw bad("its age header is malformed (non-canonical base64)");
    stanzas.push({ args, body: decoded });
  }
  const macLine = lines[i];
  const mac = macLine?.startsWith("--- ") ? unb64(macLine.slice(4)) : undefined;
  if (stanzas.length === 0 || !mac || mac.length !== 32 || i !== lines.length - 2) {
    throw bad("its age header is malformed");
  }
  const macInput = bytes.subarray(0, text.length - 1 - macLine.length + 3);
  return { stanzas, mac, macInput };
}

/**
 * The file key from the first X25519 stanza one of `identities` opens. Throws a UsageError
 * naming `AGE_IDENTITY_FILE` when none does.
 */
export function unwrapFileKey(
  header: Header,
  identities: Identity[],
  label: string,
  identityFile?: string,
): Uint8Array {
  if (identities.length === 0) throw noIdentityError(label);
  for (const stanza of header.stanzas) {
    if (stanza.args[0] === "scrypt") {
      throw new UsageError(
        `Cannot decrypt "${label}": it is encrypted with a passphrase (age -p), which z3 does not read`,
      );
    }
    if (stanza.args[0] !== "X25519") continue;
    const share = stanza.args.length === 2 ? unb64(stanza.args[1]) : undefined;
    if (!share || share.length !== 32 || stanza.body.length !== 32) {
      throw new IntegrityError(`Cannot decrypt "${label}": its X25519 stanza is malformed`);
    }
    for (const id of identities) {
      let shared: Uint8Array;
      try {
        shared = new Uint8Array(
          diffieHellman({ privateKey: id.key, publicKey: publicKeyObject(share) }),
        );
      } catch {
        shared = new Uint8Array(32); // a low-order share: OpenSSL refuses it, as age must
      }
      if (shared.every((b) => b === 0)) {
        throw new IntegrityError(`Cannot decrypt "${label}": its X25519 stanza is malformed`);
      }
      const wrapKey = hkdf(shared, Buffer.concat([share, id.recipient.publicKey]), X25519_INFO);
      const fileKey = open(wrapKey, new Uint8Array(12), stanza.body);
      if (fileKey) return fileKey;
    }
  }
  throw new UsageError(
    `Cannot decrypt "${label}": no identity in AGE_IDENTITY_FILE${
      identityFile ? ` ${identityFile}` : ""
    } matches its age recipients`,
  );
}

function noIdentityError(label: string): UsageError {
  return new UsageError(
    `Cannot decrypt "${label}": it is encrypted with age; set AGE_IDENTITY_FILE to the ` +
      `age-keygen file of one of its recipients`,
  );
}

/**
 * Checks, from an object's metadata alone, that `identities` can decrypt it: throws the
 * UsageError of {@linkcode unwrapFileKey} when there is no identity, or when the metadata lists
 * recipients and none is one of the identities'. Objects without the list are checked when
 * their header is read.
 */
export function checkIdentity(
  label: string,
  metadata: Record<string, string>,
  identities: Identity[],
  identityFile?: string,
) {
  if (metadata[AGE_META.encryption] !== "age") return;
  if (identities.length === 0) throw noIdentityError(label);
  const listed = metadata[AGE_META.recipients]?.split(",").filter((s) => s !== "");
  if (listed && !identities.some((id) => listed.includes(id.recipient.text))) {
    throw new UsageError(
      `Cannot decrypt "${label}": no identity in AGE_IDENTITY_FILE${
        identityFile ? ` ${identityFile}` : ""
      } matches its age recipients (${listed.join(", ")})`,
    );
  }
}

/** The 12-byte nonce of chunk `counter`. */
function chunkNonce(counter: number, last: boolean): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(3, BigInt(counter));
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/**
 * Encrypts `source` to `recipients` as an age file. Memory: one 64 KiB chunk, plus the chunk
 * being passed on.
 */
export function encryptStream(
  source: ReadableStream<Uint8Array>,
  recipients: Recipient[],
): ReadableStream<Uint8Array> {
  if (recipients.length === 0) throw new UsageError("Cannot encrypt: no age recipient");
  const fileKey = new Uint8Array(randomBytes(16));
  const nonce = new Uint8Array(randomBytes(16));
  const key = hkdf(fileKey, nonce, "payload");
  const buf = new Uint8Array(CHUNK);
  let fill = 0;
  let counter = 0;
  const sealChunk = (last: boolean) =>
    seal(key, chunkNonce(counter++, last), buf.subarray(0, fill));
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        const header = encodeHeader(fileKey, recipients);
        const first = new Uint8Array(header.length + nonce.length);
        first.set(header);
        first.set(nonce, header.length);
        controller.enqueue(first);
      },
      transform(chunk, controller) {
        for (let off = 0; off < chunk.length;) {
          if (fill === CHUNK) { // a full chunk with more after it: not the last one
            controller.enqueue(sealChunk(false));
            fill = 0;
          }
          const n = Math.min(CHUNK - fill, chunk.length - off);
          buf.set(chunk.subarray(off, off + n), fill);
          fill += n;
          off += n;
        }
      },
      flush(controller) {
        controller.enqueue(sealChunk(true));
      },
    }),
  );
}

/** Options of {@linkcode openAge}. */
export interface OpenOptions {
  /** Names the object in errors. */
  label: string;
  /** The `AGE_IDENTITY_FILE` path, for errors. */
  identityFile?: string;
}

/**
 * Decrypts the age file `source` with `identities`. Resolves once the header has been read,
 * its file key unwrapped and its MAC checked (rejecting with a UsageError when no identity
 * matches, an IntegrityError when the header is bad); the returned stream then yields the
 * plaintext chunk by chunk, each authenticated before it is passed on, and errors with an
 * IntegrityError at the first chunk that does not authenticate or when the final chunk is
 * missing. Memory: one chunk plus the header.
 */
export async function openAge(
  source: ReadableStream<Uint8Array>,
  identities: Identity[],
  options: OpenOptions,
): Promise<ReadableStream<Uint8Array>> {
  const reader = source.getReader();
  const fail: Fail = (why) => new IntegrityError(`Cannot decrypt "${options.label}": ${why}`);
  let opened: { payloadKey: Uint8Array; rest: Uint8Array };
  try {
    opened = await openHeader(reader, identities, options, fail);
  } catch (err) {
    reader.cancel(err).catch(() => {});
    throw err;
  }
  return payloadStream(reader, new PayloadChunks(opened.payloadKey, fail), opened.rest);
}

/** Builds the IntegrityError of a file that cannot be decrypted, from why. */
type Fail = (why: string) => IntegrityError;

/** `a` followed by `b`, in a new array. */
function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}

/**
 * Reads the header and the payload nonce from `reader`, unwraps the file key with `identities`
 * and checks the header's MAC (see {@linkcode openAge} for the errors); returns the payload key
 * and the bytes read past the nonce.
 */
async function openHeader(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  identities: Identity[],
  options: OpenOptions,
  fail: Fail,
): Promise<{ payloadKey: Uint8Array; rest: Uint8Array }> {
  let pending: Uint8Array = new Uint8Array(0);
  let end = -1;
  while (end < 0) {
    const head = Buffer.from(
      pending.buffer,
      pending.byteOffset,
      Math.min(pending.length, MAX_HEADER),
    );
    const mark = head.indexOf("\n--- ");
    end = mark < 0 ? -1 : head.indexOf("\n", mark + 1);
    if (end >= 0) break;
    if (pending.length >= MAX_HEADER) throw fail("it is not an age file (no header end)");
    const r = await reader.read();
    if (r.done) throw fail(pending.length === 0 ? "it is empty" : "it ends inside its age header");
    pending = concat(pending, r.value);
  }
  const header = parseHeader(pending.subarray(0, end + 1), options.label);
  const fileKey = unwrapFileKey(header, identities, options.label, options.identityFile);
  if (!timingSafeEqual(headerMac(fileKey, header.macInput), header.mac)) {
    throw fail("its age header does not authenticate (altered?)");
  }
  pending = pending.subarray(end + 1);
  while (pending.length < 16) {
    const r = await reader.read();
    if (r.done) throw fail("it ends before its payload nonce (cut short?)");
    pending = concat(pending, r.value);
  }
  return {
    payloadKey: hkdf(fileKey, pending.subarray(0, 16), "payload"),
    rest: pending.subarray(16),
  };
}

/** The payload's sealed chunks, collected from the bytes pushed in and opened one by one. */
class PayloadChunks {
  #key: Uint8Array;
  #fail: Fail;
  #buf = new Uint8Array(CHUNK + TAG);
  #fill = 0;
  #counter = 0;

  constructor(payloadKey: Uint8Array, fail: Fail) {
    this.#key = payloadKey;
    this.#fail = fail;
  }

  /** Takes `chunk`'s bytes; `emit`s the plaintext of each sealed chunk that more bytes follow. */
  push(chunk: Uint8Array, emit: (plain: Uint8Array) => void): void {
    const buf = this.#buf;
    for (let off = 0; off < chunk.length;) {
      if (this.#fill === buf.length) emit(this.#open(false)); // more follows: not the last chunk
      const n = Math.min(buf.length - this.#fill, chunk.length - off);
      buf.set(chunk.subarray(off, off + n), this.#fill);
      this.#fill += n;
      off += n;
    }
  }

  /** The plaintext of the final chunk, at the end of the file. */
  final(): Uint8Array {
    if (this.#fill < TAG) throw this.#fail("it ends without its final chunk (cut short?)");
    return this.#open(true);
  }

  #open(last: boolean): Uint8Array {
    const counter = this.#counter;
    const plain = open(this.#key, chunkNonce(counter, last), this.#buf.subarray(0, this.#fill));
    if (!plain) {
      throw this.#fail(
        last
          ? `its last chunk (${counter}) does not authenticate as the final one (altered, or cut short)`
          : `its chunk ${counter} does not authenticate (altered?)`,
      );
    }
    if (last && plain.length === 0 && counter > 0) throw this.#fail("its final chunk is empty");
    this.#counter++;
    this.#fill = 0;
    return plain;
  }
}

/**
 * The plaintext of the payload: `first` (bytes already read past the nonce), then the rest of
 * `reader`, through `chunks`.
 */
function payloadStream(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  chunks: PayloadChunks,
  first: Uint8Array,
): ReadableStream<Uint8Array> {
  let unread: Uint8Array | undefined = first;
  return new ReadableStream<Uint8Array>({
    // Each pull yields at least one chunk or ends the stream: a pull that enqueues nothing is
    // not called again.
    async pull(controller) {
      let emitted = false;
      const emit = (plain: Uint8Array) => {
        controller.enqueue(plain);
        emitted = true;
      };
      try {
        if (unread) {
          chunks.push(unread, emit);
          unread = undefined;
        }
        while (!emitted) {
          const r = await reader.read();
          if (!r.done) {
            chunks.push(r.value, emit);
            continue;
          }
          controller.enqueue(chunks.final());
          controller.close();
          return;
        }
      } catch (err) {
        reader.cancel(err).catch(() => {});
        throw err;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
}
