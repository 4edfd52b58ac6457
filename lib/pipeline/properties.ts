/**
 * The dataset's local properties, which a plain stream does not carry: with each full, backup
 * stores `zfs get -H -p -s local all` as a small JSON sidecar (`checkKey(...)` + `#properties`,
 * under `.z3/`, outside the listing of backup objects); `restore --properties` reads the sidecar
 * before the receive (a malformed one is an IntegrityError, exit 6, and nothing is received) and
 * sets again on the target, after the receive, the properties of {@linkcode DEFAULT_PROPERTIES}
 * and those named with `--property`; it names the ones it left out. The bucket is untrusted: a
 * forged sidecar must not share the dataset (`sharenfs`), let programs or devices on it run
 * (`setuid`, `devices`, `exec`), mount it (`mountpoint`, `canmount`, `overlay`), point it at a
 * key (`keylocation`), or steer other tools through user properties (`com.sun:auto-snapshot`
 * stops zfs-auto-snapshot; znapzend runs the command in `org.znapzend:pre_znap_cmd`). A list of
 * dangerous user properties cannot know every tool, so no user property is set unless named. A
 * property the target cannot take is one line, not a failure.
 *
 * @module
 */

import { checkKey } from "../repository/check_records.ts";
import { Chains, quote } from "../chain/walk.ts";
import { describeError, IntegrityError, UsageError } from "../base/errors.ts";
import { printable } from "../chain/names.ts";
import { putBytes, readBytes, SidecarError } from "../repository/sidecar.ts";
import { createHash } from "node:crypto";
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
 * bytes must hash to it; `null` there means no sidecar was signed, and none is read.
 *
 * @throws {IntegrityError} (exit 6) for a sidecar that is not what z3 writes, or not the signed one
 */
export async function readProperties(
  store: S3Store,
  prefix: string,
  name: string,
  attempts: number,
  signed?: { sha256: string | null },
): Promise<Record<string, string> | undefined> {
  const key = propertiesKey(prefix, name);
  const bad = new IntegrityError(`Cannot read the properties ${quote(key)}: not what z3 writes`);
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
 * Native properties `restore --properties` sets without being named: how data is stored, checked
 * and cached, and ACL and xattr behaviour. None of them shares, mounts, lets a program or device
 * node run, points at a key, reserves or limits space, or is read by another tool. Properties fixed
 * at creation (`utf8only`, `normalization`, `casesensitivity`, `volblocksize`) are left out: `zfs
 * set` refuses them on a received dataset.
 */
export const DEFAULT_PROPERTIES: ReadonlySet<string> = new Set([
  "compression",
  "recordsize",
  "atime",
  "relatime",
  "xattr",
  "acltype",
  "aclinherit",
  "aclmode",
  "dnodesize",
  "logbias",
  "primarycache",
  "secondarycache",
  "sync",
  "checksum",
  "copies",
  "snapdir",
  "redundant_metadata",
  "special_small_blocks",
]);

/**
 * `--property` values (each a name, or names joined by commas): the properties to set besides
 * {@linkcode DEFAULT_PROPERTIES}.
 *
 * @throws {UsageError} for a name ZFS would not take as a property
 */
export function namedProperties(values: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const name of values.flatMap((v) => v.split(","))) {
    if (!zfs.validPropertyName(name)) {
      throw new UsageError(`Cannot use --property ${JSON.stringify(name)}: not a property name`);
    }
    names.add(name);
  }
  return names;
}

/**
 * Splits stored properties into those to set (in {@linkcode DEFAULT_PROPERTIES} or in `named`)
 * and those left out, each in stored order.
 */
export function selectProperties(
  stored: Readonly<Record<string, string>>,
  named: ReadonlySet<string> = new Set(),
): { set: [string, string][]; leftOut: [string, string][] } {
  const set: [string, string][] = [];
  const leftOut: [string, string][] = [];
  for (const entry of Object.entries(stored)) {
    (DEFAULT_PROPERTIES.has(entry[0]) || named.has(entry[0]) ? set : leftOut).push(entry);
  }
  return { set, leftOut };
}

/**
 * `restore --properties`: sets on `target` the properties stored with `full` (read beforehand
 * with {@linkcode readProperties}; undefined: none were stored) that {@linkcode selectProperties}
 * selects, each by itself; one that zfs refuses is reported on `err` and the rest go on. Names
 * on `err` every stored property left out. Returns how many were set.
 */
export async function applyProperties(
  properties: Readonly<Record<string, string>> | undefined,
  full: string,
  target: string,
  named: ReadonlySet<string>,
  err: (line: string) => void,
): Promise<number> {
  if (properties === undefined) {
    err(`${target}: no properties stored with ${full} (backed up before z3 stored them)`);
    return 0;
  }
  const { set: chosen, leftOut } = selectProperties(properties, named);
  let set = 0;
  for (const [name, value] of chosen) {
    try {
      await zfs.setProperty(target, name, value);
      set++;
    } catch (e) {
      err(`warning: Cannot set ${name}=${value} on ${quote(target)}: ${describeError(e)}`);
    }
  }
  reportLeftOut(leftOut, target, err);
  err(`${target}: set ${set} of ${Object.keys(properties).length} stored properties of ${full}`);
  return set;
}

/** The stored properties not set, on `err`: mountpoint on a line of its own, the rest together. */
function reportLeftOut(
  leftOut: [string, string][],
  target: string,
  err: (line: string) => void,
): void {
  const others: string[] = [];
  for (const [name, value] of leftOut) {
    if (name === "mountpoint") {
      // The source's place: setting it on a restored copy would mount it over the source.
      err(
        `${target}: mountpoint=${printable(value)} not set (the source's); zfs set it by hand, ` +
          `or pass --property mountpoint, if wanted`,
      );
    } else others.push(`${name}=${printable(value)}`);
  }
  if (others.length > 0) {
    err(
      `${target}: not set (not on the list restore --properties sets; name each with ` +
        `--property NAME to set it): ${others.join(", ")}`,
    );
  }
}
