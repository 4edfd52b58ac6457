/**
 * Checking an object's bytes while they stream, and holding back the end of a stream until the
 * checks are in.
 *
 * - {@linkcode verifying}: recomputes an object's ETag (one MD5, or the multipart MD5 of part
 *   MD5s from the part schedule in its metadata) and size from its bytes, for objects whose check
 *   record has no part MD5s (older z3, the original z3); it errors at the end when they differ.
 * - {@linkcode holdingBack}: passes a stream through but keeps its last {@linkcode HOLD_BACK}
 *   bytes until a gate (the checks) resolves; when the gate or the source fails, the stream errors
 *   and the held bytes are never released.
 *
 * Restore puts {@linkcode holdingBack} on the bytes going into `zfs receive`, after the
 * decompressor, gated on the object's checks and the decompressor's exit status. A zfs stream
 * ends with its END record, and `zfs receive` commits the snapshot only on reading it, so a
 * stream that does not verify never reaches ZFS whole.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import { IntegrityError } from "../base/errors.ts";
import { type PartSchedule, partSizeOf } from "./part_size.ts";
import { etagPartCount, isMd5Hex, multipartEtag } from "./etag.ts";

/**
 * Bytes kept back at the end of a stream until its checks pass: 64 KiB. A zfs send stream ends
 * with one END record of 312 bytes (`sizeof (dmu_replay_record_t)`; on a real zfs-fuse stream the
 * last 312 bytes are the record of type 5, DRR_END), and `zfs receive` commits the snapshot only
 * when it reads that record. 64 KiB holds the END record two hundred times over, so the margin
 * also covers the records before it, and costs one small copy per object.
 */
export const HOLD_BACK = 64 * 1024;

/** What the bytes must match. */
export interface Expected {
  /** ETag from HeadObject, without quotes. */
  etag: string;
  /** Object size from HeadObject. */
  size: number;
  /** Part schedule from metadata, for multipart ETags. */
  schedule?: PartSchedule;
  /**
   * Each part's MD5 (hex, in part order) from the check record: then every part is checked on
   * its own as it arrives (see `download.ts`) and fetched again when it does not match.
   */
  parts?: string[];
  /** The SHA-256 (hex) of the whole object, from its signed record: checked at the end too. */
  sha256?: string;
}

/** How thoroughly a stream can be checked. */
export function verifiability(expected: Expected): "etag" | "size only" {
  const multipart = etagPartCount(expected.etag) !== undefined;
  return expected.parts || !multipart || expected.schedule ? "etag" : "size only";
}

/** The error for bytes that do not match what they must. */
export function verifyError(label: string, why: string): IntegrityError {
  return new IntegrityError(`Cannot verify "${label}": ${why}; nothing was committed from it`);
}

/**
 * The object's parts (size and MD5) from its check record's part MD5s and the part schedule in
 * its metadata, after checking that they agree with the object: as many parts as its ETag says,
 * whose MD5s hash to that ETag, whose sizes add up to its size. Throws an IntegrityError naming
 * the disagreement otherwise.
 */
export function partsOf(expected: Expected, label: string): { size: number; md5: string }[] {
  const md5s = expected.parts ?? [];
  const bad = (why: string) =>
    new IntegrityError(`Cannot trust "${label}": its check record's part MD5s ${why}`);
  if (md5s.length === 0 || md5s.some((m) => !isMd5Hex(m))) {
    throw bad("are not a list of MD5s");
  }
  if (etagPartCount(expected.etag) === undefined) {
    if (md5s.length !== 1 || md5s[0] !== expected.etag) {
      throw bad(`do not match its single-part ETag "${expected.etag}"`);
    }
    return [{ size: expected.size, md5: md5s[0] }];
  }
  const etag = multipartEtag(md5s.map((m) => new Uint8Array(Buffer.from(m, "hex"))));
  if (etag !== expected.etag) {
    throw bad(`hash to ETag "${etag}", the object's is "${expected.etag}"`);
  }
  if (!expected.schedule) throw bad("cannot be placed: its metadata records no part sizes");
  const parts = md5s.map((md5, i) => ({ size: partSizeOf(expected.schedule!, i + 1), md5 }));
  const before = parts.slice(0, -1).reduce((sum, p) => sum + p.size, 0);
  const last = expected.size - before;
  if (last < 1 || last > parts[parts.length - 1].size) {
    throw bad(`do not fit its ${expected.size} bytes with the part sizes in its metadata`);
  }
  parts[parts.length - 1].size = last;
  return parts;
}

/**
 * Checks `source` against the object's ETag (see module doc) and size; the stream errors at its
 * end when they differ. `label` names the object in errors.
 */
export function verifying(
  source: ReadableStream<Uint8Array>,
  expected: Expected,
  label: string,
): ReadableStream<Uint8Array> {
  const multipart = etagPartCount(expected.etag) !== undefined;
  const schedule: PartSchedule | undefined = multipart
    ? expected.schedule
    : { base: Number.MAX_SAFE_INTEGER, doubleEvery: 0 };
  const digests: Uint8Array[] = [];
  let hash: Hash = createHash("md5");
  let part = 1;
  let left = schedule ? partSizeOf(schedule, 1) : Infinity;
  let total = 0;
  const fail = (why: string) => verifyError(label, why);
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.length;
        if (total > expected.size) throw fail(`more bytes than its size ${expected.size}`);
        if (schedule) {
          let off = 0;
          while (off < chunk.length) {
            const take = Math.min(left, chunk.length - off);
            hash.update(chunk.subarray(off, off + take));
            off += take;
            left -= take;
            if (left === 0) {
              digests.push(new Uint8Array(hash.digest()));
              hash = createHash("md5");
              part++;
              left = partSizeOf(schedule, part);
            }
          }
        }
        controller.enqueue(chunk);
      },
      flush() {
        if (total !== expected.size) {
          throw fail(`got ${total} bytes, expected ${expected.size} (truncated?)`);
        }
        if (schedule) {
          if (left !== partSizeOf(schedule, part) || digests.length === 0) {
            digests.push(new Uint8Array(hash.digest()));
          }
          const got = multipart ? multipartEtag(digests) : Buffer.from(digests[0]).toString("hex");
          if (got !== expected.etag) {
            throw fail(`its bytes hash to ETag "${got}", the bucket says "${expected.etag}"`);
          }
        }
      },
    }),
  );
}

/**
 * Passes `source` through but holds back its last `bytes` until `gate` resolves (see module
 * doc). When the source errors, or `gate` rejects, the stream errors with that error and the
 * held bytes are dropped.
 */
export function holdingBack(
  source: ReadableStream<Uint8Array>,
  gate: Promise<unknown>,
  bytes = HOLD_BACK,
): ReadableStream<Uint8Array> {
  gate.catch(() => {}); // surfaced at the end of the stream
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        held.push(chunk);
        heldBytes += chunk.length;
        while (heldBytes - held[0].length >= bytes) {
          const first = held.shift()!;
          heldBytes -= first.length;
          controller.enqueue(first);
        }
        if (heldBytes > bytes) {
          const cut = heldBytes - bytes;
          controller.enqueue(held[0].subarray(0, cut));
          held[0] = held[0].subarray(cut);
          heldBytes = bytes;
        }
      },
      async flush(controller) {
        await gate;
        for (const chunk of held) controller.enqueue(chunk);
      },
    }),
  );
}
