/**
 * `parallelDownload` through the real `S3Store` against a scripted HTTP/1.1 server on 127.0.0.1
 * that answers ranged GETs from a fixed body, failing or corrupting them on cue: one retry policy
 * per held part, so a failed GET and a part that does not match its MD5 draw on the same attempts.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { IntegrityError } from "../../../lib/base/errors.ts";
import { S3Store } from "../../../lib/backend/s3.ts";
import { parallelDownload } from "../../../lib/transfer/download.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const body = "0123456789abcdefghij"; // 20 bytes: one part, two ranges of 10
const md5 = createHash("md5").update(body).digest("hex");

/** What the server does with a GET: answer its range, answer it corrupted, or fail with 500. */
type Answer = "ok" | "corrupt" | "fail";

/** Serves `body` by ranges; `answer(range start, n-th GET of that range)` picks what to do. */
function server(answer: (start: number, n: number) => Answer) {
  const seen = new Map<number, number>();
  const s = scriptedServer((head) => {
    const [, from, to] = /range: bytes=(\d+)-(\d+)/i.exec(head)!;
    const start = Number(from);
    const n = (seen.get(start) ?? 0) + 1;
    seen.set(start, n);
    const what = answer(start, n);
    if (what === "fail") return "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
    let bytes = body.slice(start, Number(to) + 1);
    if (what === "corrupt") bytes = [...bytes].reverse().join("");
    return `HTTP/1.1 206 Partial Content\r\nContent-Length: ${bytes.length}\r\nETag: "e"\r\n\r\n${bytes}`;
  });
  return { ...s, gets: (start: number) => seen.get(start) ?? 0 };
}

/** Downloads `body` as one held part of two ranges with `attempts`, through `s`. */
async function download(s: ReturnType<typeof server>, attempts: number) {
  const store = new S3Store({
    bucket: "b",
    endpoint: `http://127.0.0.1:${s.port}`,
    keyId: "k",
    secret: "s",
    stallMs: 5000,
  });
  const refetched: number[] = [];
  try {
    const stream = parallelDownload(store, "k", {
      etag: "e",
      size: body.length,
      rangeSize: 10,
      concurrency: 4,
      attempts,
      parts: [{ size: body.length, md5 }],
      onRefetch: (_part, attempt) => refetched.push(attempt),
    });
    return { text: await new Response(stream).text(), refetched };
  } finally {
    store.close();
    await s.close();
  }
}

Deno.test("parallelDownload() asks for no range more than `attempts` times, failed GETs and bad MD5s together", async () => {
  // Range 0 fails, then comes back corrupted, and so on. Before one policy per part, each of
  // the three rounds of refetching retried its GETs three times: six GETs of range 0.
  const s = server((start, n) => start > 0 ? "ok" : n % 2 === 1 ? "fail" : "corrupt");
  await assert.rejects(download(s, 3), (err: Error) => /HTTP 500/.test(err.message));
  assert.deepEqual([s.gets(0), s.gets(10)], [3, 2], "range 10 again only after the mismatch");
});

Deno.test("parallelDownload() fetches a held part again when it does not match, keeping a good range across a failed sibling", async () => {
  // Range 0: fails once, then corrupted once, then right. Range 10 is right every time.
  const s = server((start, n) => start > 0 ? "ok" : n === 1 ? "fail" : n === 2 ? "corrupt" : "ok");
  const { text, refetched } = await download(s, 5);
  assert.equal(text, body);
  assert.deepEqual(refetched, [2], "the second attempt did not match");
  assert.deepEqual([s.gets(0), s.gets(10)], [3, 2]);
});

Deno.test("parallelDownload() fails a part that never matches after `attempts` downloads", async () => {
  const s = server(() => "corrupt");
  await assert.rejects(
    download(s, 3),
    (err: Error) =>
      err instanceof IntegrityError &&
      new RegExp(
        `part 1 hashes to MD5 [0-9a-f]{32} on each of 3 downloads, its check record says ${md5}`,
      )
        .test(err.message),
  );
  assert.deepEqual([s.gets(0), s.gets(10)], [3, 3]);
});
