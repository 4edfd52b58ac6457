/**
 * Test-bed helper: an HTTP/1.1 proxy on 127.0.0.1 in front of the real S3 server that behaves
 * the way real servers do and polite test servers do not (issue #11):
 *
 * - **early answer**: for a request the test picks, it reads only the request head, writes an
 *   S3 error answer (`403 AccessDenied`, `503 SlowDown`) with `Connection: close` and closes the
 *   connection without reading the body, as a server refusing a large PUT does;
 * - **idle poke**: a keep-alive connection left idle for `idlePokeMs` after an answer gets a
 *   stray `408 Request Timeout` and is closed, as nginx and Ceph's beast do with idle sockets.
 *
 * Every other request goes upstream on the connection's own upstream connection, and its answer
 * comes back byte for byte (framed by Content-Length or chunked encoding, so the proxy knows when
 * a connection is idle). Every byte read is written (`Conn.write` may write fewer).
 *
 * {@linkcode hangingServer} is the other rude peer: it accepts connections and never answers,
 * not even a TLS handshake.
 *
 * @module
 */

import { closeQuietly, writeAll } from "./conn.ts";
import { classify, type RequestKind } from "./fault_proxy.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An early answer: status and S3 error code. */
export interface EarlyAnswer {
  status: number;
  code: string;
}

/** Options for {@linkcode rudeProxy}. */
export interface RudeProxyOptions {
  /** Picks the requests answered early (kind, and 1-based count of that kind). */
  early?: (kind: RequestKind, nth: number) => EarlyAnswer | undefined;
  /** Poke connections idle this long after an answer. @default {no pokes} */
  idlePokeMs?: number;
}

/** A running proxy. */
export interface RudeProxy {
  /** `http://127.0.0.1:PORT`, for HOST. */
  readonly endpoint: string;
  /** Requests seen, by kind. */
  count(kind: RequestKind): number;
  /** Early answers written. */
  readonly earlyAnswers: number;
  /** Stray 408s written to idle connections. */
  readonly pokes: number;
  /** Requests that arrived on a connection after it was poked (a client that reused it). */
  readonly afterPoke: number;
  /** Protocol surprises; a test asserts this is empty. */
  readonly errors: string[];
  close(): Promise<void>;
}

/** Buffered reads from one side of the proxy. */
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

  /** Bytes up to and including the first `CRLF` (or `CRLFCRLF` with `head`); null at EOF. */
  async until(head: boolean): Promise<Uint8Array | null> {
    for (;;) {
      const b = this.#buf;
      for (let i = 0; i + 1 < b.length; i++) {
        if (b[i] !== 13 || b[i + 1] !== 10) continue;
        if (head && !(b[i + 2] === 13 && b[i + 3] === 10)) continue;
        const n = i + (head ? 4 : 2);
        const out = b.slice(0, n);
        this.#buf = b.slice(n);
        return out;
      }
      if (!(await this.#more())) return null;
    }
  }

  /** Exactly `n` bytes, handed to `sink` as they come. */
  async exactly(n: number, sink: (b: Uint8Array) => Promise<void>): Promise<void> {
    while (n > 0) {
      if (this.#buf.length === 0 && !(await this.#more())) throw new Error("closed in a body");
      const take = this.#buf.slice(0, Math.min(n, this.#buf.length));
      this.#buf = this.#buf.slice(take.length);
      n -= take.length;
      await sink(take);
    }
  }
}

function headers(head: Uint8Array): { first: string; map: Map<string, string> } {
  const [first, ...lines] = decoder.decode(head).split("\r\n");
  const map = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) map.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { first, map };
}

/** Copies one framed HTTP/1.1 answer from `up` to `client`. */
async function relayAnswer(up: Reader, client: Deno.Conn, method: string): Promise<void> {
  for (;;) {
    const head = await up.until(true);
    if (head === null) throw new Error("upstream closed before an answer");
    await writeAll(client, head);
    const { first, map } = headers(head);
    const status = Number(first.split(" ")[1]);
    if (status >= 100 && status < 200) continue;
    if (method === "HEAD" || status === 204 || status === 304) return;
    const send = (b: Uint8Array) => writeAll(client, b);
    if (/chunked/i.test(map.get("transfer-encoding") ?? "")) {
      for (;;) {
        const line = await up.until(false);
        if (line === null) throw new Error("upstream closed in a chunked body");
        await send(line);
        const size = parseInt(decoder.decode(line), 16);
        if (size === 0) {
          for (;;) {
            const trailer = await up.until(false);
            if (trailer === null) throw new Error("upstream closed in trailers");
            await send(trailer);
            if (trailer.length === 2) return;
          }
        }
        await up.exactly(size + 2, send);
      }
    }
    await up.exactly(Number(map.get("content-length") ?? "0"), send);
    return;
  }
}

/** Starts a proxy in front of `upstream` (`http://host:port`); see the module doc. */
export function rudeProxy(upstream: string, options: RudeProxyOptions = {}): RudeProxy {
  const target = new URL(upstream);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const counts = new Map<RequestKind, number>();
  const errors: string[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let earlyAnswers = 0;
  let pokes = 0;
  let afterPoke = 0;
  let closed = false;

  async function serve(client: Deno.Conn): Promise<void> {
    const reader = new Reader(client);
    let server: Deno.Conn | undefined;
    let up: Reader | undefined;
    let poked = false;
    let idleTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      for (;;) {
        const head = await reader.until(true);
        if (idleTimer !== undefined) {
          clearTimeout(idleTimer);
          timers.delete(idleTimer);
        }
        if (head === null || closed) break;
        if (poked) {
          afterPoke++;
          break;
        }
        const { first, map } = headers(head);
        const [method, path] = first.split(" ");
        const kind = classify(method, path);
        const nth = (counts.get(kind) ?? 0) + 1;
        counts.set(kind, nth);
        const early = options.early?.(kind, nth);
        if (early) {
          const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${early.code}</Code>` +
            `<Message>refused by the rude proxy</Message></Error>`;
          const bytes = encoder.encode(body);
          await writeAll(
            client,
            encoder.encode(
              `HTTP/1.1 ${early.status} ${early.code}\r\nContent-Type: application/xml\r\n` +
                `Content-Length: ${bytes.length}\r\nConnection: close\r\n\r\n${body}`,
            ),
          );
          earlyAnswers++;
          break; // close without reading the body
        }
        if (map.get("transfer-encoding")) {
          errors.push(`${kind}: Transfer-Encoding ${map.get("transfer-encoding")}`);
          break;
        }
        if (!server) {
          server = await Deno.connect({ hostname: target.hostname, port: Number(target.port) });
          conns.add(server);
          up = new Reader(server);
        }
        const upstreamConn = server;
        await writeAll(upstreamConn, head);
        await reader.exactly(
          Number(map.get("content-length") ?? "0"),
          (b) => writeAll(upstreamConn, b),
        );
        await relayAnswer(up!, client, method);
        if (options.idlePokeMs !== undefined) {
          const id = setTimeout(() => {
            timers.delete(id);
            poked = true;
            pokes++;
            writeAll(
              client,
              encoder.encode(
                "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
              ),
            ).catch(() => {}).finally(() => {
              // Half-close like a server that is done: the client sees the 408, then EOF.
              client.closeWrite().catch(() => {});
            });
          }, options.idlePokeMs);
          idleTimer = id;
          timers.add(id);
        }
      }
    } catch (err) {
      if (!closed) errors.push(`connection: ${(err as Error).message}`);
    }
    closeQuietly(client);
    closeQuietly(server);
    conns.delete(client);
    if (server) conns.delete(server);
  }

  const serving = new Set<Promise<void>>();
  const accepting = (async () => {
    for await (const client of listener) {
      if (closed) {
        closeQuietly(client);
        continue;
      }
      conns.add(client);
      const p = serve(client).finally(() => serving.delete(p));
      serving.add(p);
    }
  })().catch(() => {});

  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    count: (kind) => counts.get(kind) ?? 0,
    get earlyAnswers() {
      return earlyAnswers;
    },
    get pokes() {
      return pokes;
    },
    get afterPoke() {
      return afterPoke;
    },
    errors,
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      listener.close();
      for (const c of conns) closeQuietly(c);
      await accepting;
      await Promise.all(serving);
    },
  };
}

/** A server that accepts connections and never says a word (nor completes a TLS handshake). */
export function hangingServer(): { port: number; accepted: () => number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let accepted = 0;
  const accepting = (async () => {
    for await (const c of listener) {
      accepted++;
      conns.add(c);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    accepted: () => accepted,
    async close() {
      listener.close();
      for (const c of conns) closeQuietly(c);
      await accepting;
    },
  };
}
