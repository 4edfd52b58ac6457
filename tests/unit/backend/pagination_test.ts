/**
 * The four listings of `S3Store` (objects, versions, multipart uploads, parts) page by page
 * through the SDK and lib/backend/http.ts, against a scripted HTTP/1.1 server on 127.0.0.1 that answers
 * each listing with XML pages: every page is followed with the cursor it gives, and a page that
 * says it is truncated yet gives no cursor, or one already followed, is an error (the bucket and
 * the endpoint are hostile input), never the end of the listing or an endless loop.
 *
 * @module
 */

import assert from "node:assert/strict";
import { S3Error } from "../../../lib/base/errors.ts";
import { S3Store } from "../../../lib/backend/s3.ts";
import { scriptedServer } from "../../bed/scripted_server.ts";

const encoder = new TextEncoder();

const xml = (body: string) => {
  const text = `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
  return `HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: ${
    encoder.encode(text).length
  }\r\n\r\n${text}`;
};

/** One page of a listing: the item number `n`, truncated or not, with or without a cursor. */
type PageOf = (n: number, truncated: boolean, cursor?: string) => string;

const objectsPage: PageOf = (n, truncated, cursor) =>
  xml(
    `<ListBucketResult><Name>b</Name><Prefix>p/</Prefix><IsTruncated>${truncated}</IsTruncated>` +
      (cursor ? `<NextContinuationToken>${cursor}</NextContinuationToken>` : "") +
      `<Contents><Key>p/${n}</Key><ETag>"e${n}"</ETag><Size>${n}</Size></Contents>` +
      `</ListBucketResult>`,
  );

const versionsPage: PageOf = (n, truncated, cursor) =>
  xml(
    `<ListVersionsResult><Name>b</Name><Prefix>p/k</Prefix><IsTruncated>${truncated}</IsTruncated>` +
      (cursor ? `<NextKeyMarker>p/k</NextKeyMarker>` : "") +
      (cursor ? `<NextVersionIdMarker>${cursor}</NextVersionIdMarker>` : "") +
      `<Version><Key>p/k</Key><VersionId>v${n}</VersionId><IsLatest>${n === 1}</IsLatest>` +
      `</Version></ListVersionsResult>`,
  );

const uploadsPage: PageOf = (n, truncated, cursor) =>
  xml(
    `<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>${truncated}</IsTruncated>` +
      (cursor ? `<NextKeyMarker>p/${cursor}</NextKeyMarker>` : "") +
      (cursor ? `<NextUploadIdMarker>${cursor}</NextUploadIdMarker>` : "") +
      `<Upload><Key>p/${n}</Key><UploadId>u${n}</UploadId></Upload>` +
      `</ListMultipartUploadsResult>`,
  );

const partsPage: PageOf = (n, truncated, cursor) =>
  xml(
    `<ListPartsResult><Bucket>b</Bucket><Key>p/k</Key><UploadId>u</UploadId>` +
      `<IsTruncated>${truncated}</IsTruncated>` +
      (cursor ? `<NextPartNumberMarker>${cursor}</NextPartNumberMarker>` : "") +
      `<Part><PartNumber>${n}</PartNumber><ETag>"e${n}"</ETag><Size>${n}</Size></Part>` +
      `</ListPartsResult>`,
  );

/** Each listing: its page, what a truncated page must give, and the keys (or ids) it yields. */
const listings = [
  {
    name: "S3Store.list()",
    page: objectsPage,
    cursor: "NextContinuationToken",
    // The cursor the n-th page gives, and how the request for the page after it shows it.
    sent: (cursor: string) => `continuation-token=${cursor}`,
    run: async (store: S3Store) => (await Array.fromAsync(store.list("p/"))).map((o) => o.key),
    names: (n: number) => `p/${n}`,
  },
  {
    name: "S3Store.versions()",
    page: versionsPage,
    cursor: "NextKeyMarker",
    sent: (cursor: string) => `version-id-marker=${cursor}`,
    run: async (store: S3Store) => (await store.versions("p/k")).map((v) => v.versionId),
    names: (n: number) => `v${n}`,
  },
  {
    name: "S3Store.listMultipartUploads()",
    page: uploadsPage,
    cursor: "NextKeyMarker",
    sent: (cursor: string) => `upload-id-marker=${cursor}`,
    run: async (store: S3Store) =>
      (await Array.fromAsync(store.listMultipartUploads("p/"))).map((u) => u.uploadId),
    names: (n: number) => `u${n}`,
  },
  {
    name: "S3Store.listParts()",
    page: partsPage,
    cursor: "NextPartNumberMarker",
    sent: (cursor: string) => `part-number-marker=${cursor}`,
    run: async (store: S3Store) => [...(await store.listParts("p/k", "u")).keys()].map(String),
    names: (n: number) => `${n}`,
  },
];

/** Runs `body` with a store whose endpoint answers with `script`. */
async function withServer(
  script: (head: string, n: number) => string,
  body: (store: S3Store) => Promise<void>,
) {
  const server = scriptedServer(script);
  const store = new S3Store({
    bucket: "b",
    endpoint: `http://127.0.0.1:${server.port}`,
    keyId: "k",
    secret: "s",
    stallMs: 5000,
  });
  try {
    await body(store);
  } finally {
    store.close();
    await server.close();
  }
}

for (const l of listings) {
  Deno.test(`${l.name} follows each page's cursor to the last page`, async () => {
    // Page n gives cursor n+1 (a part number for ListParts), the third is the last.
    const heads: string[] = [];
    await withServer(
      (head, n) => (heads.push(head), l.page(n, n < 3, n < 3 ? `${n + 1}` : undefined)),
      async (store) => {
        assert.deepEqual(await l.run(store), [1, 2, 3].map(l.names));
      },
    );
    assert.ok(heads[1].includes(l.sent("2")), heads[1]);
    assert.ok(heads[2].includes(l.sent("3")), heads[2]);
  });

  Deno.test(`${l.name} fails on a truncated page that gives no ${l.cursor}`, async () => {
    // Before the one pagination helper, this listing ended quietly after page 1.
    let requests = 0;
    await withServer(
      (_head, n) => (requests = n, n === 1 ? l.page(1, true) : l.page(n, false)),
      async (store) => {
        await assert.rejects(
          l.run(store),
          (err: Error) =>
            err instanceof S3Error && /truncated/.test(err.message) &&
            err.message.includes(`no ${l.cursor}`) && err.message.includes('"p/'),
        );
      },
    );
    assert.deepEqual(requests, 1, "no second page was asked for");
  });

  Deno.test(`${l.name} fails on a truncated page that gives the cursor it was asked with`, async () => {
    // Page 1 gives cursor 2, and so does every page after it. Before the helper this looped
    // until the server gave up: here the fifth page says it is the last.
    await withServer(
      (_head, n) => n < 5 ? l.page(n, true, "2") : l.page(n, false),
      async (store) => {
        await assert.rejects(
          l.run(store),
          (err: Error) =>
            err instanceof S3Error && /again/.test(err.message) && err.message.includes('"p/'),
        );
      },
    );
  });
}
