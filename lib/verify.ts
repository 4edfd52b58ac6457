/**
 * A pass-through stream that verifies an object's bytes while they flow to `zfs receive`: it
 * recomputes the ETag (one MD5, or the multipart MD5-of-part-MD5s using the part schedule
 * recorded in metadata) and the size, and holds back the last chunk until both match. A stream
 * that does not verify errors before its final bytes are released, so ZFS never sees the end of
 * the stream and commits no snapshot from it.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { IntegrityError } from "./errors.ts";
import { toHex } from "./hex.ts";
import { type PartSchedule, partSizeOf } from "./part_size.ts";
import { multipartEtag } from "./upload.ts";

/** What the bytes must match. */
export interface Expected {
  /** ETag from HeadObject, without quotes. */
  etag: string;
  /** Object size from HeadObject. */
  size: number;
  /** Part schedule from metadata, for multipart ETags. */
  schedule?: PartSchedule;
}

/** How thoroughly a stream can be checked. */
export function verifiability(expected: Expected): "etag" | "size only" {
  const multipart = /-\d+$/.test(expected.etag);
  return !multipart || expected.schedule ? "etag" : "size only";
}

/** Wraps `source` (see module doc); `label` names the object in errors. */
export function verifying(
  source: ReadableStream<Uint8Array>,
  expected: Expected,
  label: string,
): ReadableStream<Uint8Array> {
  const multipart = /-\d+$/.test(expected.etag);
  const schedule: PartSchedule | undefined = multipart
    ? expected.schedule
    : { base: Number.MAX_SAFE_INTEGER, doubleEvery: 0 };
  const digests: Uint8Array[] = [];
  let hash: Hash = createHash("md5");
  let part = 1;
  let left = schedule ? partSizeOf(schedule, 1) : Infinity;
  let total = 0;
  let held: Uint8Array | undefined;
  const fail = (why: string) =>
    new IntegrityError(`Cannot verify "${label}": ${why}; nothing was committed from it`);
  const verifier = new TransformStream<Uint8Array, Uint8Array>({
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
      if (held) controller.enqueue(held);
      held = chunk;
    },
    flush(controller) {
      if (total !== expected.size) {
        throw fail(`got ${total} bytes, expected ${expected.size} (truncated?)`);
      }
      if (schedule) {
        if (left !== partSizeOf(schedule, part) || digests.length === 0) {
          digests.push(new Uint8Array(hash.digest()));
        }
        const got = multipart ? multipartEtag(digests) : toHex(digests[0]);
        if (got !== expected.etag) {
          throw fail(`its bytes hash to ETag "${got}", the bucket says "${expected.etag}"`);
        }
      }
      if (held) controller.enqueue(held);
    },
  });
  return source.pipeThrough(verifier);
}
