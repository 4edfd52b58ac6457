/**
 * One backup object into `zfs receive`: downloaded and verified (`verified_object.ts`),
 * decrypted when its metadata says age, decompressed, with its last bytes held back until all
 * of that succeeded. Used by `z3 restore` and by `z3 verify --zfs PARENT`'s scratch receives.
 *
 * @module
 */

import { AGE_META, checkIdentity, openAge } from "./age.ts";
import type { Config } from "../config/config.ts";
import { decompress } from "./compress.ts";
import { Z3Error } from "../base/errors.ts";
import { withProgress } from "../cli/progress.ts";
import type { S3Store } from "../backend/s3.ts";
import { type Expected, holdingBack } from "../transfer/verifying_stream.ts";
import { openVerified } from "../repository/verified_object.ts";
import * as zfs from "../zfs/zfs.ts";
import { sleep } from "../base/sleep.ts";
import type { RemoteSnapshot } from "../chain/types.ts";

/**
 * Streams one object, verified and decompressed, into `zfs receive` at `target`. The last bytes
 * going into zfs receive are held back until the object has verified and the decompressor has
 * exited cleanly (see `transfer/verifying_stream.ts`), so a stream that fails either never reaches its END record.
 */
export async function receiveOne(
  config: Config,
  store: S3Store,
  r: RemoteSnapshot,
  target: string,
  options: { force?: boolean; signal?: AbortSignal; err: (line: string) => void },
  expected?: Expected,
) {
  checkIdentity(r.key, r.metadata, config.ageIdentities ?? [], config.ageIdentityFile);
  const stream = await decrypted(
    withProgress(await openVerified(store, r.key, config, options, expected), r.name, r.objectSize),
    r.key,
    r.metadata,
    config,
  );
  const receiver = zfs.receive(target, { force: options.force, signal: options.signal });
  const unpacked = decompress(r.compressor, stream, options.signal);
  // `unpacked.done` settles only once the decompressor has read its input (the verified stream)
  // to a clean end and exited; it rejects when either failed.
  const gated = holdingBack(unpacked.stream, unpacked.done);
  try {
    await gated.pipeTo(receiver.stdin!, { signal: options.signal });
  } catch (err) {
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
    throw err;
  }
  await unpacked.done;
  await receiver.done;
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
