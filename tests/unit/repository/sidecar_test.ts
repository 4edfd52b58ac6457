/** The bounded JSON sidecar reader, against a store that holds a few objects in memory. */
import assert from "node:assert/strict";
import { readJson, SidecarError } from "../../../lib/repository/sidecar.ts";
import type { ObjectInfo, S3Store } from "../../../lib/backend/s3.ts";

/**
 * A store of `objects` (key → bytes). `headSize` overrides the size HEAD reports, as when an
 * object is replaced between the HEAD and the GET. Counts GETs and cancelled bodies.
 */
function fakeStore(objects: Record<string, Uint8Array>, headSize?: number) {
  const seen = { gets: 0, cancelled: 0, pinned: [] as (string | undefined)[] };
  const store = {
    head(key: string): Promise<Partial<ObjectInfo> | undefined> {
      const bytes = objects[key];
      if (bytes === undefined) return Promise.resolve(undefined);
      return Promise.resolve({ key, size: headSize ?? bytes.length, etag: "e", metadata: {} });
    },
    get(key: string, options: { etag?: string } = {}): Promise<ReadableStream<Uint8Array>> {
      seen.gets++;
      seen.pinned.push(options.etag);
      const bytes = objects[key];
      let at = 0;
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (at >= bytes.length) return controller.close();
            controller.enqueue(bytes.slice(at, at + 1000));
            at += 1000;
          },
          cancel() {
            seen.cancelled++;
          },
        }),
      );
    },
  } as unknown as S3Store;
  return { store, seen };
}

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("readJson() parses the object and is undefined when there is none", async () => {
  const { store } = fakeStore({ k: text('{"a":1}\n') });
  assert.deepEqual(await readJson(store, "k", { maxBytes: 100, attempts: 1 }), { a: 1 });
  assert.equal(await readJson(store, "gone", { maxBytes: 100, attempts: 1 }), undefined);
});

Deno.test("readJson() refuses an object over the cap without downloading it, naming key and cap", async () => {
  const { store, seen } = fakeStore({ "big key": new Uint8Array(5000) });
  const err = await readJson(store, "big key", { maxBytes: 4096, attempts: 1 }).catch((e) => e);
  assert.ok(err instanceof SidecarError);
  assert.equal(err.reason, "too large");
  assert.equal(err.message, 'Cannot read "big key": 5000 bytes, more than the 4096 z3 reads of it');
  assert.equal(seen.gets, 0);
});

Deno.test("readJson() stops a body that runs past the cap (the object grew after the HEAD)", async () => {
  const { store, seen } = fakeStore({ k: new Uint8Array(1_000_000) }, 10);
  const err = await readJson(store, "k", { maxBytes: 4096, attempts: 1 }).catch((e) => e);
  assert.ok(err instanceof SidecarError);
  assert.equal(err.reason, "too large");
  assert.equal(err.size, 5000);
  assert.equal(seen.cancelled, 1);
});

Deno.test("readJson() refuses what is not JSON", async () => {
  const { store } = fakeStore({ k: text("{not json") });
  const err = await readJson(store, "k", { maxBytes: 100, attempts: 1 }).catch((e) => e);
  assert.ok(err instanceof SidecarError);
  assert.equal(err.reason, "not json");
  assert.equal(err.message, 'Cannot read "k": not JSON');
});

Deno.test("readJson() reads the version its HEAD sized: the GET is pinned to the HEAD's ETag", async () => {
  const { store, seen } = fakeStore({ k: text('{"a":1}\n') });
  assert.deepEqual(await readJson(store, "k", { maxBytes: 100, attempts: 1 }), { a: 1 });
  assert.deepEqual(seen.pinned, ["e"]);
});
