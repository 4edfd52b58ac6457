/**
 * The SDK's HTTP handler, with one fast path: a PUT whose body is an in-memory byte array (an
 * UploadPart or a single PutObject, already signed by the SDK) is written straight to a
 * keep-alive socket instead of through Node's `http` compatibility layer, which costs about a
 * CPU second per GiB under Deno. Everything else (GET, HEAD, list, XML bodies) goes to the SDK's
 * own Node handler unchanged.
 *
 * The fast path speaks just enough HTTP/1.1 for S3's answers to a PUT: a status line, headers,
 * and a body framed by Content-Length, chunked encoding or connection close. A socket that makes
 * no progress for `stallMs` is closed and the request fails (retryably, with the retry policy).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { PassThrough, Readable } from "node:stream";
import { NodeHttpHandler } from "@smithy/node-http-handler";

/** The parts of the SDK's HttpRequest this handler reads. */
interface SdkRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

/** What the SDK expects back. */
interface SdkResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: Readable;
}

/** A network failure on the fast path (no HTTP answer). */
class SocketError extends Error {
  code: string;
  constructor(message: string, code = "ECONNRESET") {
    super(message);
    this.name = "SocketError";
    this.code = code;
  }
}

const encoder = new TextEncoder();
const CRLF2 = [13, 10, 13, 10];

/** Percent-encodes like the SDK (RFC 3986 unreserved characters only). */
function escape(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function queryString(query: SdkRequest["query"]): string {
  const parts: string[] = [];
  for (const key of Object.keys(query ?? {}).sort()) {
    const value = query![key];
    if (value === null || value === undefined) parts.push(escape(key));
    else if (Array.isArray(value)) {
      for (const v of value) parts.push(`${escape(key)}=${escape(v)}`);
    } else parts.push(`${escape(key)}=${escape(value)}`);
  }
  return parts.length ? `?${parts.join("&")}` : "";
}

/** One keep-alive connection with a read buffer. */
class Connection {
  readonly conn: Deno.Conn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #stallMs: number;
  used = false;

  constructor(conn: Deno.Conn, stallMs: number) {
    this.conn = conn;
    this.#stallMs = stallMs;
  }

  async #guard<T>(op: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stall = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close();
        reject(new SocketError(`no progress for ${this.#stallMs / 1000} s`, "ETIMEDOUT"));
      }, this.#stallMs);
    });
    try {
      return await Promise.race([op, stall]);
    } finally {
      clearTimeout(timer);
    }
  }

  async writeAll(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#guard(this.conn.write(bytes.subarray(off)));
  }

  async #fill(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buf.length) {
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf.subarray(0, this.#end));
      this.#buf = bigger;
    }
    const n = await this.#guard(this.conn.read(this.#buf.subarray(this.#end)));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  /** Reads up to and including CRLFCRLF; returns the text before it. */
  async readHead(): Promise<string | undefined> {
    for (;;) {
      const view = this.#buf.subarray(this.#start, this.#end);
      for (let i = 0; i + 3 < view.length; i++) {
        if (
          view[i] === CRLF2[0] && view[i + 1] === CRLF2[1] && view[i + 2] === CRLF2[2] &&
          view[i + 3] === CRLF2[3]
        ) {
          const head = new TextDecoder().decode(view.subarray(0, i));
          this.#start += i + 4;
          return head;
        }
      }
      if (this.#end - this.#start > 64 * 1024) {
        throw new SocketError("response head too long", "EPROTO");
      }
      if (!(await this.#fill())) {
        if (this.#end === this.#start) return undefined;
        throw new SocketError("connection closed inside a response head");
      }
    }
  }

  /** Reads exactly `n` bytes. */
  async readExactly(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n) {
      if (!(await this.#fill())) throw new SocketError("connection closed inside a response body");
    }
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  /** Reads one CRLF-terminated line. */
  async readLine(): Promise<string> {
    for (;;) {
      const view = this.#buf.subarray(this.#start, this.#end);
      const i = view.findIndex((b, j) => b === 13 && view[j + 1] === 10);
      if (i >= 0) {
        const line = new TextDecoder().decode(view.subarray(0, i));
        this.#start += i + 2;
        return line;
      }
      if (!(await this.#fill())) throw new SocketError("connection closed inside a chunked body");
    }
  }

  /** Reads until the peer closes. */
  async readToEnd(): Promise<Uint8Array> {
    while (await this.#fill()) { /* keep reading */ }
    const out = this.#buf.slice(this.#start, this.#end);
    this.#start = this.#end;
    return out;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }
}

/** Options for {@linkcode FastPutHandler}. */
export interface FastPutOptions {
  /** A socket with no progress for this long fails the request. @default {120000} */
  stallMs?: number;
}

/** See the module doc. Implements the SDK's HttpHandler interface. */
export class FastPutHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  #fallback: NodeHttpHandler;
  #idle = new Map<string, Connection[]>();
  #stallMs: number;

  constructor(options: FastPutOptions = {}) {
    this.#stallMs = options.stallMs ?? 120_000;
    // Other requests (GET, HEAD, list, complete) get the same bound (#withStallGuard), so a
    // stalled server fails them (retryably) instead of hanging a nightly job forever.
    this.#fallback = new NodeHttpHandler({
      connectionTimeout: 30_000,
      requestTimeout: this.#stallMs,
    });
  }

  async handle(
    request: SdkRequest,
    options: { abortSignal?: unknown } = {},
  ): Promise<{ response: SdkResponse }> {
    if (request.method !== "PUT" || !(request.body instanceof Uint8Array)) {
      return await this.#withStallGuard(request, options.abortSignal);
    }
    const signal = options.abortSignal instanceof AbortSignal ? options.abortSignal : undefined;
    return { response: await this.#put(request, request.body, signal) };
  }

  /**
   * Any other request goes to the SDK's Node handler, bounded: no answer within `stallMs`, or a
   * response body that makes no progress for `stallMs`, fails it as a network error (retryable).
   */
  async #withStallGuard(request: SdkRequest, outer: unknown): Promise<{ response: SdkResponse }> {
    const controller = new AbortController();
    const signal = outer instanceof AbortSignal ? outer : undefined;
    const onOuter = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onOuter, { once: true });
    let timedOut = false;
    const stall = () => new SocketError(`no progress for ${this.#stallMs / 1000} s`, "ETIMEDOUT");
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(stall());
    }, this.#stallMs);
    try {
      const out = await this.#fallback.handle(
        // deno-lint-ignore no-explicit-any
        request as any,
        { abortSignal: controller.signal },
      ) as { response: SdkResponse };
      clearTimeout(timer);
      const body = out.response.body as unknown;
      if (body instanceof Readable) {
        const watched = new PassThrough();
        let idle = setTimeout(() => watched.destroy(stall()), this.#stallMs);
        const rearm = () => {
          clearTimeout(idle);
          idle = setTimeout(() => {
            watched.destroy(stall());
            body.destroy();
          }, this.#stallMs);
        };
        body.on("data", rearm);
        const stop = () => clearTimeout(idle);
        watched.on("close", stop);
        body.on("error", (err) => watched.destroy(err));
        body.pipe(watched);
        out.response.body = watched;
      }
      return out;
    } catch (err) {
      clearTimeout(timer);
      if (timedOut) throw stall();
      throw err;
    } finally {
      signal?.removeEventListener("abort", onOuter);
    }
  }

  async #connect(request: SdkRequest): Promise<Connection> {
    const tls = request.protocol === "https:";
    const port = request.port ?? (tls ? 443 : 80);
    const conn = tls
      ? await Deno.connectTls({ hostname: request.hostname, port })
      : await Deno.connect({ hostname: request.hostname, port });
    return new Connection(conn, this.#stallMs);
  }

  async #put(request: SdkRequest, body: Uint8Array, signal?: AbortSignal): Promise<SdkResponse> {
    const origin = `${request.protocol}//${request.hostname}:${request.port ?? ""}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) {
      // The body follows the head at once; waiting for "100 Continue" would only add a round trip.
      if (k.toLowerCase() !== "expect") headers[k] = v;
    }
    const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
    if (!lower.has("host")) {
      headers.host = request.port ? `${request.hostname}:${request.port}` : request.hostname;
    }
    if (!lower.has("content-length")) headers["content-length"] = String(body.length);
    let head = `PUT ${request.path}${queryString(request.query)} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(String(v))) {
        throw new Error(`header ${k} holds a line break`);
      }
      head += `${k}: ${v}\r\n`;
    }
    const headBytes = encoder.encode(head + "\r\n");
    signal?.throwIfAborted();
    // A kept-alive socket may have been closed by the server meanwhile: then try a fresh one.
    for (let fresh = false;; fresh = true) {
      const pooled = fresh ? undefined : this.#idle.get(origin)?.pop();
      const c = pooled ?? await this.#connect(request);
      const onAbort = () => c.close();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await c.writeAll(headBytes);
        await c.writeAll(body);
        const response = await this.#readResponse(c);
        if (response === undefined) throw new SocketError("connection closed before any response");
        const { statusCode, reason, headers: rh, bytes, keepAlive } = response;
        if (keepAlive) {
          c.used = true;
          const list = this.#idle.get(origin) ?? [];
          list.push(c);
          this.#idle.set(origin, list);
        } else c.close();
        return { statusCode, reason, headers: rh, body: Readable.from([Buffer.from(bytes)]) };
      } catch (err) {
        c.close();
        if (signal?.aborted) {
          const e = new Error("The operation was aborted");
          e.name = "AbortError";
          throw e;
        }
        if (pooled && !fresh && err instanceof SocketError) continue;
        throw err instanceof SocketError
          ? err
          : new SocketError(String((err as Error)?.message ?? err));
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    }
  }

  async #readResponse(c: Connection) {
    let head = await c.readHead();
    // Skip interim answers (100 Continue and other 1xx): the final one follows.
    while (head !== undefined && /^HTTP\/1\.[01] 1\d\d/.test(head)) head = await c.readHead();
    if (head === undefined) return undefined;
    const [statusLine, ...lines] = head.split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new SocketError(`bad status line "${statusLine.slice(0, 40)}"`, "EPROTO");
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const k = line.slice(0, colon).trim().toLowerCase();
      const v = line.slice(colon + 1).trim();
      headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    }
    let bytes: Uint8Array;
    let keepAlive = !/close/i.test(headers.connection ?? "");
    if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
      const chunks: Uint8Array[] = [];
      for (;;) {
        const size = parseInt((await c.readLine()).split(";")[0], 16);
        if (!Number.isFinite(size)) throw new SocketError("bad chunk size", "EPROTO");
        if (size === 0) {
          while ((await c.readLine()) !== "") { /* trailers */ }
          break;
        }
        chunks.push(await c.readExactly(size));
        await c.readLine();
      }
      bytes = new Uint8Array(chunks.reduce((n, ch) => n + ch.length, 0));
      let off = 0;
      for (const ch of chunks) {
        bytes.set(ch, off);
        off += ch.length;
      }
    } else if (headers["content-length"] !== undefined) {
      bytes = await c.readExactly(Number(headers["content-length"]));
    } else {
      bytes = await c.readToEnd();
      keepAlive = false;
    }
    return { statusCode: Number(m[1]), reason: m[2], headers, bytes, keepAlive };
  }

  updateHttpClientConfig(): void {}

  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  destroy(): void {
    this.#fallback.destroy();
    for (const list of this.#idle.values()) for (const c of list) c.close();
    this.#idle.clear();
  }
}
