/**
 * Pure: one setting's text → its value, as the table's kind says (string, size, count, bool,
 * endpoint). Every error names the setting, the value (never a secret, never a URL's
 * credentials) and where it came from.
 *
 * @module
 */

import { UsageError } from "../base/errors.ts";
import { parseSize } from "./size.ts";
import { parseSendFlags } from "./send_flags.ts";
import type { SettingDef, Source } from "./settings.ts";

/** Settings whose value is sent in an HTTP header (or signs one): no control characters. */
const HEADER_SETTINGS = new Set(["S3_STORAGE_CLASS", "S3_REGION"]);
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTER = /[\x00-\x1f\x7f]/;

/** S3's limit on an object key, in UTF-8 bytes: `S3_PREFIX` alone cannot be longer. */
const MAX_KEY_BYTES = 1024;
/** The longest value z3 sends in a header from a setting (a storage class, a region). */
const MAX_HEADER_VALUE_BYTES = 256;
/** A value this long or longer is shown by its start and its size, not whole. */
const SHOWN_CHARS = 80;

const byteLength = (text: string) => new TextEncoder().encode(text).length;

/** `value` quoted for a message: whole, or its start and its size when it is long. */
function shortened(value: string): string {
  if (value.length <= SHOWN_CHARS) return `"${value}"`;
  return `"${value.slice(0, SHOWN_CHARS)}…" (${byteLength(value)} bytes)`;
}

/**
 * Parses `value` of `def`, which came from `source`.
 *
 * @throws {UsageError} `Cannot parse KEY "value" from SOURCE: why`
 */
export function parseSetting(def: SettingDef, value: string, source: Source): unknown {
  // A URL may carry user:password; never echo that part.
  const visible = def.kind === "endpoint" ? value.replace(/\/\/[^/]*@/, "//***@") : value;
  const shown = def.secret ? "(secret)" : shortened(visible);
  const fail = (why: string): never => {
    throw new UsageError(`Cannot parse ${def.key} ${shown} from ${source}: ${why}`);
  };
  switch (def.kind) {
    case "string":
      if (def.key === "S3_PREFIX" && byteLength(value) > MAX_KEY_BYTES) {
        fail(`${byteLength(value)} bytes, over S3's limit of ${MAX_KEY_BYTES} bytes for a key`);
      }
      if (HEADER_SETTINGS.has(def.key) && byteLength(value) > MAX_HEADER_VALUE_BYTES) {
        fail(`${byteLength(value)} bytes, more than the ${MAX_HEADER_VALUE_BYTES} z3 sends`);
      }
      if (HEADER_SETTINGS.has(def.key) && CONTROL_CHARACTER.test(value)) {
        fail("it holds a control character, which an HTTP header cannot carry");
      }
      if (def.choices && !def.choices.includes(value.toLowerCase())) {
        fail(`expected one of ${def.choices.join(", ")}`);
      }
      if (def.key === "SEND_FLAGS") return parseSendFlags(value, source);
      return def.choices ? value.toLowerCase() : value;
    case "count": {
      if (!/^\d+$/.test(value.trim())) fail("expected a whole number");
      const n = Number(value.trim());
      if (def.key === "CONCURRENCY" && (n < 1 || n > 64)) fail("expected 1 to 64");
      if (def.key === "S3_TIMEOUT" && n < 1) fail("expected at least 1 second");
      if (def.key === "MAX_RETRIES" && n > 100) fail("expected at most 100");
      if (def.key === "OBJECT_LOCK_DAYS" && n > 36500) fail("expected at most 36500 (100 years)");
      if (!Number.isSafeInteger(n)) fail("expected a whole number");
      return n;
    }
    case "size": {
      let bytes: number;
      try {
        bytes = parseSize(value);
      } catch (err) {
        return fail((err as Error).message);
      }
      if (def.key === "CHUNK_SIZE" && (bytes < 5 * 2 ** 20 || bytes > 5 * 2 ** 30)) {
        fail("expected 5M to 5G (S3's part size limits)");
      }
      return bytes;
    }
    case "bool":
      if (!/^(true|false|yes|no|1|0)$/i.test(value)) fail("expected true or false");
      return /^(true|yes|1)$/i.test(value);
    case "endpoint":
      return parseEndpoint(value, fail);
  }
}

/** `host`, `host:port` or a URL → a URL string without a trailing slash. */
function parseEndpoint(value: string, fail: (why: string) => never): string {
  const text = /^[a-z]+:\/\//i.test(value) ? value : `https://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail("expected a host name or a URL like http://127.0.0.1:7480");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") fail("expected http:// or https://");
  if (url.username || url.password) {
    fail("credentials do not belong in HOST; use S3_KEY_ID and S3_SECRET");
  }
  return url.origin + url.pathname.replace(/\/+$/, "");
}
