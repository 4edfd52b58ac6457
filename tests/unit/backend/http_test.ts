/**
 * lib/backend/http.ts on the wire, against a scripted HTTP/1.1 server on 127.0.0.1 (the one fake the
 * brief allows: a peer that misbehaves on cue). The SDK is not involved: requests are built the
 * way the SDK hands them over.
 *
 * @module
 */

import assert from "node:assert/strict";
import { HttpHandler, type HttpRequest } from "../../../lib/backend/http.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function request(port: number, method: string, path = "/b/k"): HttpRequest {
  return { method, protocol: "http:", hostname: "127.0.0.1", port, path, headers: {} };
}

const ok = (body: string) =>
  `HTTP/1.1 200 OK\r\nContent-Length: ${encoder.encode(body).length}\r\n\r\n${body}`;

Deno.test("HttpHandler reads no body after HEAD and reassembles a chunked answer", async () => {
  const server = scriptedServer((head) =>
    head.startsWith("HEAD")
      ? "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n\r\n"
      : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
  );
  const http = new HttpHandler({ stallMs: 5000 });
  try {
    const head = await http.handle(request(server.port, "HEAD"));
    assert.deepEqual(head.response.headers["content-length"], "12345");
    assert.deepEqual(await new Response(head.response.body).text(), "");
    const get = await http.handle(request(server.port, "GET"));
    assert.deepEqual(await new Response(get.response.body).text(), "hello world");
    assert.deepEqual(server.connections(), 1, "both on one kept-alive connection");
  } finally {
    http.destroy();
    await server.close();
  }
});

Deno.test("HttpHandler sends an idempotent request again on a fresh connection when a reused one closes unanswered", async () => {
  // The second request arrives on the kept-alive connection and the server closes it unanswered,
  // as a server does that times the connection out at that very moment.
  const server = scriptedServer((_head, n) => n === 2 ? "close" : ok(`answer ${n}`));
  const http = new HttpHandler();
  try {
    const first = await http.handle(request(server.port, "GET"));
    assert.deepEqual(await new Response(first.response.body).text(), "answer 1");
    const second = await http.handle(request(server.port, "PUT"));
    assert.deepEqual(await new Response(second.response.body).text(), "answer 3");
    assert.deepEqual(server.connections(), 2);
  } finally {
    http.destroy();
    await server.close();
  }
});

Deno.test("HttpHandler does not send a POST again when a reused connection closes unanswered", async () => {
  const server = scriptedServer((_head, n) => n === 2 ? "close" : ok(`answer ${n}`));
  const http = new HttpHandler();
  try {
    const first = await http.handle(request(server.port, "GET"));
    await new Response(first.response.body).text();
    await assert.rejects(
      http.handle(request(server.port, "POST")),
      (err: Error & { code?: string }) =>
        err.name === "HttpTransportError" && /closed before any response/.test(err.message),
    );
    assert.deepEqual(server.connections(), 1, "no second connection: the caller's policy decides");
  } finally {
    http.destroy();
    await server.close();
  }
});

Deno.test("HttpHandler fails a request whose answer stalls after stallMs", async () => {
  const server = scriptedServer(() => "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  const http = new HttpHandler({ stallMs: 300 });
  try {
    const got = await http.handle(request(server.port, "GET"));
    await assert.rejects(
      new Response(got.response.body).text(),
      (err: Error & { code?: string }) =>
        err.code === "ETIMEDOUT" && /S3_TIMEOUT/.test(err.message),
    );
  } finally {
    http.destroy();
    await server.close();
  }
});

Deno.test("HttpHandler reads a GET body straight into a BYOB reader's buffer, buffered bytes first", async () => {
  // ASCII, so the scripted server's text is its bytes; 300,000 bytes: several socket reads.
  const text = Array.from({ length: 300_000 }, (_, i) => String.fromCharCode(33 + (i * 7) % 94))
    .join("");
  const chunked = `${(100_000).toString(16)}\r\n${text.slice(0, 100_000)}\r\n` +
    `${(200_000).toString(16)}\r\n${text.slice(100_000)}\r\n0\r\n\r\n`;
  const server = scriptedServer((_head, n) =>
    n === 1 ? ok(text) : `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}`
  );
  const http = new HttpHandler({ stallMs: 5000 });
  try {
    for (const framing of ["Content-Length", "chunked"]) {
      const get = await http.handle(request(server.port, "GET"));
      const reader = (get.response.body as ReadableStream<Uint8Array>).getReader({ mode: "byob" });
      // The range starts 5 bytes into its buffer; reads of 1,000 bytes, then of whatever is left.
      let buffer = new ArrayBuffer(5 + text.length);
      let filled = 0;
      while (filled < text.length) {
        const room = filled === 0 ? 1000 : text.length - filled;
        const r = await reader.read(new Uint8Array(buffer, 5 + filled, room));
        buffer = r.value!.buffer as ArrayBuffer;
        if (r.done) break;
        filled += r.value!.length;
      }
      assert.ok((await reader.read(new Uint8Array(1))).done, `${framing}: no more than the body`);
      assert.deepEqual(filled, text.length, `${framing}: the whole body`);
      assert.deepEqual(decoder.decode(new Uint8Array(buffer, 5, filled)), text, framing);
    }
    assert.deepEqual(server.connections(), 1, "the connection is kept alive after each body");
  } finally {
    http.destroy();
    await server.close();
  }
});

/** What a request's answer does: its body text, or the error's message. */
async function outcome(http: HttpHandler, port: number, method = "GET"): Promise<string> {
  try {
    const got = await http.handle(request(port, method));
    return `body ${await new Response(got.response.body).text()}`;
  } catch (err) {
    return `error ${(err as Error & { code?: string }).code}: ${(err as Error).message}`;
  }
}

Deno.test("HttpHandler refuses a Content-Length or chunk size that is not plain digits", async () => {
  const answers = [
    "HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nContent-Length: 1e1\r\n\r\nhellohello",
    "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5zz\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
  ];
  const server = scriptedServer((_head, n) => answers[(n - 1) % answers.length]);
  const http = new HttpHandler({ stallMs: 2000 });
  try {
    for (const answer of answers) {
      for (const method of ["GET", "PUT"]) {
        const got = await outcome(http, server.port, method);
        assert.match(got, /^error EPROTO: bad (Content-Length|chunk size) "/, `${answer}: ${got}`);
      }
    }
    // The same shapes written right are read.
    const good = scriptedServer(() =>
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ;ext=1\r\nhello\r\n0\r\n\r\n"
    );
    try {
      assert.equal(await outcome(http, good.port), "body hello");
    } finally {
      await good.close();
    }
  } finally {
    http.destroy();
    await server.close();
  }
});

Deno.test("HttpHandler refuses a 2xx answer without framing, whose cut would look whole", async () => {
  const server = scriptedServer(() => 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"cut":');
  const http = new HttpHandler({ stallMs: 2000 });
  try {
    for (const method of ["GET", "PUT"]) {
      assert.equal(
        await outcome(http, server.port, method),
        "error EPROTO: a 200 answer with neither Content-Length nor chunked framing",
      );
    }
  } finally {
    http.destroy();
    await server.close();
  }
});

Deno.test("HttpHandler fails a request answered by endless interim answers, within the stall bound", async () => {
  const server = scriptedServer(() => "HTTP/1.1 100 Continue\r\n\r\n".repeat(10_000));
  const http = new HttpHandler({ stallMs: 2000 });
  try {
    const t0 = Date.now();
    assert.equal(
      await outcome(http, server.port, "HEAD"),
      "error EPROTO: more than 8 interim (1xx) answers to one request",
    );
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  } finally {
    http.destroy();
    await server.close();
  }
});

/**
 * A server that reads a request's body slowly (`chunk` bytes every `everyMs`) and answers only
 * after the whole body; then, when `drip`, sends its answer body one byte every `everyMs`.
 */
function slowPeer(options: { chunk: number; everyMs: number; drip?: boolean }) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    for await (const conn of listener) {
      (async () => {
        const buf = new Uint8Array(options.chunk);
        let text = "";
        let body = -1;
        try {
          for (let n; (n = await conn.read(buf)) !== null;) {
            if (body < 0) {
              text += new TextDecoder().decode(buf.subarray(0, n));
              const end = text.indexOf("\r\n\r\n");
              if (end < 0) continue;
              const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? 0);
              body = length - (encoder.encode(text).length - end - 4);
            } else body -= n;
            if (body <= 0) break;
            await new Promise((r) => setTimeout(r, options.everyMs));
          }
          if (!options.drip) {
            await conn.write(encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
          } else {
            await conn.write(encoder.encode("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"));
            for (let i = 0; i < 1000; i++) {
              await new Promise((r) => setTimeout(r, options.everyMs));
              await conn.write(encoder.encode("x"));
            }
          }
        } catch { /* the client went away */ }
        try {
          conn.close();
        } catch { /* closed */ }
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: async () => {
      listener.close();
      await served.catch(() => {});
    },
  };
}

Deno.test("HttpHandler gives a body that is still being written time past stallMs: the answer's clock starts once it is sent", async () => {
  // 96 MiB read 4 MiB every 150 ms: about 3.6 s of writing, each write progressing within
  // 2 s; what the kernel buffers when the last write returns is read within about 0.3 s.
  const peer = slowPeer({ chunk: 4 << 20, everyMs: 150 });
  const http = new HttpHandler({ stallMs: 2000 });
  try {
    const put = { ...request(peer.port, "PUT"), body: new Uint8Array(96 << 20) };
    const got = await http.handle(put);
    assert.equal(await new Response(got.response.body).text(), "ok");
  } finally {
    http.destroy();
    await peer.close();
  }
});

Deno.test("HttpHandler fails an answer that drips a byte at a time within the stall bound", async () => {
  const peer = slowPeer({ chunk: 64 << 10, everyMs: 150, drip: true });
  const http = new HttpHandler({ stallMs: 1000 });
  try {
    const t0 = Date.now();
    const got = await outcome(http, peer.port);
    assert.match(got, /^error ETIMEDOUT: answer too slow: \d+ bytes in \d+(\.\d)? s/);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  } finally {
    http.destroy();
    await peer.close();
  }
});
