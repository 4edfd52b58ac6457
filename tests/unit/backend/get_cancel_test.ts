/**
 * An abandoned GET: cancelling the stream `S3Store.get()` returned closes its connection (Deno's
 * resource sanitizer fails a test that leaves a socket open) and removes the request's abort
 * listener.
 *
 * @module
 */

import assert from "node:assert/strict";
import { S3Store } from "../../../lib/backend/s3.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const BODY = "x".repeat(1024 * 1024);

/** An AbortSignal that counts the abort listeners added to it and not yet removed. */
function countedSignal() {
  const controller = new AbortController();
  const signal = controller.signal;
  const live = new Set<unknown>();
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((type: string, fn: EventListener, options?: unknown) => {
    if (type === "abort") live.add(fn);
    add(type, fn, options as AddEventListenerOptions);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((type: string, fn: EventListener, options?: unknown) => {
    if (type === "abort") live.delete(fn);
    remove(type, fn, options as EventListenerOptions);
  }) as typeof signal.removeEventListener;
  return { signal, live: () => live.size };
}

Deno.test("S3Store.get(): a cancelled stream closes its connection and drops its abort listener", async () => {
  const server = scriptedServer((head) =>
    head.startsWith("GET")
      ? `HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`
      : "close"
  );
  const store = new S3Store({
    bucket: "b",
    endpoint: `http://127.0.0.1:${server.port}`,
    keyId: "k",
    secret: "s",
  });
  try {
    const { signal, live } = countedSignal();
    const stream = await store.get("k", { signal });
    const reader = stream.getReader();
    const first = await reader.read();
    assert.ok(first.value && first.value.length > 0);
    await reader.cancel();
    assert.equal(live(), 0, "abort listeners left on the signal");
    // The connection is closed, not pooled: the next GET opens another.
    const again = await store.get("k", { signal });
    await again.cancel();
    assert.equal(server.connections(), 2);
  } finally {
    store.close();
    await server.close();
  }
});
