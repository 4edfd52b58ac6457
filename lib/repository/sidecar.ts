/**
 * z3's small JSON objects beside the backups (check records, pending-upload records, properties
 * sidecars): one PutObject of `JSON.stringify(value)` and a newline, with its Content-MD5,
 * retried.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { withRetry } from "../backend/retry.ts";
import type { S3Store, WriteOptions } from "../backend/s3.ts";

/** Writes `value` as JSON to `key`, retried up to `attempts` times in all. */
export async function putJson(
  store: S3Store,
  key: string,
  value: unknown,
  attempts: number,
  options: WriteOptions = {},
): Promise<void> {
  const body = new TextEncoder().encode(JSON.stringify(value) + "\n");
  const md5 = createHash("md5").update(body).digest("base64");
  await withRetry(() => store.put(key, body, md5, options), { attempts, signal: options.signal });
}
