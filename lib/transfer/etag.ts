/**
 * The one place for ETag maths. An S3 ETag (as `S3Store` hands it out: without quotes) is the
 * hex MD5 of an object's bytes when it was stored with one PutObject, and for a multipart upload
 * the MD5 of its parts' MD5s followed by `-` and the part count; every check z3 makes (the
 * upload's read-back, each download, verify) compares MD5s with it. Here:
 * - {@linkcode multipartEtag}: the ETag a multipart upload gets from its part MD5s;
 * - {@linkcode etagPartCount}: the part count an ETag states, or `undefined` for a single PUT's;
 * - {@linkcode isMd5Hex}: whether a text is an MD5 as ETags and check records write it;
 * - {@linkcode etagNotMd5}: whether S3 says (by the object's encryption) that its ETag is
 *   something else, so that z3 names that cause instead of reporting corruption.
 *
 * Quoting belongs to the wire: `S3Store` strips the quotes off every ETag it reads and adds them
 * where a request carries one.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { S3Error } from "../base/errors.ts";

/** The multipart ETag of part MD5s (raw digests, in part order): md5(concat(md5s)) + "-" + count. */
export function multipartEtag(md5s: Uint8Array[]): string {
  const h = createHash("md5");
  for (const m of md5s) h.update(m);
  return `${h.digest("hex")}-${md5s.length}`;
}

/** The part count of a multipart ETag (`…-3` is 3), or `undefined` for a single PUT's ETag. */
export function etagPartCount(etag: string): number | undefined {
  const suffix = /-(\d+)$/.exec(etag);
  return suffix ? Number(suffix[1]) : undefined;
}

/** Whether `text` is an MD5 as ETags and check records write it: 32 lower-case hex digits. */
export function isMd5Hex(text: string): boolean {
  return /^[0-9a-f]{32}$/.test(text);
}

/** What HeadObject says about how an object is encrypted (the SSE response headers). */
export interface Encryption {
  /** `x-amz-server-side-encryption` (`AES256`, `aws:kms`, `aws:kms:dsse`). */
  serverSideEncryption?: string;
  /** `x-amz-server-side-encryption-customer-algorithm` (SSE-C). */
  customerAlgorithm?: string;
}

/**
 * Why the object's ETag cannot be the MD5 of its bytes, or `undefined` when it can be: S3 gives
 * objects encrypted with SSE-KMS or SSE-C (customer keys) an ETag that is not the MD5 of their
 * data, so neither z3's upload check nor its download checks can work there. SSE-S3 (`AES256`)
 * keeps MD5 ETags.
 */
export function etagNotMd5(encryption: Encryption): string | undefined {
  const sse = encryption.serverSideEncryption;
  if (encryption.customerAlgorithm) {
    return `it is encrypted with a customer key (SSE-C, ` +
      `x-amz-server-side-encryption-customer-algorithm: ${encryption.customerAlgorithm})`;
  }
  if (sse && sse.startsWith("aws:kms")) {
    return `it is encrypted with SSE-KMS (x-amz-server-side-encryption: ${sse})`;
  }
  return undefined;
}

/**
 * The error for an object whose ETag is not an MD5 (see {@linkcode etagNotMd5}); `done` says what
 * z3 did about it (`the object was deleted`).
 */
export function etagNotMd5Error(action: string, key: string, why: string, done?: string): S3Error {
  return new S3Error(
    `Cannot ${action} "${key}": ${why}, so its ETag is not the MD5 of its bytes and z3 cannot ` +
      `check them${done ? `; ${done}` : ""}; use a bucket without SSE-KMS or SSE-C default ` +
      `encryption (SSE-S3 is fine)`,
  );
}
