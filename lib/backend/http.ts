/**
 * The one HTTP path of every S3 request: a small HTTP/1.1 client over `Deno.connect` /
 * `Deno.startTls`, shaped as the AWS SDK's request handler. It replaces the SDK's Node handler,
 * whose `node:https` path under Deno asks for `--allow-sys` (all of it: "sys access to ca"), and
 * it writes SDK-signed part bodies straight to the socket, with no copy through `node:http`.
 *
 * What it does on the wire:
 * - Keep-alive connections, pooled per origin. An idle pooled connection always has one read
 *   outstanding; anything it yields (a stray `408`, the peer's close, an error) retires the
 *   connection before it can be reused, so no stray bytes are taken for the next answer.
 * - The answer is read while the body is written. A server that answers early (`403`, `400`,
 *   `503`) and closes is reported by its own status and body, even when the write then fails.
 * - Each write that makes no progress for `stallMs` fails the request (`ETIMEDOUT`, retryable by
 *   the caller's policy); connect and TLS handshake are bounded by min(`stallMs`, 30 s).
 * - The answer's clock starts once the request is all written (a part still being sent to a
 *   slow link is progress, not a stall): no answer byte for `stallMs` fails it, and so does an
 *   answer slower than 16 KiB/s on average once its first `stallMs` of waiting is spent (a peer
 *   that drips a byte at a time). Only time spent waiting for bytes counts, not time the caller
 *   takes between reads. At most 8 interim (1xx) answers are read; a 2xx answer must have a
 *   Content-Length or be chunked (a cut body read to the close would look whole), and lengths and
 *   chunk sizes must be plain digits.
 * - An abort signal closes the connection at any step, a connect or handshake in progress
 *   included, and the request fails with an `AbortError`.
 * - HTTPS trusts Deno's built-in roots plus `caCerts` (`S3_CA_FILE`: `Deno.startTls` adds them to
 *   the roots), or with `caOnly` (`S3_CA_ONLY`) `caCerts` alone (`pinned_tls.ts`); a refused
 *   certificate fails with a {@linkcode TlsCertificateError} that names the host and
 *   `S3_CA_FILE`.
 * - A request sent on a reused connection that closes before any byte of an answer is sent
 *   once more on a fresh connection when its method is idempotent (GET, HEAD, PUT, DELETE), as
 *   RFC 9112 §9.3.1 allows; any other failure goes to the caller's retry policy.
 *
 * Bodies: requests carry none, a string or bytes (the SDK's XML and our part buffers); a
 * streamed request body is a bug here and is refused. Answers to a 2xx GET stream; every other
 * answer is read whole (error XML, listings) before it is returned.
 *
 * @module
 */

import type { RateLimit } from "./rate_limit.ts";
import { type ByteConn, connectPinnedTls, isCertificateError } from "./pinned_tls.ts";

/** The parts of the SDK's HttpRequest this handler reads. */
export interface HttpRequest {
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
export interface HttpResponse {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  body: ReadableStream<Uint8Array>;
}

/** Options for {@linkcode HttpHandler}. */
export interface HttpHandlerOptions {
  /** A connect, handshake, read or write with no progress for this long fails. @default {120000} */
  stallMs?: number;
  /** PEM certificates trusted for HTTPS besides Deno's built-in roots. @default {[]} */
  caCerts?: string[];
  /** Trust `caCerts` alone, not the built-in roots (`S3_CA_ONLY`). @default {false} */
  caOnly?: boolean;
  /** `MAX_RATE`: paces every request body and GET answer body (`rate_limit.ts`). */
  rateLimit?: RateLimit;
}

/** A network failure: no complete HTTP answer. `code` is ECONNRESET, ETIMEDOUT, EPROTO, … */
export class HttpTransportError extends Error {
  /** A Node-style error code, for messages. */
  readonly code: string;
  constructor(message: string, code = "ECONNRESET", options?: ErrorOptions) {
    super(message, options);
    this.name = "HttpTransportError";
    this.code = code;
  }
}

/** The server's TLS certificate was refused; trying again will not help. */
export class TlsCertificateError extends Error {
  /** `host:port` whose certificate was refused. */
  readonly host: string;
  constructor(host: string, detail: string, options?: ErrorOptions) {
    super(
      `the TLS certificate of ${host} was refused (${detail}); if a private CA signed it, ` +
        `set S3_CA_FILE to a PEM file holding that CA`,
      options,
    );
    this.name = "TlsCertificateError";
    this.host = host;
  }
}

/** The TLS handshake got an answer that is not TLS: an https HOST on a plain-HTTP port. */
export class NotTlsError extends TlsCertificateError {
  constructor(host: string, detail: string, options?: ErrorOptions) {
    super(host, detail, options);
    this.name = "NotTlsError";
    this.message = `${host} did not answer in TLS (${detail}): a HOST without a scheme means ` +
      `https; if the server speaks plain HTTP, write HOST=http://${host}`;
  }
}

function abortError(): Error {
  const e = new Error("The operation was aborted");
  e.name = "AbortError";
  return e;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE"]);
/** Largest answer read whole (error XML, listings); a bigger one is a protocol error. */
const MAX_WHOLE_BODY = 64 * 1024 * 1024;

/** The slowest an answer may come once its first S3_TIMEOUT of waiting is spent, bytes/s. */
const MIN_ANSWER_RATE = 16 * 1024;
/** Interim (1xx) answers accepted before the final one; S3 sends at most one `100 Continue`. */
const MAX_INTERIM_ANSWERS = 8;
/** Idle connections kept per origin. */
const MAX_IDLE = 16;

/** Percent-encodes like the SDK (RFC 3986 unreserved characters only). */
function escape(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function queryString(query: HttpRequest["query"]): string {
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

/** The request's body as bytes, or `undefined` for none. */
function bodyBytes(body: unknown): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  if (ArrayBuffer.isView(body)) {
    return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  }
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new Error(
    `lib/backend/http.ts sends string or byte bodies only, not ${
      (body as object)?.constructor?.name ?? typeof body
    }`,
  );
}

/** One keep-alive connection with a read buffer; every network step is stall-guarded. */
class Connection {
  readonly #conn: ByteConn;
  readonly #stallMs: number;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  /** A read issued earlier (while idle) into `#buf` at `#end`, not yet consumed. */
  #pending: Promise<number | null> | undefined;
  #closed = false;
  /** Bytes of an answer received since {@linkcode Connection.beginRequest}. */
  received = 0;
  /** Whether this connection carried an earlier request. */
  reused = false;
  /** Set while the connection waits in the pool. */
  onIdleEvent: (() => void) | undefined;
  /** A request is being written: a read for its answer waits without a clock meanwhile. */
  #writing = false;
  /** When the answer last made progress, or the request was all written. */
  #progressAt = Date.now();
  /** Time spent waiting for the answer's bytes since the request was all written, ms. */
  #waitedMs = 0;
  /** Bytes of the answer read since the request was all written. */
  #answerBytes = 0;
  /** When the request was all written: waiting before it does not count. */
  #writtenAt = 0;

  constructor(conn: ByteConn, stallMs: number) {
    this.#conn = conn;
    this.#stallMs = stallMs;
  }

  /** A request starts to be written: its answer's clock waits for {@linkcode endWrite}. */
  startWrite(): void {
    this.#writing = true;
  }

  /** The request is all written, or its writing failed: the answer's clock starts. */
  endWrite(): void {
    if (!this.#writing) return;
    this.#writing = false;
    this.#progressAt = this.#writtenAt = Date.now();
    this.#waitedMs = 0;
    this.#answerBytes = 0;
  }

  /**
   * Why the answer now being read is overdue, if it is: no byte for `stallMs`, or less than
   * {@linkcode MIN_ANSWER_RATE} on average once its first `stallMs` of waiting is spent (a peer
   * that drips a byte at a time makes progress forever). Time the reader spends elsewhere (a
   * slow consumer of a GET body) does not count: only time a read waits.
   */
  #overdue(now: number): string | undefined {
    if (this.#writing) return undefined;
    const s = this.#stallMs / 1000;
    if (now - this.#progressAt > this.#stallMs) return `no progress for ${s} s (S3_TIMEOUT)`;
    if (this.#waitedMs <= this.#stallMs + this.#answerBytes * 1000 / MIN_ANSWER_RATE) {
      return undefined;
    }
    return `answer too slow: ${this.#answerBytes} bytes in ${
      (this.#waitedMs / 1000).toFixed(1)
    } s (less than ${MIN_ANSWER_RATE / 1024} KiB/s after the first ${s} s, S3_TIMEOUT)`;
  }

  /** Races a read of the answer against its clock (see #overdue); overdue closes the connection. */
  async guardRead(op: Promise<number | null>): Promise<number | null> {
    let last = Date.now();
    const wait = () => {
      const now = Date.now();
      if (!this.#writing) this.#waitedMs += now - Math.max(last, this.#writtenAt);
      last = now;
      return now;
    };
    let timer: ReturnType<typeof setInterval> | undefined;
    const overdue = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        const why = this.#overdue(wait());
        if (why === undefined) return;
        this.close();
        reject(new HttpTransportError(why, "ETIMEDOUT"));
      }, Math.max(10, Math.min(250, this.#stallMs / 4)));
    });
    try {
      const n = await Promise.race([op, overdue]);
      const now = wait();
      // Reads that each come within a tick are measured here, or a drip is never caught.
      const why = this.#overdue(now);
      if (why !== undefined) {
        this.close();
        throw new HttpTransportError(why, "ETIMEDOUT");
      }
      if (n) {
        this.#progressAt = now;
        this.#answerBytes += n;
      }
      return n;
    } finally {
      clearInterval(timer);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Races a write against the stall bound; a stall closes the connection. */
  async guardWrite<T>(op: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stall = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.close();
        reject(
          new HttpTransportError(
            `no progress for ${this.#stallMs / 1000} s (S3_TIMEOUT)`,
            "ETIMEDOUT",
          ),
        );
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
    while (off < bytes.length) off += await this.guardWrite(this.#conn.write(bytes.subarray(off)));
  }

  /** Parks the connection: one read stays outstanding, and whatever it yields retires it. */
  park(onEvent: () => void): void {
    this.#buf.copyWithin(0, this.#start, this.#end);
    this.#end -= this.#start;
    this.#start = 0;
    this.onIdleEvent = onEvent;
    const read = this.#conn.read(this.#buf.subarray(this.#end));
    this.#pending = read;
    const fire = () => this.onIdleEvent?.();
    read.then(fire, fire);
  }

  /** Takes the connection out of the pool for a request. */
  beginRequest(): void {
    this.onIdleEvent = undefined;
    this.received = 0;
  }

  async #fill(): Promise<boolean> {
    if (!this.#pending) {
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
    }
    const read = this.#pending ?? this.#conn.read(this.#buf.subarray(this.#end));
    this.#pending = undefined;
    const n = await this.guardRead(read);
    if (n === null) return false;
    this.#end += n;
    this.received += n;
    return true;
  }

  /** Reads up to and including CRLFCRLF; returns the text before it, `undefined` at EOF. */
  async readHead(): Promise<string | undefined> {
    for (;;) {
      for (let i = this.#start; i + 3 < this.#end; i++) {
        if (
          this.#buf[i] === 13 && this.#buf[i + 1] === 10 && this.#buf[i + 2] === 13 &&
          this.#buf[i + 3] === 10
        ) {
          const head = decoder.decode(this.#buf.subarray(this.#start, i));
          this.#start = i + 4;
          return head;
        }
      }
      if (this.#end - this.#start > 64 * 1024) {
        throw new HttpTransportError("response head longer than 64 KiB", "EPROTO");
      }
      if (!(await this.#fill())) {
        if (this.#end === this.#start) return undefined;
        throw new HttpTransportError("connection closed inside a response head");
      }
    }
  }

  /** Reads one CRLF-terminated line. */
  async readLine(): Promise<string> {
    for (;;) {
      for (let i = this.#start; i + 1 < this.#end; i++) {
        if (this.#buf[i] === 13 && this.#buf[i + 1] === 10) {
          const line = decoder.decode(this.#buf.subarray(this.#start, i));
          this.#start = i + 2;
          return line;
        }
      }
      if (this.#end - this.#start > 64 * 1024) {
        throw new HttpTransportError("chunk header longer than 64 KiB", "EPROTO");
      }
      if (!(await this.#fill())) {
        throw new HttpTransportError("connection closed inside a chunked body");
      }
    }
  }

  /**
   * Up to `max` bytes of the answer (at least one), or `null` at EOF: first what is buffered,
   * then a read straight into `into` when given (the answer is then a view of its first bytes),
   * else into a fresh array.
   */
  async readSome(max: number, into?: Uint8Array): Promise<Uint8Array | null> {
    const room = Math.min(max, into ? into.length : 256 * 1024);
    if (this.#end > this.#start) {
      const n = Math.min(room, this.#end - this.#start);
      const buffered = this.#buf.subarray(this.#start, this.#start + n);
      this.#start += n;
      if (!into) return buffered.slice();
      into.set(buffered);
      return into.subarray(0, n);
    }
    const chunk = into ? into.subarray(0, room) : new Uint8Array(room);
    const n = await this.guardRead(this.#conn.read(chunk));
    if (n === null) return null;
    this.received += n;
    return n === chunk.length ? chunk : chunk.subarray(0, n);
  }

  /** Whether bytes beyond the answer already arrived (then the connection is not reusable). */
  get hasBuffered(): boolean {
    return this.#end > this.#start;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

/** How an answer's body is framed. */
type Framing =
  | { kind: "none" }
  | { kind: "length"; remaining: number }
  | { kind: "chunked"; remaining: number; done: boolean }
  | { kind: "close" };

/** A parsed answer head. */
interface Head {
  statusCode: number;
  reason?: string;
  headers: Record<string, string>;
  framing: Framing;
  keepAlive: boolean;
}

/** A Content-Length as RFC 9110 §8.6 writes it: decimal digits only (not `0x5`, `1e3` or ``). */
function decimalLength(value: string): number {
  if (!/^\d{1,15}$/.test(value)) {
    throw new HttpTransportError(`bad Content-Length "${value.slice(0, 40)}"`, "EPROTO");
  }
  return Number(value);
}

/** A chunk size as RFC 9112 §7.1 writes it: hex digits, then optional extensions after `;`. */
function chunkSize(line: string): number {
  const size = line.split(";")[0].replace(/[ \t]+$/, "");
  if (!/^[0-9A-Fa-f]{1,13}$/.test(size)) {
    throw new HttpTransportError(`bad chunk size "${size.slice(0, 40)}"`, "EPROTO");
  }
  return parseInt(size, 16);
}

function parseHead(text: string, method: string): Head {
  const [statusLine, ...lines] = text.split("\r\n");
  const m = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!m) {
    throw new HttpTransportError(`bad status line "${statusLine.slice(0, 40)}"`, "EPROTO");
  }
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const k = line.slice(0, colon).trim().toLowerCase();
    const v = line.slice(colon + 1).trim();
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  const statusCode = Number(m[2]);
  const connection = (headers.connection ?? "").toLowerCase();
  let keepAlive = m[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  let framing: Framing;
  if (method === "HEAD" || statusCode === 204 || statusCode === 304) framing = { kind: "none" };
  else if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    framing = { kind: "chunked", remaining: 0, done: false };
  } else if (headers["content-length"] !== undefined) {
    const n = decimalLength(headers["content-length"]);
    framing = n === 0 ? { kind: "none" } : { kind: "length", remaining: n };
  } else if (statusCode >= 200 && statusCode < 300) {
    // Read to the close, a cut body would look whole: S3 always frames its answers.
    throw new HttpTransportError(
      `a ${statusCode} answer with neither Content-Length nor chunked framing`,
      "EPROTO",
    );
  } else {
    framing = { kind: "close" };
    keepAlive = false;
  }
  return { statusCode, reason: m[3], headers, framing, keepAlive };
}

/** The next piece of the body (read into `into` when given), or `null` at its end. */
async function readBody(c: Connection, f: Framing, into?: Uint8Array): Promise<Uint8Array | null> {
  switch (f.kind) {
    case "none":
      return null;
    case "length": {
      if (f.remaining === 0) return null;
      const got = await c.readSome(f.remaining, into);
      if (got === null) throw new HttpTransportError("connection closed inside a response body");
      f.remaining -= got.length;
      return got;
    }
    case "close":
      return await c.readSome(256 * 1024, into);
    case "chunked": {
      if (f.done) return null;
      if (f.remaining === 0) {
        const size = chunkSize(await c.readLine());
        if (size === 0) {
          while ((await c.readLine()) !== "") { /* trailers */ }
          f.done = true;
          return null;
        }
        f.remaining = size;
      }
      const got = await c.readSome(f.remaining, into);
      if (got === null) throw new HttpTransportError("connection closed inside a chunked body");
      f.remaining -= got.length;
      if (f.remaining === 0 && (await c.readLine()) !== "") {
        throw new HttpTransportError("chunk not followed by CRLF", "EPROTO");
      }
      return got;
    }
  }
}

/** See the module doc. Implements the SDK's HttpHandler interface. */
export class HttpHandler {
  /** Read by the SDK. */
  readonly metadata = { handlerProtocol: "http/1.1" };
  readonly #stallMs: number;
  readonly #caCerts: string[];
  readonly #caOnly: boolean;
  readonly #limit: RateLimit | undefined;
  readonly #idle = new Map<string, Set<Connection>>();
  #destroyed = false;

  constructor(options: HttpHandlerOptions = {}) {
    this.#stallMs = options.stallMs ?? 120_000;
    this.#caCerts = options.caCerts ?? [];
    this.#caOnly = options.caOnly === true && this.#caCerts.length > 0;
    this.#limit = options.rateLimit;
  }

  /** Sends one request; see the module doc. */
  async handle(
    request: HttpRequest,
    options: { abortSignal?: unknown } = {},
  ): Promise<{ response: HttpResponse }> {
    const signal = options.abortSignal instanceof AbortSignal ? options.abortSignal : undefined;
    if (signal?.aborted) throw abortError();
    const method = request.method.toUpperCase();
    const body = bodyBytes(request.body);
    const head = this.#head(request, method, body);
    const origin = `${request.protocol}//${request.hostname}:${request.port ?? ""}`;
    for (let attempt = 0;; attempt++) {
      const c = attempt === 0 ? this.#takeIdle(origin) : undefined;
      try {
        return {
          response: await this.#exchange(request, origin, c, { method, head, body }, signal),
        };
      } catch (err) {
        if (signal?.aborted) throw abortError();
        // A reused connection the server closed just as we sent: try once on a fresh one.
        if (
          err instanceof StaleConnection && attempt === 0 && IDEMPOTENT.has(method)
        ) continue;
        throw err instanceof StaleConnection ? err.cause : err;
      }
    }
  }

  #head(request: HttpRequest, method: string, body: Uint8Array | undefined): Uint8Array {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) {
      // The body follows the head at once, and an early answer is read while it is written:
      // waiting for "100 Continue" would only add a round trip.
      if (k.toLowerCase() !== "expect") headers[k] = v;
    }
    const lower = new Set(Object.keys(headers).map((k) => k.toLowerCase()));
    if (!lower.has("host")) {
      headers.host = request.port ? `${request.hostname}:${request.port}` : request.hostname;
    }
    if (!lower.has("content-length") && (body || method === "PUT" || method === "POST")) {
      headers["content-length"] = String(body?.length ?? 0);
    }
    let text = `${method} ${request.path}${queryString(request.query)} HTTP/1.1\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      if (/[\r\n]/.test(k) || /[\r\n]/.test(String(v))) {
        throw new Error(`Cannot send header ${k}: it holds a line break`);
      }
      text += `${k}: ${v}\r\n`;
    }
    return encoder.encode(text + "\r\n");
  }

  #takeIdle(origin: string): Connection | undefined {
    const set = this.#idle.get(origin);
    if (!set) return undefined;
    for (const c of set) {
      set.delete(c);
      if (c.closed) continue;
      c.beginRequest();
      return c;
    }
    return undefined;
  }

  #release(origin: string, c: Connection): void {
    if (this.#destroyed || c.closed || c.hasBuffered) return c.close();
    const set = this.#idle.get(origin) ?? new Set<Connection>();
    if (set.size >= MAX_IDLE) return c.close();
    this.#idle.set(origin, set);
    c.reused = true;
    set.add(c);
    c.park(() => {
      // Readable while idle (stray bytes, EOF, error): never reuse it.
      set.delete(c);
      c.close();
    });
  }

  async #connect(request: HttpRequest, signal?: AbortSignal): Promise<Connection> {
    const tls = request.protocol === "https:";
    const hostname = request.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = request.port ?? (tls ? 443 : 80);
    const where = `${request.hostname}:${port}`;
    const bound = Math.min(this.#stallMs, 30_000);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), bound);
    const stop = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
    let tcp: Deno.TcpConn | undefined;
    let conn: ByteConn | undefined;
    const onStop = () => conn?.close();
    stop.addEventListener("abort", onStop, { once: true });
    try {
      if (tls && this.#caOnly) {
        conn = await connectPinnedTls(hostname, port, { caCerts: this.#caCerts, signal: stop });
        if (stop.aborted) throw abortError();
        return new Connection(conn, this.#stallMs);
      }
      tcp = await Deno.connect({ hostname, port, signal: stop });
      conn = tcp;
      if (stop.aborted) throw abortError();
      if (tls) {
        const secure = await Deno.startTls(tcp, {
          hostname,
          caCerts: this.#caCerts.length ? this.#caCerts : undefined,
        });
        conn = secure;
        if (stop.aborted) throw abortError();
        try {
          await secure.handshake();
        } catch (err) {
          if (!stop.aborted && /certificate/i.test((err as Error)?.message ?? "")) {
            throw new TlsCertificateError(where, (err as Error).message, { cause: err });
          }
          if (!stop.aborted && /InvalidContentType|corrupt message/.test(String(err))) {
            throw new NotTlsError(where, (err as Error).message, { cause: err });
          }
          throw err;
        }
      }
      return new Connection(conn, this.#stallMs);
    } catch (err) {
      try {
        conn?.close();
      } catch { /* already closed */ }
      if (signal?.aborted) throw abortError();
      if (timeout.signal.aborted) {
        throw new HttpTransportError(
          `no connection to ${where} within ${bound / 1000} s`,
          "ETIMEDOUT",
        );
      }
      if (err instanceof TlsCertificateError || err instanceof Deno.errors.NotCapable) throw err;
      if (tls && this.#caOnly && isCertificateError(err)) {
        throw new TlsCertificateError(where, (err as Error).message, { cause: err });
      }
      const e = err as Error;
      const reason = (e?.message ?? String(err)).replace(/ \(os error \d+\)$/, "");
      throw new HttpTransportError(`${reason}, connecting to ${where}`, codeOf(e), { cause: err });
    } finally {
      clearTimeout(timer);
      stop.removeEventListener("abort", onStop);
    }
  }

  /** One request on `pooled` (or a fresh connection) and its answer. */
  async #exchange(
    request: HttpRequest,
    origin: string,
    pooled: Connection | undefined,
    { method, head, body }: { method: string; head: Uint8Array; body?: Uint8Array },
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    const c = pooled ?? await this.#connect(request, signal);
    const onAbort = () => c.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    let streaming = false;
    try {
      // Read the answer while the request is written: a server may answer before the body.
      const reading = this.#readAnswerHead(c, method);
      let writeDone = false;
      c.startWrite();
      const writing = (async () => {
        const limit = this.#limit;
        if (body && body.length <= 64 * 1024) {
          await limit?.take(body.length, signal);
          const both = new Uint8Array(head.length + body.length);
          both.set(head);
          both.set(body, head.length);
          await c.writeAll(both);
        } else {
          await c.writeAll(head);
          if (body) {
            await (limit ? limit.paced(body, (b) => c.writeAll(b), signal) : c.writeAll(body));
          }
        }
        writeDone = true;
      })().finally(() => c.endWrite());
      writing.catch(() => {}); // settled below, or abandoned after an early answer
      let answer: Head;
      try {
        answer = await Promise.race([reading, writing.then(() => reading)]);
      } catch (err) {
        // The write failed first: an answer the server sent before it closed may still come.
        const early = await reading.catch(() => undefined);
        if (!early) {
          const readErr = await reading.then(() => undefined, (e) => e);
          throw this.#failure(c, pooled !== undefined, writeDone ? readErr : err);
        }
        answer = early;
      }
      // An answer before the whole body was sent leaves the connection unusable.
      if (!writeDone) answer.keepAlive = false;
      const response = {
        statusCode: answer.statusCode,
        reason: answer.reason,
        headers: answer.headers,
      };
      const finish = () => {
        signal?.removeEventListener("abort", onAbort);
        if (answer.keepAlive && writeDone) this.#release(origin, c);
        else c.close();
      };
      if (method === "GET" && answer.statusCode >= 200 && answer.statusCode < 300) {
        streaming = true;
        return { ...response, body: this.#stream(c, answer.framing, finish, signal) };
      }
      const bytes = await this.#readWhole(c, answer.framing);
      finish();
      return { ...response, body: oneChunk(bytes) };
    } catch (err) {
      c.close();
      if (signal?.aborted) throw abortError();
      throw err;
    } finally {
      if (!streaming) signal?.removeEventListener("abort", onAbort);
    }
  }

  /** The final answer's head (interim 1xx answers skipped). */
  async #readAnswerHead(c: Connection, method: string): Promise<Head> {
    for (let interim = 0;; interim++) {
      const text = await c.readHead();
      if (text === undefined) {
        throw new HttpTransportError("connection closed before any response");
      }
      if (!/^HTTP\/1\.[01] 1\d\d/.test(text)) return parseHead(text, method);
      // Each interim answer is progress to the stall timer: without a cap they hold it forever.
      if (interim >= MAX_INTERIM_ANSWERS) {
        throw new HttpTransportError(
          `more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers to one request`,
          "EPROTO",
        );
      }
    }
  }

  /** The error to throw for a connection-level failure; marks a stale reused connection. */
  #failure(c: Connection, reused: boolean, err: unknown): unknown {
    c.close();
    if (err instanceof Deno.errors.NotCapable) return err;
    const e = err instanceof HttpTransportError ? err : new HttpTransportError(
      `connection lost: ${(err as Error)?.message ?? err}`,
      codeOf(err as Error),
      { cause: err },
    );
    return reused && c.received === 0 && e.code !== "ETIMEDOUT" ? new StaleConnection(e) : e;
  }

  async #readWhole(c: Connection, framing: Framing): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (let got; (got = await readBody(c, framing)) !== null;) {
      chunks.push(got);
      total += got.length;
      if (total > MAX_WHOLE_BODY) {
        throw new HttpTransportError("response body larger than 64 MiB", "EPROTO");
      }
    }
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(total);
    let off = 0;
    for (const ch of chunks) {
      out.set(ch, off);
      off += ch.length;
    }
    return out;
  }

  #stream(
    c: Connection,
    framing: Framing,
    finish: () => void,
    signal: AbortSignal | undefined,
  ): ReadableStream<Uint8Array> {
    const limit = this.#limit;
    let ended = false;
    const end = (ok: boolean) => {
      if (ended) return;
      ended = true;
      if (ok) finish();
      else {
        c.close();
        finish();
      }
    };
    // A byte stream: a BYOB reader's bytes are read from the socket straight into its buffer.
    return new ReadableStream({
      type: "bytes",
      async pull(controller) {
        const view = controller.byobRequest?.view;
        const into = view
          ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
          : undefined;
        try {
          const got = await readBody(c, framing, into);
          if (got === null) {
            end(true);
            controller.close();
            controller.byobRequest?.respond(0);
          } else {
            await limit?.take(got.length, signal);
            if (into) controller.byobRequest!.respond(got.length);
            else controller.enqueue(got);
          }
        } catch (err) {
          end(false);
          controller.error(signal?.aborted ? abortError() : err);
        }
      },
      cancel() {
        end(false);
      },
    });
  }

  /** Read by the SDK. */
  updateHttpClientConfig(): void {}

  /** Read by the SDK. */
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }

  /** Closes every idle connection; later answers close theirs instead of pooling them. */
  destroy(): void {
    this.#destroyed = true;
    for (const set of this.#idle.values()) for (const c of set) c.close();
    this.#idle.clear();
  }
}

/** A reused connection failed before any byte of an answer (see the module doc). */
class StaleConnection extends Error {
  override readonly cause: HttpTransportError;
  constructor(cause: HttpTransportError) {
    super(cause.message);
    this.cause = cause;
  }
}

function oneChunk(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length) controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** A Node-style code for a Deno network error. */
function codeOf(err: Error | undefined): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "ECONNREFUSED";
  if (err instanceof Deno.errors.ConnectionReset) return "ECONNRESET";
  if (err instanceof Deno.errors.BrokenPipe) return "EPIPE";
  if (err instanceof Deno.errors.TimedOut) return "ETIMEDOUT";
  if (err instanceof Deno.errors.AddrNotAvailable) return "EADDRNOTAVAIL";
  if (/lookup|resolve|dns/i.test(err?.message ?? "")) return "ENOTFOUND";
  return "ECONNRESET";
}
