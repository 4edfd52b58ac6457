/**
 * The local S3 server for tests that must not import `lib/` (the OpenZFS guest's tests): starts
 * it with `s3_server.sh` as `s3_bed.ts` does, and makes throwaway buckets with the AWS SDK
 * directly. Buckets are named `z3t-…`, so `s3_bed.ts`'s sweep removes any a crashed run left.
 *
 * @module
 */

import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";

const SCRIPT = new URL("./s3_server.sh", import.meta.url).pathname;

/** A throwaway bucket: the env a z3 child needs to reach it, and what a test asks of it. */
export interface TempBucket {
  name: string;
  /** `BUCKET`, `HOST`, `S3_KEY_ID`, `S3_SECRET`, `S3_REGION` for a z3 child. */
  env: Record<string, string>;
  /** Every key in the bucket. */
  keys(): Promise<string[]>;
  /** `key`'s size and user metadata (names without `x-amz-meta-`). */
  head(key: string): Promise<{ size: number; metadata: Record<string, string> }>;
  /** Deletes every object, then the bucket. */
  remove(): Promise<void>;
}

let settings: Record<string, string> | string | undefined;

async function output(args: string[]): Promise<{ ok: boolean; text: string; err: string }> {
  const out = await new Deno.Command("bash", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { ok: out.success, text: dec.decode(out.stdout), err: dec.decode(out.stderr) };
}

/** Starts (or reuses) the S3 server; its settings, or the reason it cannot be had. */
export async function s3Settings(): Promise<Record<string, string> | string> {
  if (settings) return settings;
  const start = await output([SCRIPT, "start"]);
  if (!start.ok) {
    return settings = `the S3 test server did not start: ${start.err.trim().split("\n").pop()}`;
  }
  const env: Record<string, string> = {};
  for (const line of (await output([SCRIPT, "env"])).text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  if (!env.S3_ENDPOINT || !env.S3_KEY_ID || !env.S3_SECRET) {
    return settings = "the S3 test server wrote no usable env file";
  }
  return settings = { ...env, S3_REGION: env.S3_REGION ?? "us-east-1" };
}

/** Makes a fresh bucket on the server `s3Settings()` returned. */
export async function tempBucket(s3: Record<string, string>, label: string): Promise<TempBucket> {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0].toString(36);
  const name = `z3t-${label}-${Deno.pid}-${rand}`.toLowerCase().replace(/[^a-z0-9-]/g, "-")
    .slice(0, 63);
  const client = () =>
    new S3Client({
      endpoint: s3.S3_ENDPOINT,
      region: s3.S3_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.S3_KEY_ID, secretAccessKey: s3.S3_SECRET },
    });
  const use = async <T>(fn: (c: S3Client) => Promise<T>): Promise<T> => {
    const c = client();
    try {
      return await fn(c);
    } finally {
      c.destroy();
    }
  };
  const keys = () =>
    use(async (c) => {
      const all: string[] = [];
      let token: string | undefined;
      do {
        const page = await c.send(
          new ListObjectsV2Command({ Bucket: name, ContinuationToken: token }),
        );
        all.push(...(page.Contents ?? []).map((o) => o.Key!));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return all;
    });
  await use((c) => c.send(new CreateBucketCommand({ Bucket: name })));
  return {
    name,
    env: {
      BUCKET: name,
      HOST: s3.S3_ENDPOINT,
      S3_KEY_ID: s3.S3_KEY_ID,
      S3_SECRET: s3.S3_SECRET,
      S3_REGION: s3.S3_REGION,
    },
    keys,
    head: (key) =>
      use(async (c) => {
        const out = await c.send(new HeadObjectCommand({ Bucket: name, Key: key }));
        return { size: out.ContentLength ?? -1, metadata: out.Metadata ?? {} };
      }),
    async remove() {
      for (const key of await keys()) {
        await use((c) => c.send(new DeleteObjectCommand({ Bucket: name, Key: key })));
      }
      await use((c) => c.send(new DeleteBucketCommand({ Bucket: name })));
    },
  };
}
