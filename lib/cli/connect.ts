/**
 * Builds the S3 store from a resolved configuration, refusing early (before any request) when
 * something it needs is missing.
 *
 * @module
 */

import type { Config } from "../config/config.ts";
import { UsageError } from "../base/errors.ts";
import { S3Store } from "../backend/s3.ts";

/** The store for `config`'s bucket. */
export function connect(config: Config): S3Store {
  if (!config.bucket) {
    throw new UsageError(
      "Cannot reach S3: BUCKET is not set (set it in the environment or in [main] of the config file)",
    );
  }
  if ((config.keyId === undefined) !== (config.secret === undefined)) {
    throw new UsageError(
      "Cannot reach S3: set both S3_KEY_ID and S3_SECRET, or neither (to use the AWS credential chain)",
    );
  }
  return new S3Store({
    bucket: config.bucket,
    endpoint: config.endpoint,
    region: config.region,
    keyId: config.keyId,
    secret: config.secret,
    pathStyle: config.pathStyle,
    checksums: config.checksums,
    stallMs: config.s3Timeout * 1000,
    caCerts: config.caCerts,
    caOnly: config.caOnly,
    maxRate: config.maxRate,
  });
}
