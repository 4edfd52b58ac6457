/**
 * Reads a ZFS send stream as it passes: its BEGIN record (which snapshot, from which, what kind of
 * stream) and its END record (the Fletcher-4 checksum of everything before it), so that a stream
 * which is not the one expected, or is cut short, never completes a `zfs receive`.
 *
 * The format, as read in OpenZFS tag zfs-2.4.4 (commit 71a9f9578616a90c3c14bb59629fb4d31bfd68d1):
 * - include/sys/zfs_ioctl.h: `dmu_replay_record_t` is a fixed 312-byte record (a 4-byte type, a
 *   4-byte `drr_payloadlen`, a 304-byte union), some types followed by a payload; the union's
 *   last 32 bytes (`drr_u.drr_checksum.drr_checksum`) hold, in every record but BEGIN, the
 *   Fletcher-4 of the stream up to that field (zero in streams older than that field).
 * - module/zfs/dmu_send.c `dump_record()` and `dmu_send_impl()`: the stream checksum runs over
 *   every byte of every record and payload; END's `drr_checksum` is its value before END.
 * - module/zfs/dmu_recv.c `dmu_recv_begin()`, `receive_read_payload_and_next_header()`,
 *   `receive_read_record()`: a stream whose BEGIN magic reads byte-swapped is summed and read
 *   byte-swapped; the payload sizes per record type; a non-zero record checksum must match.
 * - lib/libzfs/libzfs_sendrecv.c `zfs_send_cb_impl()`, `zfs_send_one_cb_impl()` and
 *   `send_prelim_records()`: `zfs send -R`, `-p`,
 *   `-b` and holds all start with a DMU_COMPOUNDSTREAM BEGIN whose payload is an nvlist of
 *   properties; a plain stream's BEGIN payload (module/zfs/dmu_send.c) holds only resume,
 *   redaction or, for a raw send (`-w`), `crypt_keydata`.
 *
 * Streams of zfs-fuse 0.7 have the same record layout without per-record checksums (the last
 * 32 bytes of its records are zero, as seen from zfs-fuse 0.7.0-25); they parse alike.
 *
 * Memory: one 312-byte record header and the checksum state; payloads pass through unbuffered.
 *
 * @module
 */

import { IntegrityError } from "../base/errors.ts";
import { Fletcher4 } from "./fletcher4.ts";

/** `sizeof (dmu_replay_record_t)`, include/sys/zfs_ioctl.h (zfs-2.4.4). */
const RECORD_BYTES = 312;
/** `offsetof(dmu_replay_record_t, drr_u.drr_checksum.drr_checksum)`: 8 + 34 × 8. */
const RECORD_CHECKSUM_AT = 280;
/** `DMU_BACKUP_MAGIC`, include/sys/zfs_ioctl.h (zfs-2.4.4). */
const DMU_BACKUP_MAGIC = 0x2F5bacbacn;
/** `drr_type` values: the enum in `dmu_replay_record_t`, include/sys/zfs_ioctl.h (zfs-2.4.4). */
const DRR = {
  BEGIN: 0,
  OBJECT: 1,
  FREEOBJECTS: 2,
  WRITE: 3,
  FREE: 4,
  END: 5,
  WRITE_BYREF: 6,
  SPILL: 7,
  WRITE_EMBEDDED: 8,
  OBJECT_RANGE: 9,
  REDACT: 10,
} as const;
const DRR_NUMTYPES = 11;
/** `drr_headertype_t` (low two bits of `drr_versioninfo`), include/sys/zfs_ioctl.h (zfs-2.4.4). */
const DMU_SUBSTREAM = 1;
const DMU_COMPOUNDSTREAM = 2;

/**
 * Send stream feature flags (`drr_versioninfo` bits 2..57): `DMU_BACKUP_FEATURE_*`,
 * include/sys/zfs_ioctl.h (zfs-2.4.4).
 */
export const SEND_FEATURES = {
  DEDUP: 1n << 0n,
  DEDUPPROPS: 1n << 1n,
  SA_SPILL: 1n << 2n,
  EMBED_DATA: 1n << 16n,
  LZ4: 1n << 17n,
  LARGE_BLOCKS: 1n << 19n,
  RESUMING: 1n << 20n,
  REDACTED: 1n << 21n,
  COMPRESSED: 1n << 22n,
  LARGE_DNODE: 1n << 23n,
  RAW: 1n << 24n,
  ZSTD: 1n << 25n,
  HOLDS: 1n << 26n,
  SWITCH_TO_LARGE_BLOCKS: 1n << 27n,
  LONGNAME: 1n << 28n,
  LARGE_MICROZAP: 1n << 29n,
} as const;

/** What a stream's BEGIN record says (`struct drr_begin`). */
export interface SendStreamBegin {
  /** GUID of the snapshot the stream recreates, in decimal. */
  toguid: string;
  /** GUID of the incremental source, in decimal; `"0"` for a full stream. */
  fromguid: string;
  /** The sender's `pool/fs@snap` (informative: `zfs receive` names the target itself). */
  toname: string;
  /** The snapshot's creation time, seconds since the epoch. */
  creationTime: number;
  /** `dmu_objset_type_t` (2 = filesystem, 3 = volume). */
  objsetType: number;
  /** `drr_flags` (`DRR_FLAG_CLONE` 1, `DRR_FLAG_CI_DATA` 2, `DRR_FLAG_FREERECORDS` 4, …). */
  flags: number;
  /** Feature flags; test with {@linkcode SEND_FEATURES}. */
  features: bigint;
  /** A `zfs send -R`/`-p`/`-b` stream: a DMU_COMPOUNDSTREAM header before the snapshots' own. */
  compound: boolean;
  /** The stream's words are big-endian (OpenZFS's "byteswap" when read on x86). */
  byteswapped: boolean;
  /** `drr_payloadlen`: bytes of nvlist after the BEGIN record. */
  payloadLength: number;
}

/**
 * A stream that ended before its END record: cut short in the bucket, or by a failure upstream
 * (a download or a decompressor that stopped), which is then the cause to report.
 */
export class SendStreamCutError extends IntegrityError {}

/** What {@linkcode checkedSendStream} requires of a stream. */
export interface SendStreamExpectation {
  /** Names the stream in error messages (an object key, a snapshot). @default {"send stream"} */
  name?: string;
  /** The snapshot GUID the BEGIN record must carry, in decimal; unchecked when absent. */
  toguid?: string;
  /** The source GUID the BEGIN record must carry, in decimal (`"0"`: a full); unchecked when absent. */
  fromguid?: string;
  /** Called with the BEGIN record once it has passed the checks. */
  onBegin?: (begin: SendStreamBegin) => void;
  /** Called when the whole stream has checked out. */
  onEnd?: (summary: { records: number; bytes: number }) => void;
}

/**
 * Reads the BEGIN record at the start of `bytes` (at least its first 312 bytes).
 *
 * @throws {IntegrityError} when `bytes` is short, is not a BEGIN record or has not the magic
 */
export function parseBegin(bytes: Uint8Array, name = "send stream"): SendStreamBegin {
  const fail = (why: string) =>
    new IntegrityError(`Cannot read "${name}" as a zfs send stream: ${why}`);
  if (bytes.length < RECORD_BYTES) {
    throw fail(`it is ${bytes.length} bytes, shorter than a ${RECORD_BYTES}-byte BEGIN record`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, RECORD_BYTES);
  let le: boolean;
  if (view.getBigUint64(8, true) === DMU_BACKUP_MAGIC) le = true;
  else if (view.getBigUint64(8, false) === DMU_BACKUP_MAGIC) le = false;
  else throw fail(`its first record has not the send stream magic 0x2f5bacbac`);
  if (view.getUint32(0, le) !== DRR.BEGIN) {
    throw fail(`its first record is of type ${view.getUint32(0, le)}, not BEGIN`);
  }
  const versioninfo = view.getBigUint64(16, le);
  const headerType = Number(versioninfo & 3n);
  if (headerType !== DMU_SUBSTREAM && headerType !== DMU_COMPOUNDSTREAM) {
    throw fail(`its BEGIN record has header type ${headerType}, neither 1 nor 2`);
  }
  const nameBytes = bytes.subarray(56, RECORD_BYTES);
  const nul = nameBytes.indexOf(0);
  return {
    toguid: view.getBigUint64(40, le).toString(),
    fromguid: view.getBigUint64(48, le).toString(),
    toname: new TextDecoder().decode(nul < 0 ? nameBytes : nameBytes.subarray(0, nul)),
    creationTime: Number(view.getBigUint64(24, le)),
    objsetType: view.getUint32(32, le),
    flags: view.getUint32(36, le),
    features: (versioninfo >> 2n) & ((1n << 56n) - 1n),
    compound: headerType === DMU_COMPOUNDSTREAM,
    byteswapped: !le,
    payloadLength: view.getUint32(4, le),
  };
}

/**
 * A pass-through that checks a send stream on its way to `zfs receive` (or to nowhere, for a
 * verify). Nothing passes until the BEGIN record has been checked: it must carry the expected
 * GUIDs, must not be compound (`zfs send -R`/`-p`) and may carry a payload only when raw (`-w`).
 * Each record header passes once whole and checked; the END record is held back until the input
 * ends right after it and its checksum matched, so a stream that is cut, extended or altered
 * never hands `zfs receive` an END record.
 *
 * @throws {IntegrityError} (exit 6) through the stream, naming what did not hold
 */
export function checkedSendStream(
  expect: SendStreamExpectation = {},
): TransformStream<Uint8Array, Uint8Array> {
  const reader = new SendStreamReader(expect);
  return new TransformStream({
    transform(chunk, controller) {
      for (const part of reader.push(chunk)) controller.enqueue(part);
    },
    flush(controller) {
      for (const part of reader.finish()) controller.enqueue(part);
    },
  });
}

/**
 * `source` through {@linkcode checkedSendStream}, resolved once its BEGIN record has passed the
 * checks: the caller can then start `zfs receive`, so that a refused stream never starts one.
 *
 * @throws {IntegrityError} when the BEGIN record is refused (the source is cancelled)
 */
export async function openSendStream(
  source: ReadableStream<Uint8Array>,
  expect: SendStreamExpectation = {},
): Promise<{ begin: SendStreamBegin; stream: ReadableStream<Uint8Array> }> {
  let begin: SendStreamBegin | undefined;
  const reader = source.pipeThrough(checkedSendStream({
    ...expect,
    onBegin: (b) => {
      begin = b;
      expect.onBegin?.(b);
    },
  })).getReader();
  // The first bytes out come only after the BEGIN record passed, or the read rejects.
  const first = await reader.read();
  if (begin === undefined) throw new Error("bug: a send stream passed bytes before its BEGIN");
  let pending: Uint8Array | undefined = first.value;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending !== undefined) {
        controller.enqueue(pending);
        pending = undefined;
        return;
      }
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return { begin, stream };
}

/** The record walker behind {@linkcode checkedSendStream}: bytes in, bytes cleared to pass out. */
class SendStreamReader {
  #expect: SendStreamExpectation;
  #name: string;
  #header = new Uint8Array(RECORD_BYTES);
  #headerView = new DataView(this.#header.buffer);
  #headerFill = 0;
  #payloadLeft = 0;
  #begin: SendStreamBegin | undefined;
  #le = true;
  #sum: Fletcher4 | undefined;
  #heldEnd: Uint8Array | undefined;
  #records = 0;
  #bytes = 0;

  constructor(expect: SendStreamExpectation) {
    this.#expect = expect;
    this.#name = expect.name ?? "send stream";
  }

  /** Reads `chunk`; returns the parts of the stream now cleared to pass on, in order. */
  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let pos = 0;
    let emitFrom = 0;
    while (pos < chunk.length) {
      if (this.#heldEnd) throw this.#fail(`bytes follow its END record`);
      if (this.#payloadLeft > 0) {
        const n = Math.min(this.#payloadLeft, chunk.length - pos);
        this.#sum!.update(chunk.subarray(pos, pos + n));
        pos += n;
        this.#payloadLeft -= n;
        if (this.#payloadLeft === 0) this.#sum!.endRegion();
        continue;
      }
      const n = Math.min(RECORD_BYTES - this.#headerFill, chunk.length - pos);
      this.#header.set(chunk.subarray(pos, pos + n), this.#headerFill);
      this.#headerFill += n;
      pos += n;
      if (this.#headerFill < RECORD_BYTES) break;
      this.#headerFill = 0;
      const startInChunk = pos - RECORD_BYTES;
      if (this.#readHeader()) {
        out.push(chunk.subarray(emitFrom, Math.max(0, startInChunk)));
        this.#heldEnd = this.#header.slice();
        emitFrom = pos;
      } else if (startInChunk < 0) {
        // The header began in an earlier chunk, which held its first bytes back.
        out.push(this.#header.slice(0, -startInChunk));
      }
    }
    out.push(chunk.subarray(emitFrom, Math.max(emitFrom, pos - this.#headerFill)));
    this.#bytes += chunk.length;
    return out.filter((part) => part.length > 0);
  }

  /** Ends the stream: returns the held END record, or throws when the stream is incomplete. */
  finish(): Uint8Array[] {
    if (this.#heldEnd === undefined) {
      const where = this.#begin === undefined
        ? `it ends after ${this.#bytes} bytes, before its BEGIN record is whole`
        : `it ends after ${this.#bytes} bytes and ${this.#records} records, without an END record`;
      throw new SendStreamCutError(`Cannot accept "${this.#name}" as a zfs send stream: ${where}`);
    }
    this.#expect.onEnd?.({ records: this.#records, bytes: this.#bytes });
    return [this.#heldEnd];
  }

  /** Checks the whole header in `#header`, adds it to the sum; true when it is the END record. */
  #readHeader(): boolean {
    this.#records++;
    if (this.#begin === undefined) {
      this.#readBegin();
      return false;
    }
    const view = this.#headerView;
    const type = view.getUint32(0, this.#le);
    if (type === DRR.BEGIN || type >= DRR_NUMTYPES) {
      throw this.#fail(`record ${this.#records} has type ${type}, which cannot follow BEGIN`);
    }
    const sum = this.#sum!;
    if (type === DRR.END && !sum.equals(view, 8, this.#le)) {
      throw this.#fail(`its END record's checksum does not match the stream's Fletcher-4`);
    }
    sum.update(this.#header.subarray(0, RECORD_CHECKSUM_AT));
    if (
      !isZero(this.#header, RECORD_CHECKSUM_AT) && !sum.equals(view, RECORD_CHECKSUM_AT, this.#le)
    ) {
      throw this.#fail(`record ${this.#records} (type ${type}) fails its checksum`);
    }
    sum.update(this.#header.subarray(RECORD_CHECKSUM_AT));
    if (type === DRR.END) {
      // No later checksum covers END: OpenZFS zeroes it all but drr_checksum and drr_toguid.
      if (view.getUint32(4, this.#le) !== 0 || !isZero(this.#header, 48, RECORD_CHECKSUM_AT)) {
        throw this.#fail(`its END record has bytes set outside drr_checksum and drr_toguid`);
      }
      const toguid = view.getBigUint64(40, this.#le).toString();
      if (toguid !== "0" && toguid !== this.#begin.toguid) {
        throw this.#fail(`its END record names GUID ${toguid}, its BEGIN ${this.#begin.toguid}`);
      }
      return true;
    }
    this.#payloadLeft = payloadBytes(type, view, this.#le);
    return false;
  }

  /** Checks the BEGIN record against the expectation and starts the sum with it. */
  #readBegin(): void {
    const begin = parseBegin(this.#header, this.#name);
    const expect = this.#expect;
    if (begin.compound) {
      throw this.#fail(
        `it is a replication or property stream (zfs send -R or -p), ` +
          `which carries properties z3 does not receive`,
      );
    }
    if (begin.payloadLength > 0 && (begin.features & SEND_FEATURES.RAW) === 0n) {
      throw this.#fail(
        `its BEGIN record carries a ${begin.payloadLength}-byte payload, ` +
          `which only a raw stream (zfs send -w) of z3 has`,
      );
    }
    if (expect.toguid !== undefined && begin.toguid !== expect.toguid) {
      throw this.#fail(
        `it recreates the snapshot with GUID ${begin.toguid}, ` +
          `not the expected ${expect.toguid}`,
      );
    }
    if (expect.fromguid !== undefined && begin.fromguid !== expect.fromguid) {
      throw this.#fail(
        begin.fromguid === "0"
          ? `it is a full stream, not an incremental from GUID ${expect.fromguid}`
          : `it is an incremental from GUID ${begin.fromguid}, not from ${
            expect.fromguid === "0" ? "nothing (a full)" : expect.fromguid
          }`,
      );
    }
    this.#le = !begin.byteswapped;
    this.#sum = new Fletcher4(this.#le);
    this.#sum.update(this.#header);
    this.#payloadLeft = begin.payloadLength;
    this.#begin = begin;
    expect.onBegin?.(begin);
  }

  #fail(why: string): IntegrityError {
    return new IntegrityError(`Cannot accept "${this.#name}" as a zfs send stream: ${why}`);
  }
}

/**
 * Bytes of payload after a record of `type` (not BEGIN, not END): `receive_read_record()` in
 * module/zfs/dmu_recv.c and the `DRR_*_PAYLOAD_SIZE` macros of include/sys/zfs_ioctl.h
 * (zfs-2.4.4). Offsets are into the 312-byte record (8 + the field's offset in `drr_u`).
 */
function payloadBytes(type: number, view: DataView, le: boolean): number {
  const u64 = (at: number) => {
    const value = view.getBigUint64(at, le);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new IntegrityError(`Cannot accept a record of type ${type}: payload size ${value}`);
    }
    return Number(value);
  };
  switch (type) {
    case DRR.OBJECT: {
      // DRR_OBJECT_PAYLOAD_SIZE: drr_raw_bonuslen (at 36) or drr_bonuslen (at 28) rounded to 8.
      const raw = view.getUint32(36, le);
      return raw !== 0 ? raw : roundUp8(view.getUint32(28, le));
    }
    case DRR.WRITE:
      // DRR_WRITE_PAYLOAD_SIZE: drr_compressed_size (at 96) when drr_compressiontype (at 50)
      // is set, else drr_logical_size (at 32).
      return view.getUint8(50) !== 0 ? u64(96) : u64(32);
    case DRR.SPILL: {
      // DRR_SPILL_PAYLOAD_SIZE: drr_compressed_size (at 40) when non-zero, else drr_length (at 16).
      const compressed = u64(40);
      return compressed !== 0 ? compressed : u64(16);
    }
    case DRR.WRITE_EMBEDDED:
      // P2ROUNDUP(drr_psize, 8), drr_psize at 52.
      return roundUp8(view.getUint32(52, le));
    default:
      // FREEOBJECTS, FREE, WRITE_BYREF, OBJECT_RANGE, REDACT carry no payload.
      return 0;
  }
}

function roundUp8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function isZero(bytes: Uint8Array, from: number, to = bytes.length): boolean {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) return false;
  return true;
}
