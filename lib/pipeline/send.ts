/**
 * One snapshot into one object: `zfs send` as a child of z3, piped through the compressor and, with
 * age recipients, encrypted in process, into {@linkcode uploadStream}. Where the compressor is a
 * command (`zstd`, `lz4`, `pigz`), `zfs send`'s stdout is its stdin directly (`zfs.sendThrough`),
 * and z3 reads only the compressed bytes; `none`, `gzip` and the in-process zstd read the send
 * stream through z3. The exit statuses of `zfs send` and the compressor are awaited before the
 * upload is completed, so a send that fails midway never becomes an object. The SHA-256 of the
 * stored bytes is computed on the way to the upload (for the signed record). Used by `z3 backup`.
 *
 * @module
 */

import type { Recipient } from "../config/age_keys.ts";
import type { S3Store } from "../backend/s3.ts";
import { counted, Progress } from "../cli/progress.ts";
import { type UploadOptions, type UploadResult, uploadStream } from "../transfer/upload.ts";
import * as zfs from "../zfs/zfs.ts";
import { compress, compressStage, helperMissing } from "./compress.ts";
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
 * Sends `options.snapshot` and uploads the packed stream to `key`. On a failure `zfs send` and the
 * compressor are killed (a no-op when they already exited) and the progress line is ended.
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
  const packed = await sendPacked(snapshot, from, {
    flags,
    compressor,
    signal,
    estimated,
    progress,
  });
  try {
    // A fresh file key and nonce each time: an interrupted encrypted upload starts over.
    const body = recipients.length > 0 ? encryptStream(packed.stream, recipients) : packed.stream;
    const hash = new Sha256Stream();
    const result = await uploadStream(store, key, body.pipeThrough(hash), {
      ...upload,
      // Both `zfs send` and the compressor exited 0.
      beforeComplete: () => packed.done,
    });
    return { ...result, sha256: hash.hex };
  } catch (err) {
    packed.stop(); // no-op when they already exited; stops them when the upload failed first
    throw err;
  }
}

/** `zfs send`'s stream, compressed, and what says whether its producers succeeded. */
interface PackedSend {
  stream: ReadableStream<Uint8Array>;
  /** Resolves once `zfs send` and the compressor exited 0; rejects with the first failure. */
  done: Promise<void>;
  /** Ends the progress line and kills `zfs send` and a compressor command. */
  stop(): void;
}

/**
 * Starts `zfs send` and its compressor: child to child where the compressor is a command (the
 * progress line then counts the compressed bytes, with no total: the estimate is of the send
 * stream), through z3 otherwise, and when `zstd` is missing or not permitted (in-process zstd).
 */
async function sendPacked(
  snapshot: string,
  from: string | undefined,
  options: Pick<SendToObjectOptions, "flags" | "compressor" | "signal" | "estimated" | "progress">,
): Promise<PackedSend> {
  const { flags, compressor, signal, progress } = options;
  const into = compressStage(compressor);
  if (into) {
    try {
      const piped = await zfs.sendThrough(snapshot, from, { signal, flags, into });
      const line = progress ? new Progress(snapshot) : undefined;
      const stream = line ? counted(piped.stdout, line) : piped.stdout;
      return { stream, done: piped.done, stop: () => (line?.stop(), piped.kill()) };
    } catch (err) {
      if (!(compressor === "zstd" && helperMissing(err))) throw err;
    }
  }
  const sender = zfs.send(snapshot, from, { signal, flags });
  // Progress counts the send stream, the one `estimated` is about (before compression).
  const line = progress ? new Progress(snapshot, options.estimated) : undefined;
  const sent = line ? counted(sender.stdout!, line) : sender.stdout!;
  const packed = compress(compressor, sent, signal);
  const done = sender.done.then(() => packed.done);
  done.catch(() => {});
  return { stream: packed.stream, done, stop: () => (line?.stop(), sender.kill()) };
}
