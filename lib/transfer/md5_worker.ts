/**
 * MD5 off the main thread, for the held parts of a download (`download.ts`): MD5 was most of the
 * main thread's time in a restore, and while it hashes an 8 MiB part (about 15 ms) nothing else
 * moves there, neither the sockets nor the writes into `zfs receive`. A part's buffers are
 * transferred to the worker and back, not copied.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** The hex MD5 of `chunks` in order, on this thread. */
function md5Of(chunks: Uint8Array[]): string {
  const h = createHash("md5");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

/** The worker's code: MD5 of the buffers it is sent, which it sends back with the digest. */
const MD5_WORKER = `import { createHash } from "node:crypto";
self.onmessage = (e) => {
  const { id, buffers } = e.data;
  const h = createHash("md5");
  for (const b of buffers) h.update(new Uint8Array(b));
  self.postMessage({ id, md5: h.digest("hex"), buffers }, buffers);
};`;

/**
 * MD5s computed in a Worker (module doc), made from a blob of {@linkcode MD5_WORKER}, so it needs
 * no file and no permission beyond the caller's. Where no Worker can start, it hashes inline.
 */
export class Md5Thread {
  #worker: Worker | undefined;
  #url: string | undefined;
  #next = 0;
  #waiting = new Map<number, { resolve: (r: Uint8Array[] | Error) => void; md5?: string }>();
  #failed: Error | undefined;

  constructor() {
    try {
      this.#url = URL.createObjectURL(new Blob([MD5_WORKER], { type: "text/javascript" }));
      this.#worker = new Worker(this.#url, { type: "module" });
    } catch {
      this.close();
      return;
    }
    this.#worker.onmessage = (
      e: MessageEvent<{ id: number; md5: string; buffers: ArrayBuffer[] }>,
    ) => {
      const w = this.#waiting.get(e.data.id);
      if (!w) return;
      this.#waiting.delete(e.data.id);
      w.md5 = e.data.md5;
      w.resolve(e.data.buffers.map((b) => new Uint8Array(b)));
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failed = new Error(`the MD5 worker failed: ${e.message}`);
      for (const w of this.#waiting.values()) w.resolve(this.#failed);
      this.#waiting.clear();
    };
  }

  /**
   * The hex MD5 of `chunks` in order, and the chunks back (the same memory: each must be a whole
   * ArrayBuffer of its own, which is handed to the worker meanwhile).
   */
  async md5(chunks: Uint8Array[]): Promise<{ md5: string; chunks: Uint8Array[] }> {
    if (!this.#worker) return { md5: md5Of(chunks), chunks };
    if (this.#failed) throw this.#failed;
    const id = this.#next++;
    const buffers = chunks.map((c) => c.buffer as ArrayBuffer);
    const entry: { resolve: (r: Uint8Array[] | Error) => void; md5?: string } = {
      resolve: () => {},
    };
    const back = new Promise<Uint8Array[] | Error>((resolve) => (entry.resolve = resolve));
    this.#waiting.set(id, entry);
    this.#worker.postMessage({ id, buffers }, buffers);
    const r = await back;
    if (r instanceof Error) throw r;
    return { md5: entry.md5!, chunks: r };
  }

  /** Stops the worker; hashes still waiting fail. */
  close(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    if (this.#url) URL.revokeObjectURL(this.#url);
    this.#url = undefined;
    const closed = new Error("the download was closed");
    for (const w of this.#waiting.values()) w.resolve(closed);
    this.#waiting.clear();
  }
}
