/**
 * One backup object into `zfs receive`: downloaded and verified (`verified_object.ts`),
 * decrypted when its metadata says age, decompressed, its send stream checked as it passes
 * (`zfs/send_stream.ts`: `zfs receive` starts only after its BEGIN record passed), with its last
 * bytes held back until all of that succeeded. Used by `z3 restore` and by
 * `z3 verify --zfs PARENT`'s scratch receives; `z3 verify` reads each object's stream through
 * the same checks into nothing ({@linkcode readThrough}).
 *
 * @module
 */

import { AGE_META, checkIdentity, openAge } from "./age.ts";
import type { Config } from "../config/config.ts";
import { decompress, type Piped } from "./compress.ts";
import { CommandError, UsageError, Z3Error } from "../base/errors.ts";
import { withProgress } from "../cli/progress.ts";
import type { S3Store } from "../backend/s3.ts";
import { type Expected, holdingBack } from "../transfer/verifying_stream.ts";
import { openVerified } from "../repository/verified_object.ts";
import * as zfs from "../zfs/zfs.ts";
import {
  openSendStream,
  SendStreamCutError,
  type SendStreamExpectation,
} from "../zfs/send_stream.ts";
import { sleep } from "../base/sleep.ts";
import type { RemoteSnapshot } from "../chain/types.ts";

/**
 * The send stream object `r` must hold: the snapshot of its recorded GUID (`z3-guid`), sent from
 * its recorded parent's (`z3-parent-guid`) or from nothing for a full. An object of the original
 * z3 records no GUIDs: then only the stream's structure is checked (see `send_stream.ts`).
 */
export function streamExpectation(r: RemoteSnapshot): SendStreamExpectation {
  if (r.guid === undefined) return { name: r.key };
  return { name: r.key, toguid: r.guid, fromguid: r.isFull ? "0" : r.parentGuid };
}

/**
 * Streams one object, verified and decompressed, into `zfs receive` at `target`. `zfs receive`
 * starts only once the stream's BEGIN record has passed {@linkcode streamExpectation} (a refused
 * stream is an IntegrityError, exit 6, and no receive ran). The last bytes going into zfs
 * receive are held back until the object has verified, the decompressor has exited cleanly
 * (see `transfer/verifying_stream.ts`) and the END record and its checksum matched, so a stream that fails any of
 * these never reaches its END record. `noMount`: `zfs receive -u`.
 */
export async function receiveOne(
  config: Config,
  store: S3Store,
  r: RemoteSnapshot,
  target: string,
  options: {
    force?: boolean;
    noMount?: boolean;
    signal?: AbortSignal;
    err: (line: string) => void;
  },
  expected?: Expected,
) {
  checkIdentity(r.key, r.metadata, config.ageIdentities ?? [], config.ageIdentityFile);
  const opened = await openObject(config, store, r, options, expected);
  const unpacked = unpack(opened, r);
  const checked = await openChecked(unpacked, r);
  const receiver = zfs.receive(target, {
    force: options.force,
    noMount: options.noMount,
    signal: options.signal,
  });
  // `unpacked.done` settles only once the decompressor has read its input (the verified stream)
  // to a clean end and exited; it rejects when either failed.
  const gated = holdingBack(checked, unpacked.done);
  try {
    await gated.pipeTo(receiver.stdin!, { signal: options.signal });
  } catch (err) {
    // Read what failed upstream now, before stopping things adds failures of its own.
    const cause = firstCause(err, unpacked);
    if (!(err instanceof Z3Error)) {
      // A failed write (broken pipe) means zfs receive stopped: its own error says why.
      const own = await Promise.race([
        receiver.done.then(() => undefined, (e) => e as Error),
        sleep(5000).then(() => undefined),
      ]);
      if (own) throw own;
    }
    receiver.kill();
    await receiver.done.catch(() => {});
    throw await cause;
  }
  await unpacked.done;
  await receiver.done;
}

/** An object's bytes as they download, and what stops the download and its helpers. */
interface OpenedObject {
  /** Verified, and decrypted when asked and its metadata says age. */
  stream: ReadableStream<Uint8Array>;
  /** Aborting it stops the download and every helper started with {@linkcode signal}. */
  stop: AbortController;
  /** The caller's signal, or `stop`'s. */
  signal: AbortSignal;
}

/** `r`'s bytes, downloaded and verified, then decrypted unless `decrypt` is false. */
async function openObject(
  config: Config,
  store: S3Store,
  r: RemoteSnapshot,
  options: { signal?: AbortSignal; err: (line: string) => void },
  expected?: Expected,
  decrypt = true,
): Promise<OpenedObject> {
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const verified = withProgress(
    await openVerified(store, r.key, config, { signal, err: options.err }, expected),
    r.name,
    r.objectSize,
  );
  const stream = decrypt ? await decrypted(verified, r.key, r.metadata, config) : verified;
  return { stream, stop, signal };
}

/** An object's decompressed stream, with what failed upstream of it so far. */
interface Unpacked extends Piped {
  /** Stops the download and the decompressor. */
  stop: AbortController;
  /** The rejection of `done` (the download or the decompressor failed), once it came. */
  upstreamFailure(): unknown;
}

/** `opened`'s stream through `r`'s decompressor, watching `done` as it goes. */
function unpack(opened: OpenedObject, r: RemoteSnapshot): Unpacked {
  const piped = decompress(r.compressor, opened.stream, opened.signal);
  let failure: unknown;
  piped.done.catch((err) => failure ??= err);
  return { ...piped, stop: opened.stop, upstreamFailure: () => failure };
}

/**
 * `unpacked` opened with `openSendStream`: resolves once its BEGIN record passed
 * {@linkcode streamExpectation}; else throws the first cause (see {@linkcode firstCause}).
 */
async function openChecked(
  unpacked: Unpacked,
  r: RemoteSnapshot,
): Promise<ReadableStream<Uint8Array>> {
  try {
    return (await openSendStream(unpacked.stream, streamExpectation(r))).stream;
  } catch (err) {
    throw await firstCause(err, unpacked);
  }
}

/**
 * The error to report when `unpacked`'s stream failed with `err`, then stops its download and
 * decompressor. A download or a decompressor that failed first cuts the stream short: its error
 * is the cause, not the cut (`SendStreamCutError`), which may come before a decompressor's exit
 * status does (so a cut waits up to a second for it). A refused stream is its own cause: the
 * decompressor's failure that follows (SIGPIPE, its output closed by the refusal) is not.
 */
async function firstCause(err: unknown, unpacked: Unpacked): Promise<unknown> {
  let cause = unpacked.upstreamFailure();
  if (cause === undefined && err instanceof SendStreamCutError) {
    cause = await Promise.race([
      unpacked.done.then(() => undefined, (e) => e as Error),
      sleep(1000).then(() => undefined),
    ]);
  }
  unpacked.stop.abort(err);
  return cause ?? err;
}

/**
 * `z3 verify`'s read of one object's send stream, to a sink that discards it: decrypted (with
 * `AGE_IDENTITY_FILE`) and decompressed where that can be done on this host, then checked by
 * `checkedSendStream` (BEGIN as {@linkcode streamExpectation}, END and its checksum). Returns what
 * was checked, or why the stream could not be read (then only the object's bytes were checked).
 *
 * @throws {IntegrityError} when the object's bytes or its stream do not check out
 */
export async function readThrough(
  config: Config,
  store: S3Store,
  r: RemoteSnapshot,
  options: { signal?: AbortSignal; err: (line: string) => void },
  expected: Expected,
): Promise<string> {
  const locked = undecryptable(config, r);
  const opened = await openObject(config, store, r, options, expected, locked === undefined);
  const unread = (why: string) => `stream not read (${why}): its END record is not checked`;
  if (locked !== undefined) {
    await opened.stream.pipeTo(new WritableStream());
    return unread(locked);
  }
  let unpacked: Unpacked;
  try {
    unpacked = unpack(opened, r);
  } catch (err) {
    // A decompressor this host cannot run: the bytes are still checked against the object.
    if (!(err instanceof CommandError) || !err.message.startsWith("Cannot run ")) throw err;
    await opened.stream.pipeTo(new WritableStream());
    return unread(err.message);
  }
  const checked = await openChecked(unpacked, r);
  try {
    await checked.pipeTo(new WritableStream());
    await unpacked.done;
  } catch (err) {
    throw await firstCause(err, unpacked);
  }
  return "stream checked: BEGIN, END and its checksum";
}

/** Why `r` cannot be decrypted here (encrypted, and no identity of AGE_IDENTITY_FILE fits). */
function undecryptable(config: Config, r: RemoteSnapshot): string | undefined {
  try {
    checkIdentity(r.key, r.metadata, config.ageIdentities ?? [], config.ageIdentityFile);
    return undefined;
  } catch (err) {
    if (err instanceof UsageError) return `encrypted: ${err.message}`;
    throw err;
  }
}

export function encrypted(metadata: Record<string, string>): boolean {
  return metadata[AGE_META.encryption] === "age";
}

/**
 * `stream` decrypted with `AGE_IDENTITY_FILE`'s identities when the metadata says age (else as
 * is); callers check the identity against the metadata first (`checkIdentity`). Resolves once
 * the age header is unwrapped, so an identity that matches none of its stanzas fails here,
 * before the caller starts a consumer; a chunk that does not authenticate errors the stream
 * with an IntegrityError (see `age.ts`).
 */
export async function decrypted(
  stream: ReadableStream<Uint8Array>,
  key: string,
  metadata: Record<string, string>,
  config: Config,
): Promise<ReadableStream<Uint8Array>> {
  if (!encrypted(metadata)) return stream;
  return await openAge(stream, config.ageIdentities ?? [], {
    label: key,
    identityFile: config.ageIdentityFile,
  });
}
