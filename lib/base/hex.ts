/**
 * Pure: bytes as text, the two ways S3 wants them: hex (ETags, check records) and base64
 * (Content-MD5).
 *
 * @module
 */

/** Lower-case hex of `bytes`, two digits per byte. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Base64 of `bytes` (for short values such as an MD5). */
export function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
