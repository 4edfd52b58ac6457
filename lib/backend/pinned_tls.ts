/**
 * HTTPS that trusts the given CA certificates alone (`S3_CA_ONLY`). `Deno.startTls` adds its
 * `caCerts` to Deno's built-in roots, so any public CA could still vouch for the endpoint; a
 * `node:tls` socket given `ca` trusts those certificates instead of the built-in roots (both seen
 * on this machine: with `DENO_CERT` making the bed's CA a built-in root, `Deno.startTls` with
 * another CA in `caCerts` still accepted the bed's certificate, `node:tls` with `ca` refused it).
 * The socket is wrapped as the `read`/`write`/`close` that `http.ts` uses of a `Deno.Conn`.
 *
 * @module
 */

import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { isIP } from "node:net";

/** What `http.ts` uses of a connection. */
export type ByteConn = Pick<Deno.Conn, "read" | "write" | "close">;

/** Buffered answer bytes above which the socket is paused until they are read. */
const HIGH_WATER = 1024 * 1024;

/** A connected `node:tls` socket as a {@linkcode ByteConn}. */
class NodeTlsConn implements ByteConn {
  readonly #socket: TLSSocket;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(socket: TLSSocket) {
    this.#socket = socket;
    const wake = () => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered > HIGH_WATER) socket.pause();
      wake();
    });
    socket.on("end", () => (this.#ended = true, wake()));
    socket.on("close", () => (this.#ended = true, wake()));
    socket.on("error", (err: Error) => (this.#error ??= err, wake()));
  }

  /** Up to `p.length` bytes of the answer; `null` at its end. */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0 && !this.#ended && !this.#error) {
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    const chunk = this.#chunks[0];
    if (chunk === undefined) {
      if (this.#error) throw this.#error;
      return null;
    }
    const n = Math.min(p.length, chunk.length);
    p.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    this.#buffered -= n;
    if (this.#buffered <= HIGH_WATER && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  /** Writes all of `p`; resolves once the socket took it. */
  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#socket.write(p.slice(), (err?: Error | null) => err ? reject(err) : resolve(p.length));
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}

/** A TLS error that is about the peer's certificate (not the network). */
export function isCertificateError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return /CERT|UNABLE_TO_VERIFY|SELF_SIGNED/.test(String(e?.code ?? "")) ||
    /certificate/i.test(String(e?.message ?? ""));
}

/**
 * A TLS connection to `hostname`:`port` whose certificate must chain to one of `caCerts` (and no
 * built-in root) and name `hostname`. `signal` destroys the socket, handshake in progress
 * included; the promise then rejects with the socket's error.
 */
export async function connectPinnedTls(
  hostname: string,
  port: number,
  options: { caCerts: string[]; signal: AbortSignal },
): Promise<ByteConn> {
  const socket = tlsConnect({
    host: hostname,
    port,
    ca: options.caCerts,
    servername: isIP(hostname) ? undefined : hostname,
  });
  const onAbort = () => socket.destroy(new Error("aborted"));
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
      socket.once("close", () => reject(new Error("connection closed during the TLS handshake")));
    });
    return new NodeTlsConn(socket);
  } catch (err) {
    socket.destroy();
    throw err;
  } finally {
    options.signal.removeEventListener("abort", onAbort);
  }
}
