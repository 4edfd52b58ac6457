/**
 * z3's small JSON objects beside the backups (check records, pending-upload records, properties
 * sidecars). Written as one PutObject of `JSON.stringify(value)` and a newline, with its
 * Content-MD5, retried. Read with a byte cap the caller gives: the bucket is untrusted, so an
 * object larger than the cap is an error and is never read whole.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { withRetry } from "../backend/retry.ts";
import type { S3Store, WriteOptions } from "../backend/s3.ts";
import { quote } from "../chain/walk.ts";

/** Why {@linkcode readJson} refused a sidecar. */
export class SidecarError extends Error {
  /** The sidecar's key. */
  readonly key: string;
  /** `too large`: over the cap (and not read whole); `not json`: not a JSON text. */
  readonly reason: "too large" | "not json";
  /** For `too large`: the bytes seen (HEAD's size, or those read when the body ran past the cap). */
  readonly size?: number;

  /** `cap` is named in the message of a `too large` error. */
  constructor(key: string, reason: "too large" | "not json", cap: number, size?: number) {
    super(
      reason === "too large"
        ? `Cannot read ${quote(key)}: ${size} bytes, more than the ${cap} z3 reads of it`
        : `Cannot read ${quote(key)}: not JSON`,
    );
    this.name = "SidecarError";
    this.key = key;
    this.reason = reason;
    if (size !== undefined) this.size = size;
  }
}

/** Options of {@linkcode readJson}. */
export interface ReadJsonOptions {
  /** The most bytes read; a larger object is a {@linkcode SidecarError}. */
  maxBytes: number;
  /** Tries in all, for the HEAD and for the GET with its body. */
  attempts: number;
  /** Aborts the requests. @default {none} */
  signal?: AbortSignal;
}

/**
 * The JSON text at `key`, parsed; `undefined` when there is no such object. A HEAD first: an
 * object whose size is over `maxBytes` is not downloaded. The body is then read up to
 * `maxBytes`, from the version the HEAD saw (If-Match its ETag): one that runs past the cap
 * anyway (a server that ignores If-Match) is cancelled there.
 *
 * @throws {SidecarError} `too large` (naming key and cap) or `not json`
 */
export async function readJson(
  store: S3Store,
  key: string,
  options: ReadJsonOptions,
): Promise<unknown> {
  const bytes = await readBytes(store, key, options);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new SidecarError(key, "not json", options.maxBytes);
  }
}

/**
 * The bytes at `key`, read as {@linkcode readJson} reads them (HEAD, then a GET capped at
 * `maxBytes`); `undefined` when there is no such object.
 *
 * @throws {SidecarError} `too large`, naming key and cap
 */
export async function readBytes(
  store: S3Store,
  key: string,
  options: ReadJsonOptions,
): Promise<Uint8Array | undefined> {
  const { maxBytes, signal } = options;
  const retry = { attempts: options.attempts, signal };
  const info = await withRetry(() => store.head(key, signal), retry);
  if (!info) return undefined;
  if (info.size > maxBytes) throw new SidecarError(key, "too large", maxBytes, info.size);
  // Pinned to the ETag the HEAD saw: an object replaced in between is refused by the server
  // (412), not read as the one that was sized and planned on.
  return await withRetry(
    async () => await readCapped(key, await store.get(key, { signal, etag: info.etag }), maxBytes),
    retry,
  );
}

/** The whole of `body`, or a `too large` {@linkcode SidecarError} once it passes `maxBytes`. */
async function readCapped(
  key: string,
  body: ReadableStream<Uint8Array>,
  maxBytes: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      throw new SidecarError(key, "too large", maxBytes, total);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Writes `value` as JSON to `key`, retried up to `attempts` times in all. */
export async function putJson(
  store: S3Store,
  key: string,
  value: unknown,
  attempts: number,
  options: WriteOptions = {},
): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(value) + "\n");
  await putBytes(store, key, body, attempts, options);
}

/** Writes `body` to `key` with its Content-MD5, retried up to `attempts` times in all. */
export async function putBytes(
  store: S3Store,
  key: string,
  body: Uint8Array,
  attempts: number,
  options: WriteOptions = {},
): Promise<void> {
  const md5 = createHash("md5").update(body).digest("base64");
  await withRetry(() => store.put(key, body, md5, options), { attempts, signal: options.signal });
}
