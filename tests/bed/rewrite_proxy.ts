/**
 * Test-bed helper: an HTTP/1.1 proxy on 127.0.0.1 that hands each whole response from the S3
 * server to the test, which may change it (a flipped body byte, a rewritten ETag, an added
 * header) before it goes on to z3. It stands for what the bed cannot produce: corruption in
 * transit that the server never sees, and a server that encrypts with SSE-KMS.
 *
 * Requests pass through unchanged (so SigV4 signatures, made for the proxy's Host, still match),
 * except that an `Expect: 100-continue` is answered by the proxy itself. Responses are read whole
 * (Content-Length or chunked; none for HEAD, 1xx, 204, 304) and sent on with a Content-Length.
 * Loopback only; meant for small test objects.
 *
 * @module
 */

import { writeAll } from "./conn.ts";
import { classify, type RequestKind } from "./fault_proxy.ts";

/** A request as the test sees it. */
export interface Exchange {
  /** 1-based, over every request the proxy has seen. */
  index: number;
  kind: RequestKind;
  /** 1-based count of requests of this kind so far, this one included. */
  nth: number;
  method: string;
  target: string;
  /** Header names lower-cased. */
  headers: Map<string, string>;
}

/** A whole response; change it in place or return a new one. */
export interface ProxiedResponse {
  status: number;
  reason: string;
  /** In order, names as sent. */
  headers: [string, string][];
  body: Uint8Array;
}

/** A running proxy. */
export interface RewriteProxy {
  /** `http://127.0.0.1:PORT`, for HOST. */
  readonly endpoint: string;
  /** Every request seen, in order. */
  readonly log: Exchange[];
  /** From now on every connection is closed unanswered (an endpoint gone). */
  goAway(): void;
  close(): Promise<void>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads a connection in heads, lines and exact byte counts. */
class Reader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }
  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }
  /** Bytes up to and including `marker`, or null at a clean end before any byte. */
  async until(marker: string): Promise<Uint8Array | null> {
    const m = encoder.encode(marker);
    for (;;) {
      outer: for (let i = 0; i + m.length <= this.#buf.length; i++) {
        for (let j = 0; j < m.length; j++) if (this.#buf[i + j] !== m[j]) continue outer;
        return this.#take(i + m.length);
      }
      if (!(await this.#more())) {
        if (this.#buf.length === 0) return null;
        throw new Error("connection closed mid-message");
      }
    }
  }
  async exact(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!(await this.#more())) throw new Error(`connection closed with ${n} bytes to go`);
    }
    return this.#take(n);
  }
  async rest(): Promise<Uint8Array> {
    while (await this.#more()) { /* read to the end */ }
    return this.#take(this.#buf.length);
  }
}

function headerMap(lines: string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return map;
}

async function readResponse(from: Reader, method: string): Promise<ProxiedResponse> {
  for (;;) {
    const head = await from.until("\r\n\r\n");
    if (!head) throw new Error("upstream closed before answering");
    const lines = decoder.decode(head).split("\r\n").filter((l) => l !== "");
    const [, code, ...reason] = lines[0].split(" ");
    const status = Number(code);
    if (status >= 100 && status < 200) continue; // interim (100 Continue): the proxy sent its own
    const headers = lines.slice(1).map((l) => {
      const colon = l.indexOf(":");
      return [l.slice(0, colon), l.slice(colon + 1).trim()] as [string, string];
    });
    const map = headerMap(lines.slice(1));
    let body: Uint8Array = new Uint8Array(0);
    if (method !== "HEAD" && status !== 204 && status !== 304) {
      if (map.get("transfer-encoding")?.includes("chunked")) {
        const parts: Uint8Array[] = [];
        for (;;) {
          const size = parseInt(decoder.decode((await from.until("\r\n"))!), 16);
          if (size === 0) {
            await from.until("\r\n");
            break;
          }
          parts.push(await from.exact(size));
          await from.exact(2);
        }
        body = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
        let off = 0;
        for (const p of parts) body.set(p, (off += p.length) - p.length);
      } else if (map.has("content-length")) {
        body = await from.exact(Number(map.get("content-length")));
      } else {
        body = await from.rest();
      }
    }
    return { status, reason: reason.join(" "), headers, body };
  }
}

function serialize(res: ProxiedResponse, method: string): Uint8Array {
  const keep = res.headers.filter(([name]) =>
    !/^(transfer-encoding|content-length)$/i.test(name) ||
    (method === "HEAD" && /^content-length$/i.test(name))
  );
  if (method !== "HEAD") keep.push(["Content-Length", String(res.body.length)]);
  const head = encoder.encode(
    `HTTP/1.1 ${res.status} ${res.reason}\r\n${
      keep.map(([n, v]) => `${n}: ${v}\r\n`).join("")
    }\r\n`,
  );
  const out = new Uint8Array(head.length + res.body.length);
  out.set(head);
  out.set(res.body, head.length);
  return out;
}

/** Starts a proxy in front of `upstream` that passes each response through `rewrite`. */
export function rewriteProxy(
  upstream: string,
  rewrite: (req: Exchange, res: ProxiedResponse) => ProxiedResponse | void,
): RewriteProxy {
  const target = new URL(upstream);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const log: Exchange[] = [];
  const counts = new Map<RequestKind, number>();
  const conns = new Set<Deno.Conn>();
  let gone = false;
  const closeAll = () => {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
    conns.clear();
  };
  async function serve(client: Deno.Conn) {
    let server: Deno.Conn | undefined;
    try {
      const fromClient = new Reader(client);
      server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
      conns.add(server);
      const fromServer = new Reader(server);
      for (;;) {
        const head = await fromClient.until("\r\n\r\n");
        if (!head || gone) break;
        const lines = decoder.decode(head).split("\r\n").filter((l) => l !== "");
        const [method, path] = lines[0].split(" ");
        const headers = headerMap(lines.slice(1));
        const kind = classify(method, path);
        const nth = (counts.get(kind) ?? 0) + 1;
        counts.set(kind, nth);
        const req: Exchange = { index: log.length + 1, kind, nth, method, target: path, headers };
        log.push(req);
        const forwarded = lines.filter((l) => !/^expect:/i.test(l)).join("\r\n") + "\r\n\r\n";
        await writeAll(server, encoder.encode(forwarded));
        if (/100-continue/i.test(headers.get("expect") ?? "")) {
          await writeAll(client, encoder.encode("HTTP/1.1 100 Continue\r\n\r\n"));
        }
        const length = Number(headers.get("content-length") ?? "0");
        if (length > 0) await writeAll(server, await fromClient.exact(length));
        const res = await readResponse(fromServer, method);
        if (gone) break;
        await writeAll(client, serialize(rewrite(req, res) ?? res, method));
      }
    } catch { /* a side went away */ }
    for (const c of [client, server]) {
      try {
        c?.close();
      } catch { /* already closed */ }
      if (c) conns.delete(c);
    }
  }
  const serving = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const client of listener) {
      if (gone) {
        client.close();
        continue;
      }
      conns.add(client);
      const p = serve(client).finally(() => serving.delete(p));
      serving.add(p);
    }
  })().catch(() => {});
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    log,
    goAway() {
      gone = true;
      closeAll();
    },
    async close() {
      gone = true;
      listener.close();
      closeAll();
      await accepting;
      await Promise.allSettled([...serving]);
    },
  };
}
