/**
 * The only module that speaks S3. A narrow interface over the AWS SDK's S3 client, set up for
 * any S3 endpoint (path-style, custom endpoint, checksums only when required) with the SDK's own
 * retries off: retry policy lives in `retry.ts`, one per call path. Every request goes through
 * `http.ts`, the one HTTP path.
 *
 * Contracts: every method either does what it says or throws an {@linkcode S3Error} whose
 * `retryable` says whether trying again may help. Errors never carry credentials.
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
  /** The SSE response headers, where the server sent them (see `etag_md5.ts`). */
  encryption: { serverSideEncryption?: string; customerAlgorithm?: string };
  /** `x-amz-version-id`, in a versioned bucket. */
  versionId?: string;
  /**
   * The Object Lock headers exactly as the server sent them (`x-amz-object-lock-mode`,
   * `-retain-until-date`), unparsed: the bucket is untrusted, `object_lock.ts` parses them.
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

const unquote = (etag: string | undefined) => (etag ?? "").replaceAll('"', "");

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
    const found: KeyVersion[] = [];
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const out = await this.#send(
        `list the versions of "${key}" in bucket "${this.bucket}"`,
        () =>
          this.#client.send(
            new ListObjectVersionsCommand({
              Bucket: this.bucket,
              Prefix: key,
              KeyMarker: keyMarker,
              VersionIdMarker: idMarker,
            }),
            { abortSignal: signal },
          ),
      );
      const all = [
        ...(out.Versions ?? []).map((v) => ({ ...v, deleteMarker: false })),
        ...(out.DeleteMarkers ?? []).map((v) => ({ ...v, deleteMarker: true })),
      ];
      for (const v of all) {
        if (v.Key !== key || !v.VersionId) continue;
        found.push({
          versionId: v.VersionId,
          isLatest: v.IsLatest === true,
          deleteMarker: v.deleteMarker,
        });
      }
      keyMarker = out.IsTruncated ? out.NextKeyMarker : undefined;
      idMarker = out.IsTruncated ? out.NextVersionIdMarker : undefined;
    } while (keyMarker);
    return found;
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
  async *list(prefix: string, signal?: AbortSignal): AsyncGenerator<ListedObject> {
    let token: string | undefined;
    do {
      const out = await this.#send(
        `list bucket "${this.bucket}" under "${prefix}"`,
        () =>
          this.#client.send(
            new ListObjectsV2Command({
              Bucket: this.bucket,
              Prefix: prefix,
              ContinuationToken: token,
            }),
            { abortSignal: signal },
          ),
      );
      for (const o of out.Contents ?? []) {
        yield {
          key: o.Key!,
          size: o.Size ?? 0,
          etag: unquote(o.ETag),
          lastModified: o.LastModified,
        };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
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

  /** The answer body of a GetObject of `key` (see {@linkcode S3Store.get}), as sent by lib/http.ts. */
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
          IfMatch: options.etag ? `"${options.etag}"` : undefined,
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
    return unquote(out.ETag);
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

  /** Completes a multipart upload from its parts in order. */
  async completeMultipart(
    key: string,
    uploadId: string,
    parts: { partNumber: number; etag: string }[],
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#send(`complete multipart upload of "${key}"`, () =>
      this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: {
            Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: `"${p.etag}"` })),
          },
        }),
        { abortSignal: signal },
      ));
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

  /** Multipart uploads in progress under `prefix`. */
  async *listMultipartUploads(
    prefix: string,
    signal?: AbortSignal,
  ): AsyncGenerator<PendingUpload> {
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    do {
      const out = await this.#send(
        `list multipart uploads in bucket "${this.bucket}"`,
        () =>
          this.#client.send(
            new ListMultipartUploadsCommand({
              Bucket: this.bucket,
              Prefix: prefix,
              KeyMarker: keyMarker,
              UploadIdMarker: idMarker,
            }),
            { abortSignal: signal },
          ),
      );
      for (const u of out.Uploads ?? []) {
        yield { key: u.Key!, uploadId: u.UploadId!, initiated: u.Initiated };
      }
      keyMarker = out.IsTruncated ? out.NextKeyMarker : undefined;
      idMarker = out.IsTruncated ? out.NextUploadIdMarker : undefined;
    } while (keyMarker);
  }

  /** The parts already uploaded to a pending multipart upload, by part number. */
  async listParts(
    key: string,
    uploadId: string,
    signal?: AbortSignal,
  ): Promise<Map<number, { etag: string; size: number }>> {
    const parts = new Map<number, { etag: string; size: number }>();
    let marker: string | undefined;
    do {
      const out = await this.#send(
        `list parts of the pending upload of "${key}"`,
        () =>
          this.#client.send(
            new ListPartsCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumberMarker: marker,
            }),
            { abortSignal: signal },
          ),
      );
      for (const p of out.Parts ?? []) {
        if (p.PartNumber !== undefined) {
          parts.set(p.PartNumber, { etag: unquote(p.ETag), size: p.Size ?? 0 });
        }
      }
      marker = out.IsTruncated ? out.NextPartNumberMarker : undefined;
    } while (marker);
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
