import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { multipartEtag } from "../../../lib/transfer/etag.ts";
import { HOLD_BACK, holdingBack, partsOf } from "../../../lib/transfer/verifying_stream.ts";

const MiB = 1024 * 1024;

/** A stream of `chunks`, then an error when `fail` is given. */
function source(chunks: Uint8Array[], fail?: Error): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      chunks.forEach((x) => c.enqueue(x));
      if (fail) c.error(fail);
      else c.close();
    },
  });
}

/** Reads `stream` until it ends or errors; returns the bytes seen and the error. */
async function drain(stream: ReadableStream<Uint8Array>) {
  let bytes = 0;
  try {
    for await (const c of stream) bytes += c.length;
    return { bytes, error: undefined };
  } catch (error) {
    return { bytes, error: error as Error };
  }
}

Deno.test("holdingBack() passes everything once the gate resolves", async () => {
  const chunks = [new Uint8Array(100_000), new Uint8Array(10), new Uint8Array(3)];
  assert.deepEqual(await drain(holdingBack(source(chunks), Promise.resolve())), {
    bytes: 100_013,
    error: undefined,
  });
});

Deno.test("holdingBack() never releases its last HOLD_BACK bytes when the gate rejects", async () => {
  const why = new Error("decompressor failed");
  const chunks = [new Uint8Array(200_000), new Uint8Array(7)];
  const got = await drain(holdingBack(source(chunks), Promise.reject(why)));
  assert.equal(got.error, why);
  assert.equal(got.bytes, 200_007 - HOLD_BACK);
});

Deno.test("holdingBack() never releases its last HOLD_BACK bytes when the source errors", async () => {
  const why = new Error("ETag mismatch");
  const got = await drain(
    holdingBack(source([new Uint8Array(HOLD_BACK + 5)], why), new Promise(() => {})),
  );
  assert.equal(got.error, why);
  assert.ok(got.bytes <= 5, "none of the held bytes");
});

Deno.test("holdingBack() holds a stream shorter than HOLD_BACK whole", async () => {
  const got = await drain(
    holdingBack(source([new Uint8Array(312)]), Promise.reject(new Error("x"))),
  );
  assert.equal(got.bytes, 0, "not even an END record gets out");
});

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const hex = (h: string) => new Uint8Array(h.match(/../g)!.map((x) => parseInt(x, 16)));

Deno.test("partsOf() places the recorded part MD5s by the schedule", () => {
  const parts = [md5(new Uint8Array([1])), md5(new Uint8Array([2])), md5(new Uint8Array([3]))];
  const etag = multipartEtag(parts.map(hex));
  const schedule = { base: 5 * MiB, doubleEvery: 0 };
  assert.deepEqual(partsOf({ etag, size: 11 * MiB, schedule, parts }, "k"), [
    { size: 5 * MiB, md5: parts[0] },
    { size: 5 * MiB, md5: parts[1] },
    { size: 1 * MiB, md5: parts[2] },
  ]);
  assert.throws(
    () => partsOf({ etag, size: 16 * MiB, schedule, parts }, "k"),
    /do not fit its 16777216 bytes/,
  );
  assert.throws(
    () =>
      partsOf(
        { etag: multipartEtag(parts.slice(1).map(hex)), size: 11 * MiB, schedule, parts },
        "k",
      ),
    /hash to ETag/,
  );
  const single = md5(new Uint8Array([9]));
  assert.deepEqual(partsOf({ etag: single, size: 1, parts: [single] }, "k"), [
    { size: 1, md5: single },
  ]);
  assert.throws(() => partsOf({ etag: single, size: 1, parts: [parts[0]] }, "k"), /single-part/);
});
