import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { etagNotMd5, etagPartCount, isMd5Hex, multipartEtag } from "../../../lib/transfer/etag.ts";

const md5 = (text: string) => new Uint8Array(createHash("md5").update(text).digest());

Deno.test("multipartEtag() is the MD5 of the part MD5s, a dash and the part count", () => {
  // The same sum written out: md5 of the 32 bytes of md5("a") and md5("b").
  const joined = new Uint8Array([...md5("a"), ...md5("b")]);
  const expected = createHash("md5").update(joined).digest("hex");
  assert.equal(multipartEtag([md5("a"), md5("b")]), `${expected}-2`);
  assert.equal(multipartEtag([md5("a")]).endsWith("-1"), true);
});

Deno.test("etagPartCount() reads a multipart ETag's count, and none from a single PUT's", () => {
  assert.equal(etagPartCount("0cc175b9c0f1b6a831c399e269772661-12"), 12);
  assert.equal(etagPartCount("0cc175b9c0f1b6a831c399e269772661"), undefined);
  assert.equal(etagPartCount(""), undefined);
});

Deno.test("isMd5Hex() takes 32 lower-case hex digits only", () => {
  assert.equal(isMd5Hex("0cc175b9c0f1b6a831c399e269772661"), true);
  assert.equal(isMd5Hex("0CC175B9C0F1B6A831C399E269772661"), false);
  assert.equal(isMd5Hex("0cc175b9c0f1b6a831c399e269772661-2"), false);
  assert.equal(isMd5Hex("0cc175b9"), false);
});

Deno.test("etagNotMd5() names SSE-KMS and SSE-C, not SSE-S3 or none", () => {
  assert.match(etagNotMd5({ serverSideEncryption: "aws:kms" }) ?? "", /SSE-KMS/);
  assert.match(etagNotMd5({ serverSideEncryption: "aws:kms:dsse" }) ?? "", /SSE-KMS/);
  assert.match(
    etagNotMd5({ serverSideEncryption: "AES256", customerAlgorithm: "AES256" }) ?? "",
    /SSE-C/,
  );
  assert.equal(etagNotMd5({ serverSideEncryption: "AES256" }), undefined);
  assert.equal(etagNotMd5({}), undefined);
});
