/**
 * The dataset's local properties, which a plain stream does not carry: with each full, backup
 * stores `zfs get -H -p -s local all` as a small JSON sidecar (`checkKey(...)` + `#properties`,
 * under `.z3/`, outside the listing of backup objects); `restore --properties` sets them again on
 * the target after the receive (all but `mountpoint`, which is named instead). A property the
 * target cannot take is one line, not a failure.
 *
 * @module
 */

import { checkKey } from "../repository/check_records.ts";
import { Chains, quote } from "../chain/walk.ts";
import { describeError } from "../base/errors.ts";
import { putBytes, readBytes, SidecarError } from "../repository/sidecar.ts";
import { createHash } from "node:crypto";
import { IntegrityError } from "../base/errors.ts";
import type { S3Store } from "../backend/s3.ts";
import * as zfs from "../zfs/zfs.ts";
import type { RemoteSnapshot } from "../chain/types.ts";

/** Largest sidecar z3 reads; what it writes is far smaller. */
const MAX_BYTES = 64 * 1024;

/** The sidecar's key for the full backup of `name` (`dataset@snap`). */
export function propertiesKey(prefix: string, name: string): string {
  return `${checkKey(prefix, name)}#properties`;
}

/**
 * Reads `dataset`'s local properties and stores them beside the full of `name`; returns the
 * SHA-256 (hex) of the bytes stored, for the full's signed record.
 */
export async function storeProperties(
  store: S3Store,
  prefix: string,
  dataset: string,
  name: string,
  attempts: number,
): Promise<string> {
  const properties = await zfs.getLocalProperties(dataset);
  const body = new TextEncoder().encode(JSON.stringify({ properties }) + "\n");
  await putBytes(store, propertiesKey(prefix, name), body, attempts);
  return createHash("sha256").update(body).digest("hex");
}

/**
 * The properties stored with the full `name`; undefined when none were (a full of an older z3).
 * The bucket is untrusted: anything but an object of valid names to one-line strings is refused.
 * With `signed` (trusted keys: the SHA-256 the full's signed record holds for its sidecar), the
 * bytes must hash to it (else an {@linkcode IntegrityError}, exit 6); `null` there means no
 * sidecar was signed, and none is read.
 */
export async function readProperties(
  store: S3Store,
  prefix: string,
  name: string,
  attempts: number,
  signed?: { sha256: string | null },
): Promise<Record<string, string> | undefined> {
  const key = propertiesKey(prefix, name);
  const bad = new Error(`Cannot read the properties ${quote(key)}: not what z3 writes`);
  if (signed?.sha256 === null) return undefined;
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readBytes(store, key, { maxBytes: MAX_BYTES, attempts });
  } catch (err) {
    if (err instanceof SidecarError) throw bad;
    throw err;
  }
  if (bytes === undefined) return undefined;
  const hash = createHash("sha256").update(bytes).digest("hex");
  if (signed !== undefined && hash !== signed.sha256) {
    throw new IntegrityError(
      `Cannot trust the properties ${quote(key)}: they hash to SHA-256 ${hash}, the signed ` +
        `record of ${quote(name)} says ${signed.sha256}`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw bad;
  }
  const p = (parsed as { properties?: unknown } | null)?.properties;
  if (typeof p !== "object" || p === null || Array.isArray(p)) throw bad;
  for (const [k, v] of Object.entries(p)) {
    if (!zfs.validPropertyName(k) || typeof v !== "string" || v.includes("\n")) throw bad;
  }
  return p as Record<string, string>;
}

/**
 * The full at the root of `name`'s chain in `remote` ({@linkcode Chains.fullOf}: links checked by
 * name and GUID), or undefined for a broken one.
 */
export function chainFull(
  remote: ReadonlyMap<string, RemoteSnapshot>,
  name: string,
): RemoteSnapshot | undefined {
  return new Chains(remote).fullOf(name);
}

/**
 * `restore --properties`: sets the properties stored with `full` on `target`, each by itself;
 * one that zfs refuses is reported on `err` and the rest go on. Returns how many were set.
 */
export async function applyProperties(
  store: S3Store,
  prefix: string,
  full: string,
  target: string,
  attempts: number,
  err: (line: string) => void,
  signed?: { sha256: string | null },
): Promise<number> {
  const properties = await readProperties(store, prefix, full, attempts, signed);
  if (properties === undefined) {
    err(`${target}: no properties stored with ${full} (backed up before z3 stored them)`);
    return 0;
  }
  let set = 0;
  for (const [name, value] of Object.entries(properties)) {
    if (name === "mountpoint") {
      // The source's place: setting it on a restored copy would mount it over the source.
      err(`${target}: mountpoint=${value} not set (the source's); zfs set it by hand if wanted`);
      continue;
    }
    try {
      await zfs.setProperty(target, name, value);
      set++;
    } catch (e) {
      err(`warning: Cannot set ${name}=${value} on ${quote(target)}: ${describeError(e)}`);
    }
  }
  err(`${target}: set ${set} of ${Object.keys(properties).length} stored properties of ${full}`);
  return set;
}
