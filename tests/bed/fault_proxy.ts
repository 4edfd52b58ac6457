/**
 * Test-bed helper: a fault-injecting HTTP/1.1 proxy on 127.0.0.1 between z3 and the S3 server.
 * A real server cannot fail on demand, so this one sits on the wire and, per request, either
 * forwards it untouched or injects a fault chosen by the test:
 *
 * - answer with an S3 error itself (`503 SlowDown`, `500 InternalError`), the body drained;
 * - reset the connection after N bytes of the request body (both sides closed mid-body);
 * - stall before forwarding (for `ms`, or until {@linkcode FaultProxy.releaseStalls});
 * - stall the response after N bytes of it;
 * - flip one byte of the response, N bytes into it (corruption in transit: the HTTP framing, and
 *   so the client's SDK, none the wiser);
 * - drop the response: the request reaches the server, which carries it out; its whole answer is
 *   read and thrown away, and the client's connection closed (a lost answer);
 * - go away for good: every request and connection from then on is closed unanswered.
 *
 * It parses only request heads (method, target, headers, Content-Length) to count and classify
 * requests (`UploadPart` is a PUT with `partNumber=`); bytes pass through unchanged, so SigV4
 * signatures (made for the proxy's Host) still match. Requests on one connection are sequential
 * in HTTP/1.1, so a connection's upstream bytes are that request's response. Loopback only;
 * every wait is bounded.
 *
 * @module
 */

import { closeQuietly, writeAll } from "./conn.ts";

/** What a request does, from its method and query (path-style addressing). */
export type RequestKind =
  | "UploadPart"
  | "PutObject"
  | "CreateMultipartUpload"
  | "CompleteMultipartUpload"
  | "AbortMultipartUpload"
  | "ListMultipartUploads"
  | "ListObjects"
  | "GetObject"
  | "HeadObject"
  | "DeleteObject"
  | "CreateBucket"
  | "Other";

/** A request as the fault function sees it. */
export interface ProxiedRequest {
  /** 1-based, over every request the proxy has seen. */
  index: number;
  kind: RequestKind;
  /** 1-based count of requests of this kind so far, this one included (retries count). */
  nth: number;
  method: string;
  /** The request target: path and query, as sent. */
  target: string;
  query: URLSearchParams;
  /** Header names lower-cased. */
  headers: Map<string, string>;
  /** Bytes of request body (0 when none). */
  contentLength: number;
}

/** A fault to inject into one request. */
export type Fault =
  | { kind: "error"; status: number; code: string; message: string }
  | { kind: "reset"; afterBodyBytes: number }
  | { kind: "stall"; ms: number }
  | { kind: "stallResponse"; afterBytes: number; ms: number }
  | { kind: "flipResponse"; atByte: number }
  | { kind: "dropResponse" }
  | { kind: "gone" };

/** `503 SlowDown`, S3's throttling answer. */
export const SLOW_DOWN: Fault = {
  kind: "error",
  status: 503,
  code: "SlowDown",
  message: "Please reduce your request rate.",
};

/** `500 InternalError`. */
export const INTERNAL_ERROR: Fault = {
  kind: "error",
  status: 500,
  code: "InternalError",
  message: "We encountered an internal error. Please try again.",
};

/** The endpoint goes away for good: this request and everything after it is refused. */
export const GONE: Fault = { kind: "gone" };

/** One line of the proxy's log. */
export interface LogEntry {
  index: number;
  kind: RequestKind;
  nth: number;
  method: string;
  target: string;
  /** The request's Range header, when it had one. */
  range?: string;
  /** The fault injected, by kind (`error 503`, `reset`, …), or undefined when forwarded. */
  fault?: string;
}

/** Options for {@linkcode faultProxy}. */
export interface FaultProxyOptions {
  /** Picks a fault per request; `undefined` forwards it untouched. @default {no faults} */
  faults?: (req: ProxiedRequest) => Fault | undefined;
}

/** A running proxy; see {@linkcode faultProxy}. */
export interface FaultProxy {
  /** `http://127.0.0.1:PORT`, for HOST. */
  readonly endpoint: string;
  /** Every request seen, in order. */
  readonly log: LogEntry[];
  /** Protocol surprises (e.g. a chunked request body): a test should assert this is empty. */
  readonly errors: string[];
  /** Replaces the fault function. */
  setFaults(faults: FaultProxyOptions["faults"]): void;
  /** Goes away for good, as {@linkcode GONE}, closing every connection now. */
  goAway(): void;
  /** Ends every stall now. */
  releaseStalls(): void;
  /** Requests seen of `kind`. */
  count(kind: RequestKind): number;
  /** Faults injected so far (log entries with a fault). */
  injected(): LogEntry[];
  /** Resolves when a logged request satisfies `pred`; rejects after `timeoutMs`. */
  waitFor(pred: (e: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
  /** Resolves when a response stall has begun; rejects after `timeoutMs`. */
  waitForResponseStall(timeoutMs?: number): Promise<void>;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

/** Longest stall allowed, so that a forgotten stall cannot hang a test run. */
const MAX_STALL_MS = 120_000;
/** Largest request head accepted. */
const MAX_HEAD = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Classifies a request by method and query (path-style: `/bucket` or `/bucket/key`). */
export function classify(method: string, target: string): RequestKind {
  const url = new URL(target, "http://proxy");
  const q = url.searchParams;
  const hasKey = /^\/[^/]+\/./.test(url.pathname); // `/bucket/` alone is the bucket
  switch (method) {
    case "PUT":
      if (q.has("partNumber") && q.has("uploadId")) return "UploadPart";
      return hasKey ? "PutObject" : "CreateBucket";
    case "POST":
      if (q.has("uploads")) return "CreateMultipartUpload";
      if (q.has("uploadId")) return "CompleteMultipartUpload";
      return "Other";
    case "DELETE":
      return q.has("uploadId") ? "AbortMultipartUpload" : "DeleteObject";
    case "GET":
      if (q.has("uploads")) return "ListMultipartUploads";
      return hasKey ? "GetObject" : "ListObjects";
    case "HEAD":
      return hasKey ? "HeadObject" : "Other";
    default:
      return "Other";
  }
}

/** Buffered reads from a connection: a request head, then exactly N body bytes. */
class Wire {
  #conn: Deno.Conn;
  #pending = new Uint8Array(0);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #more(): Promise<boolean> {
    const buf = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(buf);
    if (n === null) return false;
    const joined = new Uint8Array(this.#pending.length + n);
    joined.set(this.#pending, 0);
    joined.set(buf.subarray(0, n), this.#pending.length);
    this.#pending = joined;
    return true;
  }

  /** The raw head up to and including CRLFCRLF, or null at a clean end of stream. */
  async head(): Promise<Uint8Array | null> {
    for (;;) {
      const end = findHeadEnd(this.#pending);
      if (end >= 0) {
        const head = this.#pending.slice(0, end);
        this.#pending = this.#pending.slice(end);
        return head;
      }
      if (this.#pending.length > MAX_HEAD) throw new Error("request head too large");
      if (!(await this.#more())) {
        if (this.#pending.length === 0) return null;
        throw new Error("connection closed inside a request head");
      }
    }
  }

  /** Hands exactly `n` body bytes to `sink` in chunks; throws when the stream ends first. */
  async body(n: number, sink: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.#pending.length === 0 && !(await this.#more())) {
        throw new Error(`connection closed with ${left} body bytes to go`);
      }
      const take = Math.min(left, this.#pending.length);
      const chunk = this.#pending.slice(0, take);
      this.#pending = this.#pending.slice(take);
      left -= take;
      await sink(chunk);
    }
  }
}

function findHeadEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) {
    if (
      bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

function parseHead(head: Uint8Array): {
  method: string;
  target: string;
  headers: Map<string, string>;
} {
  const lines = decoder.decode(head).split("\r\n");
  const [method, target] = lines[0].split(" ");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  return { method, target, headers };
}

function errorResponse(fault: Extract<Fault, { kind: "error" }>, method: string, id: number) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code}</Code>` +
    `<Message>${fault.message}</Message><RequestId>fault-proxy-${id}</RequestId></Error>`;
  const bytes = encoder.encode(body);
  const head = `HTTP/1.1 ${fault.status} ${fault.code}\r\n` +
    `Content-Type: application/xml\r\nContent-Length: ${bytes.length}\r\n` +
    `x-amz-request-id: fault-proxy-${id}\r\nConnection: keep-alive\r\n\r\n`;
  return method === "HEAD"
    ? encoder.encode(head)
    : new Uint8Array([...encoder.encode(head), ...bytes]);
}

function describeFault(f: Fault): string {
  switch (f.kind) {
    case "error":
      return `error ${f.status} ${f.code}`;
    case "reset":
      return `reset after ${f.afterBodyBytes} body bytes`;
    case "stall":
      return `stall ${f.ms} ms`;
    case "stallResponse":
      return `stall response after ${f.afterBytes} bytes for ${f.ms} ms`;
    case "flipResponse":
      return `flip response byte ${f.atByte}`;
    case "dropResponse":
      return "drop response";
    case "gone":
      return "gone";
  }
}

/** Whether `bytes` hold one whole HTTP response (Content-Length or chunked body). */
function wholeResponse(bytes: Uint8Array): boolean {
  const end = findHeadEnd(bytes);
  if (end < 0) return false;
  const { headers } = parseHead(bytes.subarray(0, end));
  if (headers.get("transfer-encoding")?.includes("chunked")) {
    return decoder.decode(bytes.subarray(Math.max(end, bytes.length - 5))).endsWith("0\r\n\r\n");
  }
  return bytes.length >= end + Number(headers.get("content-length") ?? "0");
}

/** Starts a proxy in front of `upstream` (an `http://host:port` URL); see the module doc. */
export function faultProxy(upstream: string, options: FaultProxyOptions = {}): FaultProxy {
  const target = new URL(upstream);
  if (target.protocol !== "http:") throw new Error("the fault proxy speaks plain http only");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let faults = options.faults;
  let gone = false;
  let closed = false;
  const conns = new Set<Deno.Conn>();
  const log: LogEntry[] = [];
  const errors: string[] = [];
  const counts = new Map<RequestKind, number>();
  let stalls = new Set<() => void>();
  let responseStalls = 0;
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((l) => l());

  /** Sleeps `ms` (capped), ending early on releaseStalls() or close(). */
  const stall = (ms: number) =>
    new Promise<void>((resolve) => {
      if (closed) return resolve();
      const done = () => {
        clearTimeout(timer);
        stalls.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, MAX_STALL_MS));
      stalls.add(done);
    });

  const goAway = () => {
    gone = true;
    for (const c of conns) closeQuietly(c);
    conns.clear();
  };

  async function serve(client: Deno.Conn) {
    const wire = new Wire(client);
    let server: Deno.Conn | undefined;
    let pumping: Promise<void> | undefined;
    /** Set per forwarded request: pause its response after `afterBytes` of it. */
    let responseStall: { afterBytes: number; ms: number } | undefined;
    /** Set per forwarded request: flip its response's byte `atByte` (counted from its start). */
    let responseFlip: { atByte: number } | undefined;
    /** Set per forwarded request: the bytes of its response read so far, to be thrown away. */
    let dropping: Uint8Array | undefined;
    const pump = async (from: Deno.Conn) => {
      const buf = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          let chunk = buf.subarray(0, n);
          if (dropping) {
            dropping = new Uint8Array([...dropping, ...chunk]);
            if (wholeResponse(dropping)) break; // answered, and the answer is lost
            continue;
          }
          if (responseFlip && chunk.length > responseFlip.atByte) {
            chunk = chunk.slice();
            chunk[responseFlip.atByte] ^= 0xff;
            responseFlip = undefined;
          } else if (responseFlip) {
            responseFlip.atByte -= chunk.length;
          }
          if (responseStall && chunk.length > responseStall.afterBytes) {
            const { afterBytes, ms } = responseStall;
            responseStall = undefined;
            await writeAll(client, chunk.subarray(0, afterBytes));
            chunk = chunk.subarray(afterBytes);
            responseStalls++;
            changed();
            await stall(ms);
            if (closed || gone) break;
          } else if (responseStall) {
            responseStall.afterBytes -= chunk.length;
          }
          await writeAll(client, chunk);
        }
      } catch { /* either side went away */ }
      closeQuietly(client);
      conns.delete(client);
    };
    try {
      for (;;) {
        const raw = await wire.head();
        if (raw === null || closed) break;
        const { method, target: path, headers } = parseHead(raw);
        const kind = classify(method, path);
        const nth = (counts.get(kind) ?? 0) + 1;
        counts.set(kind, nth);
        const contentLength = Number(headers.get("content-length") ?? "0");
        const req: ProxiedRequest = {
          index: log.length + 1,
          kind,
          nth,
          method,
          target: path,
          query: new URL(path, "http://proxy").searchParams,
          headers,
          contentLength,
        };
        let fault = gone ? GONE : faults?.(req);
        if (fault?.kind === "gone") gone = true;
        if (gone) fault = GONE;
        log.push({
          index: req.index,
          kind,
          nth,
          method,
          target: path,
          range: headers.get("range"),
          fault: fault ? describeFault(fault) : undefined,
        });
        changed();
        if (fault?.kind === "gone") {
          goAway();
          break;
        }
        if (headers.get("transfer-encoding")) {
          errors.push(`${kind} ${path}: Transfer-Encoding ${headers.get("transfer-encoding")}`);
          break;
        }
        if (fault?.kind === "stall") await stall(fault.ms);
        if (closed || gone) break;
        if (fault?.kind === "error") {
          // Answered like a server that refuses at once: no "100 Continue" (the client sends
          // the body anyway), the body drained so the connection stays usable.
          await wire.body(contentLength, async () => {});
          await writeAll(client, errorResponse(fault, method, req.index));
          continue;
        }
        if (!server) {
          server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
          conns.add(server);
          pumping = pump(server);
        }
        const upstreamConn = server;
        responseStall = fault?.kind === "stallResponse"
          ? { afterBytes: fault.afterBytes, ms: fault.ms }
          : undefined;
        responseFlip = fault?.kind === "flipResponse" ? { atByte: fault.atByte } : undefined;
        dropping = fault?.kind === "dropResponse" ? new Uint8Array(0) : undefined;
        await writeAll(upstreamConn, raw);
        if (fault?.kind === "reset") {
          await wire.body(
            Math.min(fault.afterBodyBytes, contentLength),
            (chunk) => writeAll(upstreamConn, chunk),
          );
          break; // the finally closes both sides mid-body
        }
        await wire.body(contentLength, (chunk) => writeAll(upstreamConn, chunk));
      }
    } catch { /* a side went away; close both */ }
    closeQuietly(client);
    closeQuietly(server);
    conns.delete(client);
    if (server) conns.delete(server);
    await pumping;
  }

  const serving = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const client of listener) {
      if (gone || closed) {
        closeQuietly(client);
        continue;
      }
      conns.add(client);
      const p = serve(client).finally(() => serving.delete(p));
      serving.add(p);
    }
  })().catch(() => {});

  const waitUntil = <T>(check: () => T | undefined, timeoutMs: number, what: string) =>
    new Promise<T>((resolve, reject) => {
      const tryIt = () => {
        const got = check();
        if (got === undefined) return false;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(got);
        return true;
      };
      const listener = () => void tryIt();
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`fault proxy: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      listeners.add(listener);
      tryIt();
    });

  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    log,
    errors,
    setFaults(f) {
      faults = f;
    },
    goAway,
    releaseStalls() {
      const now = stalls;
      stalls = new Set();
      now.forEach((done) => done());
    },
    count: (kind) => counts.get(kind) ?? 0,
    injected: () => log.filter((e) => e.fault !== undefined),
    waitFor: (pred, timeoutMs = 30_000) =>
      waitUntil(() => log.find(pred), timeoutMs, "a matching request"),
    waitForResponseStall: (timeoutMs = 30_000) =>
      waitUntil(() => (responseStalls > 0 ? true : undefined), timeoutMs, "a response stall")
        .then(() => {}),
    async close() {
      closed = true;
      listener.close();
      for (const c of conns) closeQuietly(c);
      conns.clear();
      stalls.forEach((done) => done());
      await accepting;
      await Promise.allSettled([...serving]);
    },
  };
}
