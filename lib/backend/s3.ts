/**
 * The only module that speaks S3. A narrow interface over the AWS SDK's S3 client, set up for
 * any S3 endpoint (path-style, custom endpoint, checksums only when required) with the SDK's own
 * retries off: retry policy lives in `retry.ts`, one per call path. Every request goes through
 * `http.ts`, the one HTTP path.
 *
 * Contracts: every method either does what it says or throws an {@linkcode S3Error} whose
 * `retryable` says whether trying again may help. Errors never carry credentials. The four
 * listings page through one helper ({@linkcode pages}): a listing ends only on a page that says
 * it is the last (which the server may say falsely: nothing here can tell), and a page that says
 * more follow without saying where, or pointing back at a page already listed, throws.
 *
 * @module
 */

import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  ListPartsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  type StorageClass,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { permissionHint, S3Error } from "../base/errors.ts";
import { HttpHandler, TlsCertificateError } from "./http.ts";
import { RateLimit } from "./rate_limit.ts";

/** Connection settings for {@linkcode S3Store}. */
export interface S3Settings {
  /** Bucket name. */
  bucket: string;
  /** Endpoint URL, e.g. `http://127.0.0.1:7480`; `undefined` means AWS. */
  endpoint?: string;
  /** Region. @default {"us-east-1"} */
  region?: string;
  /** Access key id; `undefined` uses the SDK's default credential chain. */
  keyId?: string;
  /** Secret access key. */
  secret?: string;
  /** Path-style addressing. @default {true when an endpoint is set} */
  pathStyle?: boolean;
  /**
   * When to send/validate the SDK's flexible checksums. Many S3-compatible servers (Ceph 16
   * among them) reject the streamed CRC trailer the SDK sends by default since January 2025.
   * @default {"when_required"}
   */
  checksums?: "when_required" | "when_supported";
  /** A request whose socket makes no progress for this long fails (retryably). @default {120000} */
  stallMs?: number;
  /** PEM certificates trusted for HTTPS besides Deno's built-in roots (`S3_CA_FILE`). */
  caCerts?: string[];
  /** `S3_CA_ONLY`: trust `caCerts` alone, not the built-in roots. @default {false} */
  caOnly?: boolean;
  /** `MAX_RATE`, bytes per second for all transfers of this store together; unset: none. */
  maxRate?: number;
}

/** What HeadObject tells about an object. */
export interface ObjectInfo {
  key: string;
  size: number;
  /** The ETag without quotes. */
  etag: string;
  /** User metadata, keys lower-cased. */
  metadata: Record<string, string>;
  lastModified?: Date;
  /** The SSE response headers, where the server sent them (see `transfer/etag.ts`). */
  encryption: { serverSideEncryption?: string; customerAlgorithm?: string };
  /** `x-amz-version-id`, in a versioned bucket. */
  versionId?: string;
  /**
   * The Object Lock headers exactly as the server sent them (`x-amz-object-lock-mode`,
   * `-retain-until-date`), unparsed: the bucket is untrusted, `chain/object_lock_policy.ts` parses them.
   */
  lockHeaders: LockHeaders;
}

/** Object Lock response headers, raw. */
export interface LockHeaders {
  mode?: string;
  until?: string;
}

/** A retention to set: mode and date. */
export interface Retention {
  mode: "GOVERNANCE" | "COMPLIANCE";
  until: Date;
}

/** What GetObjectLockConfiguration says about the bucket. */
export interface BucketLock {
  /** Object Lock is enabled on the bucket. */
  enabled: boolean;
  /** The bucket's default retention rule, when it has one. */
  rule?: { mode?: string; days?: number; years?: number };
}

/** What one write stored: its ETag (unquoted) and, in a versioned bucket, its version. */
export interface Written {
  etag: string;
  versionId?: string;
}

/** One version of a key (ListObjectVersions), delete markers included. */
export interface KeyVersion {
  versionId: string;
  isLatest: boolean;
  deleteMarker: boolean;
}

/** One entry of a listing. */
export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified?: Date;
}

/** A multipart upload that was started and not completed or aborted. */
export interface PendingUpload {
  key: string;
  uploadId: string;
  initiated?: Date;
}

/** Options for writing an object. */
export interface WriteOptions {
  metadata?: Record<string, string>;
  storageClass?: string;
  signal?: AbortSignal;
  /** Object Lock retention for the new object (with Content-MD5, as Object Lock requires). */
  lock?: Retention;
}

/** An error from S3, classified. */
export class S3RequestError extends S3Error {
  /** Whether another attempt may succeed (network, 5xx, throttling). */
  readonly retryable: boolean;
  /** HTTP status, when the server answered. */
  readonly status?: number;
  /** S3 error code, when the server answered with one. */
  readonly code?: string;
  constructor(
    message: string,
    retryable: boolean,
    status?: number,
    code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.retryable = retryable;
    this.status = status;
    this.code = code;
  }
}

const RETRYABLE_CODES = new Set([
  "SlowDown",
  "RequestTimeout",
  "RequestTimeTooSkewed",
  "InternalError",
  "ServiceUnavailable",
  "Throttling",
  "ThrottlingException",
]);

interface SdkErrorShape {
  name?: string;
  message?: string;
  code?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

/** Turns whatever the SDK (or the network) threw into an {@linkcode S3RequestError}. */
export function classifyError(what: string, err: unknown): S3RequestError {
  if (err instanceof S3RequestError) return err;
  const e = (err ?? {}) as SdkErrorShape;
  const status = e.$metadata?.httpStatusCode;
  const code = e.Code ?? (e.name && e.name !== "Error" ? e.name : e.code);
  if ((err as Error)?.name === "AbortError") {
    return new S3RequestError(`Cannot ${what}: aborted`, false, undefined, "AbortError", {
      cause: err,
    });
  }
  // A refused certificate will be refused again: say which host and the setting, never retry.
  if (err instanceof TlsCertificateError) {
    return new S3RequestError(
      `Cannot ${what}: ${err.message}`,
      false,
      undefined,
      "TlsCertificate",
      {
        cause: err,
      },
    );
  }
  // No S3_KEY_ID / S3_SECRET and nothing in the AWS credential chain: asking again cannot help.
  if (e.name === "CredentialsProviderError") {
    return new S3RequestError(
      `Cannot ${what}: no credentials: set S3_KEY_ID and S3_SECRET (or S3_KEY_ID_FILE and ` +
        `S3_SECRET_FILE) in the environment or the config file, or give the AWS credential ` +
        `chain some (AWS_PROFILE, ~/.aws/credentials, an instance role)`,
      false,
      undefined,
      "CredentialsProviderError",
      { cause: err },
    );
  }
  // Deno refused the request because a permission flag is missing: say which, and never retry.
  const denied = status === undefined ? permissionHint(e.message ?? "") : undefined;
  if (denied) {
    return new S3RequestError(`Cannot ${what}: ${denied}`, false, undefined, "NotCapable", {
      cause: err,
    });
  }
  let retryable: boolean;
  let detail: string;
  if (status !== undefined) {
    retryable = status >= 500 || status === 429 || RETRYABLE_CODES.has(code ?? "");
    detail = `${code ?? "error"} (HTTP ${status})`;
    const msg = e.message && e.message !== code && e.message !== "UnknownError"
      ? `: ${e.message}`
      : "";
    detail += msg;
    if (status === 403) detail += " (check S3_KEY_ID / S3_SECRET and the bucket policy)";
    if (code === "NoSuchBucket") detail += " (check BUCKET)";
  } else {
    retryable = true; // no HTTP answer: connection refused/reset, DNS, timeout
    detail = `${e.code ?? e.name ?? "network error"}: ${e.message ?? String(err)}`;
  }
  return new S3RequestError(`Cannot ${what}: ${detail}`, retryable, status, code, { cause: err });
}

/** ETags go over the wire quoted; `S3Store` takes and gives them without quotes. */
const unquote = (etag: string | undefined) => (etag ?? "").replaceAll('"', "");
const quote = (etag: string) => `"${etag}"`;

/** {@linkcode S3Store.getInto} for a body that is not a byte stream: its chunks copied. */
async function copyInto(
  what: string,
  body: ReadableStream<Uint8Array>,
  into: Uint8Array,
): Promise<{ bytes: Uint8Array; filled: number; more: boolean }> {
  let filled = 0;
  try {
    for await (const chunk of body) {
      if (filled + chunk.length > into.length) {
        into.set(chunk.subarray(0, into.length - filled), filled);
        return { bytes: into, filled: into.length, more: true };
      }
      into.set(chunk, filled);
      filled += chunk.length;
    }
  } catch (err) {
    throw classifyError(what, err);
  }
  return { bytes: into.subarray(0, filled), filled, more: false };
}

/** A bucket on an S3 endpoint. */
export class S3Store {
  /** The bucket name. */
  readonly bucket: string;
  #client: S3Client;
  #endpointLabel: string;

  constructor(settings: S3Settings) {
    this.bucket = settings.bucket;
    this.#endpointLabel = settings.endpoint ?? "AWS S3";
    const mode = settings.checksums === "when_supported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED";
    this.#client = new S3Client({
      endpoint: settings.endpoint,
      region: settings.region ?? "us-east-1",
      forcePathStyle: settings.pathStyle ?? settings.endpoint !== undefined,
      credentials: settings.keyId !== undefined && settings.secret !== undefined
        ? { accessKeyId: settings.keyId, secretAccessKey: settings.secret }
        : undefined,
      requestChecksumCalculation: mode,
      responseChecksumValidation: mode,
      maxAttempts: 1,
      requestHandler: new HttpHandler({
        stallMs: settings.stallMs,
        caCerts: settings.caCerts,
        caOnly: settings.caOnly,
        rateLimit: settings.maxRate ? new RateLimit(settings.maxRate) : undefined,
      }),
    });
    // Content-MD5 protects every part we send; hashing the payload again with SHA-256 for SigV4
    // costs a CPU second per GB for nothing. Parts and single puts go UNSIGNED-PAYLOAD.
    this.#client.middlewareStack.add(
      (next, context) => (args) => {
        const cmd = (context as { commandName?: string }).commandName;
        const req = args.request as { headers?: Record<string, string> };
        if ((cmd === "UploadPartCommand" || cmd === "PutObjectCommand") && req.headers) {
          req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD";
        }
        return next(args);
      },
      { step: "build", name: "z3UnsignedPayload" },
    );
  }

  /** Where requests go, for messages. */
  get endpoint(): string {
    return this.#endpointLabel;
  }

  async #send<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw classifyError(what, err);
    }
  }

  /** Creates the bucket (tests and demo), with Object Lock enabled when `objectLock`. */
  async createBucket(options: { objectLock?: boolean } = {}): Promise<void> {
    await this.#send(
      `create bucket "${this.bucket}"`,
      () =>
        this.#client.send(
          new CreateBucketCommand({
            Bucket: this.bucket,
            ObjectLockEnabledForBucket: options.objectLock || undefined,
          }),
        ),
    );
  }

  /** Whether the bucket has Object Lock enabled, and its default retention rule. */
  async lockConfiguration(signal?: AbortSignal): Promise<BucketLock> {
    try {
      const out = await this.#client.send(
        new GetObjectLockConfigurationCommand({ Bucket: this.bucket }),
        { abortSignal: signal },
      );
      const config = out.ObjectLockConfiguration;
      const rule = config?.Rule?.DefaultRetention;
      return {
        enabled: config?.ObjectLockEnabled === "Enabled",
        rule: rule ? { mode: rule.Mode, days: rule.Days, years: rule.Years } : undefined,
      };
    } catch (err) {
      const e = err as SdkErrorShape;
      if (e.name === "ObjectLockConfigurationNotFoundError") return { enabled: false };
      throw classifyError(`read the Object Lock configuration of bucket "${this.bucket}"`, err);
    }
  }

  /**
   * Sets the retention of `key` (its version `versionId`, else the current one). Extending is
   * allowed in both modes; shortening is refused by the server (z3 never asks for it).
   */
  async putRetention(
    key: string,
    versionId: string | undefined,
    retention: Retention,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#send(
      `set the retention of "${key}" in bucket "${this.bucket}"`,
      () =>
        this.#client.send(
          new PutObjectRetentionCommand({
            Bucket: this.bucket,
            Key: key,
            VersionId: versionId,
            Retention: { Mode: retention.mode, RetainUntilDate: retention.until },
          }),
          { abortSignal: signal },
        ),
    );
  }

  /** Every version of exactly `key` (delete markers too), newest first, all pages. */
  async versions(key: string, signal?: AbortSignal): Promise<KeyVersion[]> {
    const what = `list the versions of "${key}" in bucket "${this.bucket}"`;
    return await Array.fromAsync(
      pages<KeyVersion, { key: string; id?: string }>(
        { what, prefix: key, cursorName: "NextKeyMarker" },
        async (marker) => {
          const out = await this.#send(what, () =>
            this.#client.send(
              new ListObjectVersionsCommand({
                Bucket: this.bucket,
                Prefix: key,
                KeyMarker: marker?.key,
                VersionIdMarker: marker?.id,
              }),
              { abortSignal: signal },
            ));
          const all = [
            ...(out.Versions ?? []).map((v) => ({ ...v, deleteMarker: false })),
            ...(out.DeleteMarkers ?? []).map((v) => ({ ...v, deleteMarker: true })),
          ];
          return {
            items: all.filter((v) => v.Key === key && v.VersionId).map((v) => ({
              versionId: v.VersionId!,
              isLatest: v.IsLatest === true,
              deleteMarker: v.deleteMarker,
            })),
            truncated: out.IsTruncated === true,
            next: out.NextKeyMarker
              ? { key: out.NextKeyMarker, id: out.NextVersionIdMarker }
              : undefined,
          };
        },
      ),
    );
  }

  /** Deletes one version of `key` for good (refused with 403 while it is locked). */
  async deleteVersion(key: string, versionId: string, signal?: AbortSignal): Promise<void> {
    await this.#send(
      `delete version "${versionId}" of "${key}" from bucket "${this.bucket}"`,
      () =>
        this.#client.send(
          new DeleteObjectCommand({ Bucket: this.bucket, Key: key, VersionId: versionId }),
          { abortSignal: signal },
        ),
    );
  }

  /** Object metadata, or `undefined` when there is no such object. */
  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | undefined> {
    try {
      const command = new HeadObjectCommand({ Bucket: this.bucket, Key: key });
      const lockHeaders = takeLockHeaders(command);
      const out = await this.#client.send(command, { abortSignal: signal });
      return {
        key,
        size: out.ContentLength ?? 0,
        etag: unquote(out.ETag),
        metadata: lowerKeys(out.Metadata ?? {}),
        lastModified: out.LastModified,
        encryption: {
          serverSideEncryption: out.ServerSideEncryption,
          customerAlgorithm: out.SSECustomerAlgorithm,
        },
        versionId: out.VersionId,
        lockHeaders,
      };
    } catch (err) {
      const e = err as SdkErrorShape;
      if (e.$metadata?.httpStatusCode === 404) return undefined;
      throw classifyError(`read metadata of "${key}" in bucket "${this.bucket}"`, err);
    }
  }

  /** Every object whose key starts with `prefix`, in key order, all pages. */
  list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject> {
    const what = `list bucket "${this.bucket}" under "${prefix}"`;
    return pages<ListedObject, string>(
      { what, prefix, cursorName: "NextContinuationToken" },
      async (token) => {
        const out = await this.#send(what, () =>
          this.#client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: prefix,
              ContinuationToken: token,
            }),
            { abortSignal: signal },
          ));
        return {
          items: (out.Contents ?? []).map((o) => ({
            key: o.Key!,
            size: o.Size ?? 0,
            etag: unquote(o.ETag),
            lastModified: o.LastModified,
          })),
          truncated: out.IsTruncated === true,
          next: out.NextContinuationToken || undefined,
        };
      },
    );
  }

  /**
   * The object's bytes from `start` (default 0) to `end` (inclusive, default the last) as a stream. With `etag`, the server must still
   * hold that version (If-Match), so a resumed download never splices two versions. Errors while
   * the body streams are classified like request errors.
   */
  async get(
    key: string,
    options: { start?: number; end?: number; etag?: string; signal?: AbortSignal } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const what = `download "${key}" from bucket "${this.bucket}"`;
    const reader = (await this.#body(what, key, options)).getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const r = await reader.read();
          if (r.done) controller.close();
          else controller.enqueue(r.value);
        } catch (err) {
          controller.error(classifyError(what, err));
        }
      },
      cancel: (reason) => reader.cancel(reason),
    });
  }

  /**
   * Bytes `start` to `end` (inclusive) of the object read straight from the socket into `into`
   * (no chunk is allocated or copied on the way), with `If-Match` on `etag` like
   * {@linkcode S3Store.get}. Each read hands `into`'s memory on, so `into` is detached afterwards:
   * the answer's `bytes` views that same memory (its first `filled` bytes); `more` says the body
   * held bytes beyond `into`'s length.
   */
  async getInto(
    key: string,
    into: Uint8Array,
    options: { start: number; end: number; etag?: string; signal?: AbortSignal },
  ): Promise<{ bytes: Uint8Array; filled: number; more: boolean }> {
    const what = `download "${key}" from bucket "${this.bucket}"`;
    const body = await this.#body(what, key, options);
    let reader: ReadableStreamBYOBReader;
    try {
      reader = body.getReader({ mode: "byob" });
    } catch {
      return await copyInto(what, body, into); // the SDK wrapped the body (checksum validation)
    }
    // Each read detaches the memory it is given, `into` too: its offset and length are kept.
    const { byteOffset, length } = into;
    let buffer = into.buffer as ArrayBuffer;
    let filled = 0;
    try {
      while (filled < length) {
        const r = await reader.read(new Uint8Array(buffer, byteOffset + filled, length - filled));
        if (r.value) buffer = r.value.buffer as ArrayBuffer;
        if (r.done) break;
        filled += r.value.length;
      }
      const more = filled === length && !(await reader.read(new Uint8Array(1))).done;
      if (more) await reader.cancel();
      return { bytes: new Uint8Array(buffer, byteOffset, filled), filled, more };
    } catch (err) {
      reader.cancel().catch(() => {});
      throw classifyError(what, err);
    }
  }

  /** The answer body of a GetObject of `key` (see {@linkcode S3Store.get}), as sent by lib/backend/http.ts. */
  async #body(
    what: string,
    key: string,
    options: { start?: number; end?: number; etag?: string; signal?: AbortSignal },
  ): Promise<ReadableStream<Uint8Array>> {
    const out = await this.#send(what, () =>
      this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Range: options.start || options.end !== undefined
            ? `bytes=${options.start ?? 0}-${options.end ?? ""}`
            : undefined,
          IfMatch: options.etag ? quote(options.etag) : undefined,
        }),
        { abortSignal: options.signal },
      ));
    const body = out.Body as
      | { transformToWebStream?: () => ReadableStream<Uint8Array> }
      | undefined;
    if (!body?.transformToWebStream) throw new S3RequestError(`Cannot ${what}: no body`, true);
    return body.transformToWebStream();
  }

  /** Stores `body` as one object with one PutObject; returns the ETag. */
  async put(
    key: string,
    body: Uint8Array,
    md5Base64: string,
    options: WriteOptions = {},
  ): Promise<string> {
    return (await this.putVersion(key, body, md5Base64, options)).etag;
  }

  /**
   * {@linkcode S3Store.put}, returning the version it wrote too (`x-amz-version-id`; absent in
   * a bucket without versioning): the one version this write may later delete.
   */
  async putVersion(
    key: string,
    body: Uint8Array,
    md5Base64: string,
    options: WriteOptions = {},
  ): Promise<Written> {
    const out = await this.#send(
      `upload "${key}" to bucket "${this.bucket}"`,
      () =>
        this.#client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: body,
            ContentLength: body.length,
            ContentMD5: md5Base64,
            Metadata: options.metadata,
            StorageClass: options.storageClass as StorageClass | undefined,
            ...lockParams(options.lock),
          }),
          { abortSignal: options.signal },
        ),
    );
    return { etag: unquote(out.ETag), versionId: out.VersionId };
  }

  /** Starts a multipart upload and returns its id. */
  async createMultipart(key: string, options: WriteOptions = {}): Promise<string> {
    const out = await this.#send(
      `start multipart upload of "${key}" in bucket "${this.bucket}"`,
      () =>
        this.#client.send(
          new CreateMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            Metadata: options.metadata,
            StorageClass: options.storageClass as StorageClass | undefined,
            ...lockParams(options.lock),
          }),
          { abortSignal: options.signal },
        ),
    );
    if (!out.UploadId) {
      throw new S3RequestError(`Cannot start multipart upload of "${key}": no UploadId`, false);
    }
    return out.UploadId;
  }

  /** Uploads one part with its Content-MD5; returns the part's ETag. */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
    md5Base64: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const out = await this.#send(`upload part ${partNumber} of "${key}"`, () =>
      this.#client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: body.length,
          ContentMD5: md5Base64,
        }),
        { abortSignal: signal },
      ));
    return unquote(out.ETag);
  }

  /**
   * Completes a multipart upload from its parts in order; returns the version it wrote
   * (`x-amz-version-id`), or `undefined` in a bucket without versioning.
   */
  async completeMultipart(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const out = await this.#send(`complete multipart upload of "${key}"`, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: quote(p.etag) })),
          },
        }),
        { abortSignal: signal },
      ));
    return out.VersionId;
  }

  /** Aborts a multipart upload; an upload that is already gone counts as aborted. */
  async abortMultipart(key: string, uploadId: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.#client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
        { abortSignal: signal },
      );
    } catch (err) {
      if ((err as SdkErrorShape).$metadata?.httpStatusCode === 404) return;
      throw classifyError(`abort multipart upload of "${key}"`, err);
    }
  }

  /** Multipart uploads in progress under `prefix`, all pages. */
  listMultipartUploads(prefix: string, signal?: AbortSignal): AsyncGenerator<PendingUpload> {
    const what = `list multipart uploads in bucket "${this.bucket}"`;
    return pages<PendingUpload, { key: string; id?: string }>(
      { what, prefix, cursorName: "NextKeyMarker" },
      async (marker) => {
        const out = await this.#send(what, () =>
          this.#client.send(
            new ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: prefix,
              KeyMarker: marker?.key,
              UploadIdMarker: marker?.id,
            }),
            { abortSignal: signal },
          ));
        return {
          items: (out.Uploads ?? []).map((u) => ({
            key: u.Key!,
            uploadId: u.UploadId!,
            initiated: u.Initiated,
          })),
          truncated: out.IsTruncated === true,
          next: out.NextKeyMarker
            ? { key: out.NextKeyMarker, id: out.NextUploadIdMarker }
            : undefined,
        };
      },
    );
  }

  /** The parts already uploaded to a pending multipart upload, by part number, all pages. */
  async listParts(
    key: string,
    uploadId: string,
    signal?: AbortSignal,
  ): Promise<Map<number, { etag: string; size: number }>> {
    const what = `list parts of the pending upload of "${key}"`;
    const parts = new Map<number, { etag: string; size: number }>();
    const listed = pages<{ number: number; etag: string; size: number }, string>(
      { what, prefix: key, cursorName: "NextPartNumberMarker" },
      async (marker) => {
        const out = await this.#send(what, () =>
          this.#client.send(
            new ListPartsCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumberMarker: marker,
            }),
            { abortSignal: signal },
          ));
        return {
          items: (out.Parts ?? []).filter((p) => p.PartNumber !== undefined).map((p) => ({
            number: p.PartNumber!,
            etag: unquote(p.ETag),
            size: p.Size ?? 0,
          })),
          truncated: out.IsTruncated === true,
          next: out.NextPartNumberMarker || undefined,
        };
      },
    );
    for await (const p of listed) parts.set(p.number, { etag: p.etag, size: p.size });
    return parts;
  }

  /** Deletes an object (absent objects are fine). */
  async delete(key: string): Promise<void> {
    await this.#send(
      `delete "${key}" from bucket "${this.bucket}"`,
      () => this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    );
  }

  /** Releases sockets. */
  close(): void {
    this.#client.destroy();
  }
}

/** One page of a listing: its items, whether more follow, and where the next page starts. */
interface Page<T, C> {
  items: T[];
  /** `IsTruncated`: the listing goes on after this page. */
  truncated: boolean;
  /** The cursor of the next page (token or markers), when the page gave one. */
  next?: C;
}

/**
 * Every item of a listing, page after page: `fetchPage` gets the page after a cursor (the first
 * page for `undefined`) until a page says it is the last. A page that says the listing goes on
 * yet gives no cursor, or a cursor already followed, is an {@linkcode S3RequestError} (not
 * retryable) naming the listing, its key prefix and what the page lacked: the endpoint is
 * untrusted, and neither the end of the listing nor an endless loop may follow from it.
 */
async function* pages<T, C>(
  listing: {
    /** What the requests do, as their errors say it (`list bucket "b" under "p/"`). */
    what: string;
    /** The key prefix (or key) listed. */
    prefix: string;
    /** The field a truncated page must fill (`NextContinuationToken`), for the error. */
    cursorName: string;
  },
  fetchPage: (cursor: C | undefined) => Promise<Page<T, C>>,
): AsyncGenerator<T> {
  const followed = new Set<string>();
  let cursor: C | undefined;
  for (let n = 1;; n++) {
    const page = await fetchPage(cursor);
    yield* page.items;
    if (!page.truncated) return;
    const broken = (why: string) =>
      new S3RequestError(
        `Cannot ${listing.what}: page ${n} of the listing under "${listing.prefix}" says it is ` +
          `truncated but ${why}, so the listing cannot go on (the S3 endpoint does not page ` +
          `as S3 does)`,
        false,
        undefined,
        "BrokenPagination",
      );
    if (page.next === undefined) throw broken(`gives no ${listing.cursorName}`);
    const key = JSON.stringify(page.next);
    if (followed.has(key)) throw broken(`gives ${listing.cursorName} ${key} again`);
    followed.add(key);
    cursor = page.next;
  }
}

function lockParams(lock: Retention | undefined) {
  return lock ? { ObjectLockMode: lock.mode, ObjectLockRetainUntilDate: lock.until } : {};
}

/**
 * Takes the Object Lock headers off `command`'s raw response before the SDK parses them (its
 * date parser would throw on a malformed date, failing the whole HeadObject): the returned
 * object is filled with them, unparsed, once the command has been sent.
 */
function takeLockHeaders(command: HeadObjectCommand): LockHeaders {
  const taken: LockHeaders = {};
  command.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const headers = (out.response as { headers?: Record<string, string> }).headers;
      if (headers) {
        taken.mode = headers["x-amz-object-lock-mode"];
        taken.until = headers["x-amz-object-lock-retain-until-date"];
        delete headers["x-amz-object-lock-mode"];
        delete headers["x-amz-object-lock-retain-until-date"];
      }
      return out;
    },
    { step: "deserialize", priority: "low", name: "z3LockHeaders" },
  );
  return taken;
}

function lowerKeys(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k.toLowerCase(), v]));
}
