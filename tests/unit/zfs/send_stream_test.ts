import assert from "node:assert/strict";
import { IntegrityError } from "../../../lib/base/errors.ts";
import {
  checkedSendStream,
  openSendStream,
  parseBegin,
  SEND_FEATURES,
  type SendStreamBegin,
  SendStreamCutError,
  type SendStreamExpectation,
} from "../../../lib/zfs/send_stream.ts";

// Fixtures are built from the format definitions of OpenZFS tag zfs-2.4.4: the 312-byte
// `dmu_replay_record_t` and its `drr_begin`, `drr_object`, `drr_free`, `drr_write` and `drr_end`
// members (include/sys/zfs_ioctl.h), the stream checksum as `dump_record()` keeps it
// (module/zfs/dmu_send.c), and Fletcher-4 as `fletcher_4_scalar_native` sums
// (module/zcommon/zfs_fletcher.c), here in BigInt so that it does not lean on lib/zfs/fletcher4.ts.

const RECORD = 312;
const CHECKSUM_AT = 280;
const MAGIC = 0x2F5bacbacn;
const TOGUID = 18_446_744_073_709_551_557n; // above 2^53: must come out exact
const FROMGUID = 9_007_199_254_740_993n;
const MASK = (1n << 64n) - 1n;

interface FixtureOptions {
  littleEndian?: boolean;
  /** OpenZFS 2.x fills each record's trailing checksum; zfs-fuse 0.7 leaves it zero. */
  recordChecksums?: boolean;
  /** `DMU_COMPOUNDSTREAM` (2) instead of `DMU_SUBSTREAM` (1). */
  compound?: boolean;
  features?: bigint;
  /** Bytes of nvlist after BEGIN (`drr_payloadlen`). */
  beginPayload?: number;
  fromguid?: bigint;
}

/** A Fletcher-4 in BigInt over whole regions, as `fletcher_4_incremental_native` is called. */
class Sum {
  words = [0n, 0n, 0n, 0n];
  constructor(readonly littleEndian: boolean) {}
  add(bytes: Uint8Array): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let [a, b, c, d] = this.words;
    for (let i = 0; i + 4 <= bytes.length; i += 4) {
      a = (a + BigInt(view.getUint32(i, this.littleEndian))) & MASK;
      b = (b + a) & MASK;
      c = (c + b) & MASK;
      d = (d + c) & MASK;
    }
    this.words = [a, b, c, d];
  }
  write(view: DataView, offset: number): void {
    this.words.forEach((w, i) => view.setBigUint64(offset + 8 * i, w, this.littleEndian));
  }
}

/**
 * A small stream: BEGIN (+ payload), OBJECT with a 5-byte bonus (8 bytes of payload), FREE,
 * WRITE of 16 bytes, END.
 */
function fixture(options: FixtureOptions = {}): Uint8Array {
  const le = options.littleEndian ?? true;
  const sum = new Sum(le);
  const parts: Uint8Array[] = [];
  const record = (type: number, fill: (view: DataView) => void, payload?: Uint8Array) => {
    const bytes = new Uint8Array(RECORD);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, type, le);
    fill(view);
    if (type === 0) {
      sum.add(bytes);
    } else {
      sum.add(bytes.subarray(0, CHECKSUM_AT));
      if (options.recordChecksums ?? true) sum.write(view, CHECKSUM_AT);
      sum.add(bytes.subarray(CHECKSUM_AT));
    }
    parts.push(bytes);
    if (payload) {
      sum.add(payload);
      parts.push(payload);
    }
  };
  const beginPayload = options.beginPayload
    ? new Uint8Array(options.beginPayload).fill(0x5a)
    : undefined;
  record(0, (v) => {
    v.setUint32(4, options.beginPayload ?? 0, le); // drr_payloadlen
    v.setBigUint64(8, MAGIC, le); // drr_magic
    v.setBigUint64(16, ((options.features ?? 0n) << 2n) | (options.compound ? 2n : 1n), le);
    v.setBigUint64(24, 1_700_000_000n, le); // drr_creation_time
    v.setUint32(32, 2, le); // drr_type: DMU_OST_ZFS
    v.setUint32(36, 4, le); // drr_flags: DRR_FLAG_FREERECORDS
    v.setBigUint64(40, TOGUID, le);
    v.setBigUint64(48, options.fromguid ?? 0n, le);
    new Uint8Array(v.buffer).set(new TextEncoder().encode("pool/my data@s1"), 56); // drr_toname
  }, beginPayload);
  record(1, (v) => { // DRR_OBJECT, object 1 with a 5-byte bonus buffer
    v.setBigUint64(8, 1n, le);
    v.setUint32(28, 5, le); // drr_bonuslen
  }, new Uint8Array([1, 2, 3, 4, 5, 0, 0, 0]));
  record(4, (v) => { // DRR_FREE
    v.setBigUint64(8, 1n, le);
    v.setBigUint64(24, MASK, le); // drr_length: to the end
  });
  record(3, (v) => { // DRR_WRITE, 16 bytes
    v.setBigUint64(8, 1n, le);
    v.setBigUint64(32, 16n, le); // drr_logical_size
  }, new Uint8Array(16).map((_, i) => i * 7));
  const before = new Sum(le);
  before.words = [...sum.words];
  record(5, (v) => { // DRR_END
    before.write(v, 8); // drr_checksum: the sum of everything before END
    v.setBigUint64(40, TOGUID, le);
  });
  return concat(parts);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) out.set(part, (at += part.length) - part.length);
  return out;
}

/** Feeds `bytes` in `chunk`-byte pieces through the checker; returns what came out and any error. */
async function check(
  bytes: Uint8Array,
  expect: SendStreamExpectation = {},
  chunk = 4096,
): Promise<{ out: Uint8Array; error?: unknown }> {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += chunk) pieces.push(bytes.slice(at, at + chunk));
  const received: Uint8Array[] = [];
  try {
    for await (const part of ReadableStream.from(pieces).pipeThrough(checkedSendStream(expect))) {
      received.push(part);
    }
    return { out: concat(received) };
  } catch (error) {
    return { out: concat(received), error };
  }
}

function assertRefused(error: unknown, detail: string | RegExp): void {
  assert.ok(error instanceof IntegrityError, `expected an IntegrityError, got ${error}`);
  assert.equal(error.exitCode, 6);
  if (typeof detail === "string") {
    assert.equal(error.message, `Cannot accept "obj" as a zfs send stream: ${detail}`);
  } else {
    assert.match(error.message, detail);
  }
}

const BEGIN_FIELDS: Partial<SendStreamBegin> = {
  toguid: TOGUID.toString(),
  fromguid: "0",
  toname: "pool/my data@s1",
  creationTime: 1_700_000_000,
  objsetType: 2,
  flags: 4,
  compound: false,
  payloadLength: 0,
};

Deno.test("parseBegin() reads drr_begin in either byte order, GUIDs exact as decimal", () => {
  const features = SEND_FEATURES.LZ4 | SEND_FEATURES.EMBED_DATA | SEND_FEATURES.LARGE_BLOCKS;
  for (const littleEndian of [true, false]) {
    const begin = parseBegin(fixture({ littleEndian, features }));
    assert.deepEqual(begin, { ...BEGIN_FIELDS, features, byteswapped: !littleEndian });
  }
  const incremental = parseBegin(fixture({ fromguid: FROMGUID }));
  assert.equal(incremental.fromguid, "9007199254740993");
  assert.equal(parseBegin(fixture({ compound: true })).compound, true);
});

Deno.test("parseBegin() refuses a short record, a wrong magic and a first record not BEGIN", () => {
  const stream = fixture();
  const message = (why: string) => `Cannot read "x" as a zfs send stream: ${why}`;
  assert.throws(
    () => parseBegin(stream.subarray(0, 311), "x"),
    new IntegrityError(message("it is 311 bytes, shorter than a 312-byte BEGIN record")),
  );
  const badMagic = stream.slice();
  badMagic[8] ^= 1;
  assert.throws(
    () => parseBegin(badMagic, "x"),
    new IntegrityError(message("its first record has not the send stream magic 0x2f5bacbac")),
  );
  const notBegin = stream.slice();
  notBegin[0] = 1;
  assert.throws(
    () => parseBegin(notBegin, "x"),
    new IntegrityError(message("its first record is of type 1, not BEGIN")),
  );
  const badHeaderType = stream.slice();
  badHeaderType[16] |= 3;
  assert.throws(
    () => parseBegin(badHeaderType, "x"),
    new IntegrityError(message("its BEGIN record has header type 3, neither 1 nor 2")),
  );
});

Deno.test("checkedSendStream() passes a good stream through unchanged, in any chunking", async () => {
  for (const littleEndian of [true, false]) {
    for (const recordChecksums of [true, false]) {
      const stream = fixture({ littleEndian, recordChecksums, fromguid: FROMGUID });
      for (const chunk of [1, 3, 311, 312, 313, 1000, stream.length]) {
        let begin: SendStreamBegin | undefined;
        let summary: { records: number; bytes: number } | undefined;
        const { out, error } = await check(stream, {
          name: "obj",
          toguid: TOGUID.toString(),
          fromguid: FROMGUID.toString(),
          onBegin: (b) => begin = b,
          onEnd: (s) => summary = s,
        }, chunk);
        assert.equal(error, undefined, `${littleEndian} ${recordChecksums} ${chunk}: ${error}`);
        assert.deepEqual(out, stream);
        assert.equal(begin?.byteswapped, !littleEndian);
        assert.deepEqual(summary, { records: 5, bytes: stream.length });
      }
    }
  }
});

Deno.test("checkedSendStream() refuses before passing anything: compound, payload, GUIDs", async () => {
  const cases: [Uint8Array, SendStreamExpectation, string][] = [
    [
      fixture({ compound: true, beginPayload: 64 }),
      {},
      "it is a replication or property stream (zfs send -R or -p), " +
      "which carries properties z3 does not receive",
    ],
    [
      fixture({ beginPayload: 64 }),
      {},
      "its BEGIN record carries a 64-byte payload, which only a raw stream (zfs send -w) of z3 has",
    ],
    [
      fixture(),
      { toguid: "1" },
      `it recreates the snapshot with GUID ${TOGUID}, not the expected 1`,
    ],
    [
      fixture(),
      { fromguid: "5" },
      "it is a full stream, not an incremental from GUID 5",
    ],
    [
      fixture({ fromguid: FROMGUID }),
      { fromguid: "0" },
      `it is an incremental from GUID ${FROMGUID}, not from nothing (a full)`,
    ],
    [
      fixture({ fromguid: FROMGUID }),
      { fromguid: "5" },
      `it is an incremental from GUID ${FROMGUID}, not from 5`,
    ],
  ];
  for (const [stream, expect, why] of cases) {
    for (const chunk of [1, 500, stream.length]) {
      const { out, error } = await check(stream, { name: "obj", ...expect }, chunk);
      assertRefused(error, why);
      assert.equal(out.length, 0, why);
    }
  }
  const parsed = await check(new TextEncoder().encode("not a stream at all".repeat(20)), {
    name: "obj",
  });
  assertRefused(parsed.error, /^Cannot read "obj" as a zfs send stream: its first record has not/);
  assert.equal(parsed.out.length, 0);
});

Deno.test("checkedSendStream() accepts a raw stream's BEGIN payload (crypt_keydata)", async () => {
  const stream = fixture({ beginPayload: 64, features: SEND_FEATURES.RAW });
  const { out, error } = await check(stream, { name: "obj" }, 100);
  assert.equal(error, undefined);
  assert.deepEqual(out, stream);
});

Deno.test("checkedSendStream() refuses a stream cut anywhere, never passing its END", async () => {
  const stream = fixture();
  const endAt = stream.length - RECORD;
  for (let length = 0; length < stream.length; length++) {
    const { out, error } = await check(stream.subarray(0, length), { name: "obj" }, 97);
    assertRefused(error, /^Cannot accept "obj" as a zfs send stream: it ends after \d+ bytes/);
    assert.ok(out.length <= Math.min(length, endAt), `cut at ${length}: ${out.length} passed`);
    assert.deepEqual(out, stream.subarray(0, out.length));
  }
  const empty = await check(new Uint8Array(0), { name: "obj" });
  assertRefused(empty.error, "it ends after 0 bytes, before its BEGIN record is whole");
  const noEnd = await check(stream.subarray(0, endAt), { name: "obj" });
  assertRefused(
    noEnd.error,
    `it ends after ${endAt} bytes and 4 records, without an END record`,
  );
  // A cut is told apart from a refusal: its cause may lie upstream.
  assert.ok(empty.error instanceof SendStreamCutError);
  assert.ok(noEnd.error instanceof SendStreamCutError);
  const flipped = stream.slice();
  flipped[8] ^= 1;
  const refused = await check(flipped, { name: "obj" });
  assert.ok(!(refused.error instanceof SendStreamCutError));
});

Deno.test("checkedSendStream() refuses bytes after the END record", async () => {
  const stream = fixture();
  for (const extra of [1, 312, 4096]) {
    for (const chunk of [1, 312, 4096]) {
      const { out, error } = await check(concat([stream, new Uint8Array(extra)]), {
        name: "obj",
      }, chunk);
      assertRefused(error, "bytes follow its END record");
      assert.ok(out.length <= stream.length - RECORD);
    }
  }
});

Deno.test("checkedSendStream() refuses any one flipped byte, old and new streams alike", async () => {
  for (const recordChecksums of [true, false]) {
    for (const littleEndian of [true, false]) {
      const stream = fixture({ recordChecksums, littleEndian, fromguid: FROMGUID });
      for (let at = 0; at < stream.length; at++) {
        const flipped = stream.slice();
        flipped[at] ^= 0x10;
        const { error } = await check(flipped, { name: "obj", toguid: TOGUID.toString() }, 256);
        assert.ok(
          error instanceof IntegrityError,
          `byte ${at} (${recordChecksums}, ${littleEndian}) passed`,
        );
      }
    }
  }
});

Deno.test("checkedSendStream() names the checksum that failed", async () => {
  const payloadByte = RECORD + RECORD + 2; // in the OBJECT record's bonus payload
  const old = fixture({ recordChecksums: false });
  old[payloadByte] ^= 1;
  assertRefused(
    (await check(old, { name: "obj" })).error,
    "its END record's checksum does not match the stream's Fletcher-4",
  );
  const current = fixture();
  current[payloadByte] ^= 1;
  assertRefused(
    (await check(current, { name: "obj" })).error,
    "record 3 (type 4) fails its checksum",
  );
});

Deno.test("checkedSendStream() refuses an unknown record type and a second BEGIN", async () => {
  for (const type of [0, 11, 0xffff]) {
    const stream = fixture({ recordChecksums: false });
    new DataView(stream.buffer).setUint32(2 * RECORD + 8, type, true); // the FREE record
    assertRefused(
      (await check(stream, { name: "obj" })).error,
      `record 3 has type ${type}, which cannot follow BEGIN`,
    );
  }
});

Deno.test("openSendStream() resolves after BEGIN passed, then yields the whole stream", async () => {
  const stream = fixture({ fromguid: FROMGUID });
  const pieces = (chunk: number) => {
    const out: Uint8Array[] = [];
    for (let at = 0; at < stream.length; at += chunk) out.push(stream.slice(at, at + chunk));
    return out;
  };
  for (const chunk of [1, 100, 4096]) {
    const opened = await openSendStream(ReadableStream.from(pieces(chunk)), {
      toguid: TOGUID.toString(),
    });
    assert.equal(opened.begin.fromguid, FROMGUID.toString());
    const parts: Uint8Array[] = [];
    for await (const part of opened.stream) parts.push(part);
    assert.deepEqual(concat(parts), stream);
  }
  let cancelled: unknown;
  const source = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(stream.slice(0, 400)),
    cancel: (reason) => void (cancelled = reason),
  });
  await assert.rejects(
    openSendStream(source, { name: "obj", toguid: "1" }),
    new IntegrityError(
      `Cannot accept "obj" as a zfs send stream: it recreates the snapshot with GUID ${TOGUID}, ` +
        `not the expected 1`,
    ),
  );
  assert.ok(cancelled instanceof IntegrityError);
});
