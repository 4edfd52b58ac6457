/**
 * Test-bed helper: a scripted HTTP/1.1 server on 127.0.0.1 (the one fake the brief allows: a peer
 * that misbehaves on cue). It reads each request head and its Content-Length body and answers
 * with the bytes the test's script returns, or closes the connection unanswered.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * What the scripted server does with the n-th request head (1-based) on connection c: answers
 * with the bytes of a string, closes unanswered (`"close"`), or writes `cut`'s bytes and then
 * closes (an answer cut short).
 */
export type Script = (head: string, n: number, conn: number) => string | "close" | { cut: string };

/**
 * A server that answers each request head with `script`'s bytes, closes unanswered, or writes
 * a cut answer and closes.
 */
export function scriptedServer(script: Script) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let connections = 0;
  let requests = 0;
  const serving: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const c of listener) {
      const id = ++connections;
      conns.add(c);
      serving.push((async () => {
        let buf = "";
        const chunk = new Uint8Array(64 * 1024);
        try {
          for (;;) {
            const at = buf.indexOf("\r\n\r\n");
            if (at < 0) {
              const n = await c.read(chunk);
              if (n === null) break;
              buf += decoder.decode(chunk.subarray(0, n));
              continue;
            }
            const head = buf.slice(0, at);
            const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
            while (buf.length < at + 4 + length) {
              const n = await c.read(chunk);
              if (n === null) throw new Error("closed in a body");
              buf += decoder.decode(chunk.subarray(0, n));
            }
            buf = buf.slice(at + 4 + length);
            const answer = script(head, ++requests, id);
            if (answer === "close") break;
            const bytes = encoder.encode(typeof answer === "string" ? answer : answer.cut);
            for (let off = 0; off < bytes.length;) off += await c.write(bytes.subarray(off));
            if (typeof answer !== "string") break;
          }
        } catch { /* the client went away */ }
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      })());
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    connections: () => connections,
    async close() {
      listener.close();
      for (const c of conns) c.close();
      await accepting.catch(() => {});
      await Promise.all(serving);
    },
  };
}
