/**
 * The real S3 server for tests: Ceph radosgw on 127.0.0.1, started (and installed, as root) by
 * `tests/bed/s3_server.sh` and reused between runs while healthy. Each test file gets a fresh
 * bucket. Credentials are random per server and never printed.
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { S3Store } from "../../lib/backend/s3.ts";
import { run } from "./run.ts";

const SCRIPT = new URL("./s3_server.sh", import.meta.url).pathname;

/** Where the test server listens and how to log in. */
export interface S3Env {
  /** Plain HTTP endpoint (`http://127.0.0.1:PORT`), used by most tests. */
  S3_ENDPOINT: string;
  /** The same gateway over HTTPS (`https://127.0.0.1:PORT+3`), certificate signed by `S3_TLS_CA`. */
  S3_TLS_ENDPOINT: string;
  /** Path of the throwaway CA's PEM certificate that signed the HTTPS endpoint's certificate. */
  S3_TLS_CA: string;
  S3_KEY_ID: string;
  S3_SECRET: string;
  S3_REGION: string;
}

let cached: S3Env | undefined;

/** Starts (or reuses) the server; returns its settings, or a reason it cannot be had. */
export async function ensureS3(): Promise<S3Env | string> {
  if (cached) return cached;
  const start = await new Deno.Command("bash", {
    args: [SCRIPT, "start"],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!start.success) {
    const why = new TextDecoder().decode(start.stderr).trim().split("\n").slice(-2).join(" ");
    return `the S3 test server did not start (exit ${start.code}): ${why}`;
  }
  const text = await run(["bash", SCRIPT, "env"]);
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  if (
    !env.S3_ENDPOINT || !env.S3_TLS_ENDPOINT || !env.S3_TLS_CA || !env.S3_KEY_ID || !env.S3_SECRET
  ) {
    return "the S3 test server wrote no usable env file";
  }
  cached = {
    S3_ENDPOINT: env.S3_ENDPOINT,
    S3_TLS_ENDPOINT: env.S3_TLS_ENDPOINT,
    S3_TLS_CA: env.S3_TLS_CA,
    S3_KEY_ID: env.S3_KEY_ID,
    S3_SECRET: env.S3_SECRET,
    S3_REGION: env.S3_REGION ?? "us-east-1",
  };
  await sweepOldBuckets(cached).catch((err) => console.error(`test bed: sweep skipped: ${err}`));
  return cached;
}

/**
 * Deletes test buckets (`z3t-…`) older than an hour, with their objects and pending uploads, so
 * a gateway kept between runs does not fill its OSD (Ceph frees the space within a minute, see
 * `rgw gc` in s3_server.sh). Younger buckets may belong to a run in progress and are kept.
 * Bounded: at most 40 buckets per test process. `Z3_TEST_SWEEP_AGE_S` changes the age (seconds).
 */
async function sweepOldBuckets(env: S3Env): Promise<void> {
  const client = new S3Client({
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_KEY_ID, secretAccessKey: env.S3_SECRET },
  });
  try {
    const { Buckets = [] } = await client.send(new ListBucketsCommand({}));
    const old = Buckets.filter((b) =>
      b.Name?.startsWith("z3t-") && b.CreationDate &&
      Date.now() - b.CreationDate.getTime() >
        Number(Deno.env.get("Z3_TEST_SWEEP_AGE_S") ?? 3600) * 1000
    ).slice(0, 40);
    for (const { Name: Bucket } of old) {
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket }));
      for (const u of uploads.Uploads ?? []) {
        await client.send(
          new AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId }),
        );
      }
      await deleteEveryVersion(client, Bucket!);
      await client.send(new DeleteBucketCommand({ Bucket }));
    }
  } finally {
    client.destroy();
  }
}

/**
 * Deletes every version and delete marker in `Bucket` (in a bucket without versioning, every
 * object), locked GOVERNANCE versions too: with `x-amz-bypass-governance-retention`, which only
 * the test bed ever sends (z3 never does). A COMPLIANCE version still locked stays (and so does
 * the bucket): tests use COMPLIANCE only with dates they wait out.
 */
async function deleteEveryVersion(client: S3Client, Bucket: string): Promise<void> {
  for (let more = true; more;) {
    const page = await client.send(new ListObjectVersionsCommand({ Bucket }));
    const all = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])];
    for (const v of all) {
      await client.send(
        new DeleteObjectCommand({
          Bucket,
          Key: v.Key,
          VersionId: v.VersionId,
          BypassGovernanceRetention: true,
        }),
      );
    }
    more = all.length > 0 && page.IsTruncated === true;
  }
}

function bedClient(env: S3Env): S3Client {
  return new S3Client({
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_KEY_ID, secretAccessKey: env.S3_SECRET },
  });
}

/**
 * Creates a fresh bucket with Object Lock enabled (and so versioning) and returns a store for it
 * and `remove`, which deletes every version in it (bypassing GOVERNANCE locks) and the bucket.
 */
export async function freshLockedBucket(
  env: S3Env,
  label: string,
): Promise<{ store: S3Store; remove: () => Promise<void> }> {
  const store = new S3Store({
    bucket: uniqueBucket(label),
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    keyId: env.S3_KEY_ID,
    secret: env.S3_SECRET,
  });
  await store.createBucket({ objectLock: true });
  const remove = async () => {
    const client = bedClient(env);
    try {
      const Bucket = store.bucket;
      const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket }));
      for (const u of uploads.Uploads ?? []) {
        await client.send(
          new AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId }),
        );
      }
      await deleteEveryVersion(client, Bucket);
      await client.send(new DeleteBucketCommand({ Bucket }));
    } finally {
      client.destroy();
    }
  };
  return { store, remove };
}

/** A unique bucket name for one test file. */
export function uniqueBucket(label: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  return `z3t-${label}-${Deno.pid}-${rand}`.toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63);
}

/** Creates a fresh bucket and returns a store for it. */
export async function freshBucket(env: S3Env, label: string): Promise<S3Store> {
  const store = new S3Store({
    bucket: uniqueBucket(label),
    endpoint: env.S3_ENDPOINT,
    region: env.S3_REGION,
    keyId: env.S3_KEY_ID,
    secret: env.S3_SECRET,
  });
  await store.createBucket();
  return store;
}

/** The environment a z3/pput child process needs to reach `bucket` on the test server. */
export function childEnv(env: S3Env, bucket: string): Record<string, string> {
  return {
    BUCKET: bucket,
    HOST: env.S3_ENDPOINT,
    S3_KEY_ID: env.S3_KEY_ID,
    S3_SECRET: env.S3_SECRET,
    S3_REGION: env.S3_REGION,
  };
}
