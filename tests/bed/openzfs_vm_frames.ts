/**
 * The OpenZFS guest's wire format, host side: frames of one type byte, a 4-byte big-endian
 * length and the payload, over a UNIX socket. The frame types are listed in
 * `openzfs_vm_agent.py`; the broker adds `F` (a failure the client reports and exits 255 on).
 *
 * @module
 */

/** One frame: its type letter and payload. */
export interface Frame {
  kind: string;
  payload: Uint8Array;
}

/** Frames over a connection: reads parse whole frames, writes are serialised and complete. */
export class FrameConn {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  #writing: Promise<void> = Promise.resolve();

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The argv payload of an `E` frame: each item a 4-byte length and its UTF-8 bytes. */
  static argv(argv: string[]): Uint8Array {
    const items = argv.map((a) => new TextEncoder().encode(a));
    const out = new Uint8Array(items.reduce((n, i) => n + 4 + i.length, 0));
    const view = new DataView(out.buffer);
    let at = 0;
    for (const item of items) {
      view.setUint32(at, item.length);
      out.set(item, at + 4);
      at += 4 + item.length;
    }
    return out;
  }

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(Math.max(65536, n - this.#buf.length));
      const got = await this.#conn.read(chunk);
      if (got === null) return false;
      const next = new Uint8Array(this.#buf.length + got);
      next.set(this.#buf);
      next.set(chunk.subarray(0, got), this.#buf.length);
      this.#buf = next;
    }
    return true;
  }

  /** The next frame, or null at end of stream (a partial frame counts as the end). */
  async read(): Promise<Frame | null> {
    if (!await this.#fill(5)) return null;
    const length = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(1);
    if (!await this.#fill(5 + length)) return null;
    const kind = String.fromCharCode(this.#buf[0]);
    const payload = this.#buf.slice(5, 5 + length);
    this.#buf = this.#buf.subarray(5 + length);
    return { kind, payload };
  }

  /** Writes one whole frame after any frame already being written. */
  write(kind: string, payload: Uint8Array = new Uint8Array(0)): Promise<void> {
    const frame = new Uint8Array(5 + payload.length);
    frame[0] = kind.charCodeAt(0);
    new DataView(frame.buffer).setUint32(1, payload.length);
    frame.set(payload, 5);
    const mine = this.#writing.then(async () => {
      let at = 0;
      while (at < frame.length) at += await this.#conn.write(frame.subarray(at));
    });
    this.#writing = mine.catch(() => {});
    return mine;
  }

  /** Closes the connection; ignores one already closed. */
  close(): void {
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
