/**
 * One snapshot into one object: `zfs send` as a child of z3, piped through the compressor and, with
 * age recipients, encrypted in process, into {@linkcode uploadStream}. The exit statuses of
 * `zfs send` and the compressor are awaited before the upload is completed, so a send that fails
 * midway never becomes an object. The SHA-256 of the stored bytes is computed on the way to the
 * upload (for the signed record). Used by `z3 backup`.
 *
 * @module
 */

import type { Recipient } from "../config/age_keys.ts";
import type { S3Store } from "../backend/s3.ts";
import { counted, Progress } from "../cli/progress.ts";
import { type UploadOptions, type UploadResult, uploadStream } from "../transfer/upload.ts";
import * as zfs from "../zfs/zfs.ts";
import { compress } from "./compress.ts";
import { encryptStream } from "./age.ts";
import { Sha256Stream } from "../transfer/sha256_stream.ts";

/** A finished upload and the SHA-256 (hex) of every byte it stored. */
export interface SentObject extends UploadResult {
  /** Lower-case hex SHA-256 of the stored bytes. */
  sha256: string;
}

/** Options for {@linkcode sendToObject}: what to send, how to pack it, and the upload's own. */
export interface SendToObjectOptions extends Omit<UploadOptions, "beforeComplete"> {
  /** The snapshot to send (`dataset@snap`). */
  snapshot: string;
  /** The base of an incremental (`dataset@snap`, or a bookmark `dataset#bm`); absent for a full. */
  from?: string;
  /** `zfs send` options (`-w`, `-L`, …). @default {[]} */
  flags?: string[];
  /** The compressor's name (`compress.ts`). */
  compressor: string;
  /** Encrypts the stream to these age recipients; none leaves it as is. @default {[]} */
  recipients?: Recipient[];
  /** The send stream's expected size, for the progress line's percentage. */
  estimated?: number;
  /** Draws a progress line on stderr, counting the send stream (before compression). */
  progress?: boolean;
}

/**
 * Sends `options.snapshot` and uploads the packed stream to `key`. On a failure `zfs send` is
 * killed (a no-op when it already exited) and the progress line is ended.
 */
export async function sendToObject(
  store: S3Store,
  key: string,
  options: SendToObjectOptions,
): Promise<SentObject> {
  const {
    snapshot,
    from,
    flags = [],
    compressor,
    recipients = [],
    estimated,
    progress,
    ...upload
  } = options;
  const { signal } = upload;
  const sender = zfs.send(snapshot, from, { signal, flags });
  // Progress counts the send stream, the one `estimated` is about (before compression).
  const line = progress ? new Progress(snapshot, estimated) : undefined;
  const sent = line ? counted(sender.stdout!, line) : sender.stdout!;
  const packed = compress(compressor, sent, signal);
  try {
    // A fresh file key and nonce each time: an interrupted encrypted upload starts over.
    const body = recipients.length > 0 ? encryptStream(packed.stream, recipients) : packed.stream;
    const hash = new Sha256Stream();
    const result = await uploadStream(store, key, body.pipeThrough(hash), {
      ...upload,
      beforeComplete: async () => {
        await sender.done;
        await packed.done;
      },
    });
    return { ...result, sha256: hash.hex };
  } catch (err) {
    line?.stop();
    sender.kill(); // no-op when it already exited; stops it when the upload failed first
    throw err;
  }
}
