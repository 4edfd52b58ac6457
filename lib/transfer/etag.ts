/**
 * Whether an object's ETag can be the MD5 of its bytes, from what S3 says about its encryption.
 * Every check z3 makes (the upload's read-back, each download) compares MD5s with the ETag, so
 * where S3 says the ETag is something else, z3 names that cause instead of reporting corruption.
 *
 * @module
 */

import { S3Error } from "../base/errors.ts";

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
