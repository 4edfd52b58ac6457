/**
 * The only module that runs `zfs`. Every call is an argv array built from validated names.
 *
 * Run and tested here on zfs-fuse 0.7 (the test bed), which lacks `list -p`, `send -nvP`,
 * bookmarks, raw sends and the `encryption` property; z3 works without each of them. For
 * OpenZFS 2.x the texts z3 recognises are quoted from its source beside the unit-test fixtures
 * (`tests/unit/zfs_test.ts`, `tests/unit/openzfs_texts_test.ts`, `tests/unit/bookmarks_test.ts`),
 * and the 2.x paths (send options, `send -nvP`, `encryption`, bookmarks, and holds and
 * properties once more) run against `tests/bed/openzfs_shim.ts`, a stand-in that passes the real
 * work to zfs-fuse. No test here runs on OpenZFS itself.
 *
 * Errors are classified by zfs's own message on stderr (`ZfsError.stderr`), never by the composed
 * message, which repeats the argv and so any dataset name.
 *
 * @module
 */

import { ZfsError } from "../base/errors.ts";
import { sleep } from "../base/sleep.ts";
import { parseSnapshot, validateDataset } from "../chain/names.ts";
import { type Child, runText, spawnChild } from "../exec/process.ts";
import { type ChildPipeline, spawnPipeline, type Stage } from "../exec/pipeline.ts";
import type { LocalSnapshot } from "../chain/types.ts";

/** Options shared by the calls that start a long-running `zfs` child. */
export interface ZfsStreamOptions {
  /** Aborting kills the child. */
  signal?: AbortSignal;
}

const zfsError = (message: string, stderr: string) => new ZfsError(message, { stderr });

/** The `zfs` executable. Tests may point `Z3_ZFS_COMMAND` elsewhere to inject faults. */
function zfsCommand(): string {
  return Deno.env.get("Z3_ZFS_COMMAND") || "zfs";
}

function zfs(...args: string[]): string[] {
  return [zfsCommand(), ...args];
}

/** Runs one `zfs` command and returns its stdout. */
async function zfsText(args: string[]): Promise<string> {
  return await runText(zfs(...args), { makeError: zfsError });
}

/** Whether zfs's stderr says that `dataset` itself does not exist (`zfs_open` on ENOENT). */
export function saysNoSuchDataset(stderr: string, dataset: string): boolean {
  for (const m of stderr.matchAll(/^cannot open '([^']*)': dataset does not exist$/gm)) {
    if (m[1] === dataset) return true;
  }
  return false;
}

/** Whether zfs's stderr says the dataset is busy (`zfs_standard_error` on EBUSY). */
export function saysBusy(stderr: string): boolean {
  return /: (pool or )?dataset is busy$/m.test(stderr);
}

/** Whether zfs rejected command-line option `flag` (`invalid option 'p'`: zfs-fuse's `list`). */
export function saysInvalidOption(stderr: string, flag: string): boolean {
  return stderr.split("\n").some((line) => line === `invalid option '${flag}'`);
}

/**
 * Whether `zfs receive` refused the stream's bytes themselves: OpenZFS's EZFS_BADSTREAM
 * ("invalid backup stream"), its ECKSUM text ("checksum mismatch or incomplete stream"), a stream
 * cut short ("incomplete stream": real OpenZFS 2.3.9 and 2.1.11, tests/bed/openzfs_texts/), and
 * zfs-fuse's "invalid stream (checksum mismatch)".
 */
export function saysBadStream(stderr: string): boolean {
  return /^cannot receive[^:\n]*: (invalid backup stream|invalid stream \([^)\n]*\)|checksum mismatch or incomplete stream|incomplete stream$)/m
    .test(stderr);
}

/**
 * What to do next when `zfs receive` failed because its target changed since its latest
 * snapshot, or `undefined` for any other failure. zfs prints that reason over two lines; z3 joins
 * stderr lines with "; " in messages, so both forms are matched.
 */
export function receiveHint(stderr: string): string | undefined {
  const modified = /destination (.+) has been modified(?:\n|; |\s+)since most recent snapshot/
    .exec(stderr);
  if (!modified) return undefined;
  return `"${modified[1]}" changed since its latest snapshot: roll it back ` +
    `(zfs rollback), or pass --force to let zfs receive -F do so (it discards those changes, ` +
    `and any of the target's snapshots newer than the restore's base)`;
}

/** True when `dataset` exists (any type). */
export async function datasetExists(dataset: string): Promise<boolean> {
  validateDataset(dataset);
  try {
    await zfsText(["list", "-H", "-o", "name", dataset]);
    return true;
  } catch (err) {
    if (err instanceof ZfsError && saysNoSuchDataset(err.stderr, dataset)) return false;
    throw err;
  }
}

/** The argv of the one call that lists `roots` and every filesystem and volume below them. */
export function listTreeArgv(roots: readonly string[]): string[] {
  for (const root of roots) validateDataset(root);
  // zfs-fuse 0.7 takes `list -r -H -o name -t filesystem,volume` (no -p needed for names).
  return zfs("list", "-H", "-r", "-o", "name", "-t", "filesystem,volume", ...roots);
}

/**
 * Parses {@linkcode listTreeArgv}'s output: each root (when listed) followed by its descendants
 * in zfs's order; a name under no root (impossible from zfs) is dropped.
 */
export function parseTree(roots: readonly string[], text: string): Map<string, string[]> {
  const names = text.split("\n").filter((l) => l !== "");
  return new Map(
    roots.map((root) => [root, names.filter((n) => n === root || n.startsWith(`${root}/`))]),
  );
}

/**
 * Every filesystem and volume at or below each of `roots`, by root, in one `zfs list -r` call.
 * A root that does not exist is absent from the map (zfs names it on stderr; the call is made
 * again without it), so its own command reports it.
 */
export async function listTree(roots: readonly string[]): Promise<Map<string, string[]>> {
  let asked = [...roots];
  for (;;) {
    if (asked.length === 0) return new Map();
    try {
      return parseTree(asked, await zfsText(listTreeArgv(asked).slice(1)));
    } catch (err) {
      if (!(err instanceof ZfsError)) throw err;
      const left = asked.filter((r) => !saysNoSuchDataset(err.stderr, r));
      if (left.length === asked.length) throw err;
      asked = left;
    }
  }
}

/** The argv of the one call that lists `dataset`'s snapshots with GUID, txg and creation. */
export function listSnapshotsArgv(dataset: string): string[] {
  return zfs(
    "list",
    "-H",
    "-p",
    "-o",
    "name,guid,createtxg,creation",
    "-t",
    "snapshot",
    "-d",
    "1",
    dataset,
  );
}

/** The same for a zfs without `list -p` (zfs-fuse): one `zfs get -Hp`, the dataset included. */
export function getSnapshotsArgv(dataset: string): string[] {
  return zfs(
    "get",
    "-H",
    "-p",
    "-r",
    "-d",
    "1",
    "-o",
    "name,property,value",
    "guid,createtxg,creation",
    dataset,
  );
}

function snapshotOf(dataset: string, name: string, guid?: string, txg?: string, creation?: string) {
  if (!guid || !/^\d+$/.test(guid) || !/^\d+$/.test(txg ?? "") || !/^\d+$/.test(creation ?? "")) {
    throw new ZfsError(
      `Cannot read the guid, createtxg and creation of "${name}" from zfs: got ` +
        JSON.stringify([guid, txg, creation]),
    );
  }
  return {
    name,
    snapshot: name.slice(dataset.length + 1),
    guid,
    creation: Number(creation),
    createtxg: Number(txg),
  };
}

/**
 * The one order of snapshots in z3: oldest first by the transaction group each was created in
 * (`createtxg`, which a bookmark shares with its snapshot). Never by `creation`: two snapshots
 * taken in the same second have the same one. Sorts `snapshots` in place and returns it.
 */
export function inTxgOrder(snapshots: LocalSnapshot[]): LocalSnapshot[] {
  return snapshots.sort((a, b) => a.createtxg - b.createtxg);
}

/** Parses {@linkcode listSnapshotsArgv}'s output: `name TAB guid TAB createtxg TAB creation`. */
export function parseSnapshotList(dataset: string, text: string): LocalSnapshot[] {
  const out: LocalSnapshot[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [name, guid, txg, creation] = line.split("\t");
    if (!name.startsWith(`${dataset}@`)) continue;
    out.push(snapshotOf(dataset, name, guid, txg, creation));
  }
  return inTxgOrder(out);
}

/** Parses {@linkcode getSnapshotsArgv}'s output: `name TAB property TAB value`, one per line. */
export function parseSnapshotProps(dataset: string, text: string): LocalSnapshot[] {
  const byName = new Map<string, Record<string, string>>();
  for (const line of text.split("\n")) {
    const [name, property, value] = line.split("\t");
    if (!name?.startsWith(`${dataset}@`) || value === undefined) continue;
    const entry = byName.get(name) ?? {};
    entry[property] = value;
    byName.set(name, entry);
  }
  return inTxgOrder(
    [...byName].map(([name, p]) => snapshotOf(dataset, name, p.guid, p.createtxg, p.creation)),
  );
}

/** Whether this zfs takes `list -p`; learned from the first listing (zfs-fuse does not). */
let listTakesP: boolean | undefined;

/**
 * Lists the snapshots of `dataset` (not of its children), oldest first (by createtxg), with GUID
 * and creation time, in one zfs call, so a snapshot destroyed meanwhile is simply absent. On a
 * zfs without `list -p` (zfs-fuse, whose `list -o guid` prints a rounded `1.94E`), one
 * `zfs get -Hp` instead.
 */
export async function listSnapshots(dataset: string): Promise<LocalSnapshot[]> {
  validateDataset(dataset);
  if (listTakesP !== false) {
    try {
      const text = await zfsText(listSnapshotsArgv(dataset).slice(1));
      listTakesP = true;
      return parseSnapshotList(dataset, text);
    } catch (err) {
      if (!(err instanceof ZfsError) || !saysInvalidOption(err.stderr, "p")) throw err;
      listTakesP = false;
    }
  }
  return parseSnapshotProps(dataset, await zfsText(getSnapshotsArgv(dataset).slice(1)));
}

/**
 * The argv of `zfs send` for a full stream of `snapshot`, or an incremental from `from` (a
 * snapshot, or a bookmark `dataset#bm` of the same dataset), with
 * `flags` (validated short options from `send_flags.ts`, e.g. `-w`, `-L`) before them.
 */
export function sendArgv(snapshot: string, from?: string, flags: readonly string[] = []): string[] {
  parseSnapshot(snapshot);
  for (const f of flags) {
    if (!/^-[wLec]$/.test(f)) throw new ZfsError(`Cannot pass zfs send option "${f}"`);
  }
  if (from === undefined) return zfs("send", ...flags, snapshot);
  // From a bookmark (`dataset#bm`, OpenZFS) of the same dataset, or from a snapshot.
  if (from.includes("#")) {
    if (validateBookmark(from).split("#")[0] !== parseSnapshot(snapshot).dataset) {
      throw new ZfsError(`Cannot send "${snapshot}" from bookmark "${from}" of another dataset`);
    }
  } else parseSnapshot(from);
  return zfs("send", ...flags, "-i", from, snapshot);
}

/** Options for {@linkcode send}. */
export interface SendOptions extends ZfsStreamOptions {
  /** Send options (`-w`, `-L`, `-e`, `-c`). @default {[]} */
  flags?: readonly string[];
}

/** Starts `zfs send`; read `stdout`, then await `done` before trusting the bytes. */
export function send(snapshot: string, from?: string, options: SendOptions = {}): Child {
  return spawnChild(sendArgv(snapshot, from, options.flags), {
    signal: options.signal,
    makeError: zfsError,
  });
}

/** Options for {@linkcode sendThrough}. */
export interface SendThroughOptions extends SendOptions {
  /** The command `zfs send`'s stdout goes into, as its stdin (a compressor). */
  into: Stage;
}

/**
 * Starts `zfs send | into`, one pipe between the two that z3 does not read; read the pipeline's
 * stdout (`into`'s), then await `done` (both exited 0) before trusting the bytes.
 */
export async function sendThrough(
  snapshot: string,
  from: string | undefined,
  options: SendThroughOptions,
): Promise<ChildPipeline> {
  const argv = sendArgv(snapshot, from, options.flags);
  return await spawnPipeline([{ argv, makeError: zfsError }, options.into], {
    signal: options.signal,
  });
}

/** Options for {@linkcode receive}. */
export interface ReceiveOptions extends ZfsStreamOptions {
  /** Pass `-F`: roll the target back to its latest snapshot first. @default {false} */
  force?: boolean;
  /**
   * Pass `-u`: mount nothing received. zfs-fuse 0.7.0-25 takes `-u` although its usage line
   * (`receive [-vnF] <filesystem|volume|snapshot>`) does not list it (`-z` is refused as an
   * invalid option, `-u` is not), and receives unmounted with it; so does OpenZFS.
   * @default {false}
   */
  noMount?: boolean;
}

/** The argv of `zfs receive` into `target` (a dataset name). */
export function receiveArgv(
  target: string,
  options: { force?: boolean; noMount?: boolean } = {},
): string[] {
  validateDataset(target);
  const flags = [...(options.force ? ["-F"] : []), ...(options.noMount ? ["-u"] : [])];
  return zfs("receive", ...flags, target);
}

/**
 * Starts `zfs receive`; write the stream to `stdin`, close it, then await `done`. A failure
 * because the target changed since its latest snapshot says what to do next.
 */
export function receive(target: string, options: ReceiveOptions = {}): Child {
  return spawnChild(receiveArgv(target, options), {
    stdin: "piped",
    stdout: "null",
    signal: options.signal,
    makeError: (message, stderr) => {
      const hint = receiveHint(stderr);
      return new ZfsError(hint ? `${message} (${hint})` : message, { stderr });
    },
  });
}

/**
 * Estimated stream size in bytes from `zfs send -nvP`, or `undefined` where the local ZFS has
 * no dry-run sends (zfs-fuse) or prints nothing usable.
 */
export async function estimateSendSize(
  snapshot: string,
  from?: string,
  flags: readonly string[] = [],
): Promise<number | undefined> {
  const argv = sendArgv(snapshot, from, flags);
  argv.splice(2, 0, "-n", "-v", "-P");
  const child = spawnChild(argv, { makeError: zfsError });
  const out = await new Response(child.stdout).text();
  try {
    await child.done;
  } catch {
    return undefined; // no dry-run sends here (zfs-fuse): the uploader copes without a size
  }
  return parseSendEstimate(out, child.stderrTail().replaceAll("; ", "\n"));
}

/**
 * The total from `zfs send -nvP`'s output: its `size TAB N` line, on stdout or (older OpenZFS)
 * stderr; `undefined` when there is none.
 */
export function parseSendEstimate(stdout: string, stderr = ""): number | undefined {
  const m = /^size\t(\d+)$/m.exec(`${stdout}\n${stderr}`);
  return m ? Number(m[1]) : undefined;
}

/**
 * Creates `dataset` with `mountpoint=none`, inherited by everything received below it, so none
 * of it is mounted. `z3 verify --zfs` also receives below it with `zfs receive -u`; the inherited
 * `mountpoint=none` stays, as a second guard. Only for z3's own throwaway datasets.
 */
export async function createUnmounted(dataset: string): Promise<void> {
  validateDataset(dataset);
  await zfsText(["create", "-o", "mountpoint=none", dataset]);
}

/**
 * Destroys `dataset` and everything below it (`zfs destroy -r`). Only for datasets z3 made
 * itself (the throwaway target of `z3 verify --zfs`). zfs-fuse may call a freshly received
 * dataset busy for a moment, so "busy" is retried briefly.
 */
export async function destroyRecursive(dataset: string): Promise<void> {
  validateDataset(dataset);
  for (let attempt = 1;; attempt++) {
    try {
      await zfsText(["destroy", "-r", dataset]);
      return;
    } catch (err) {
      if (!(err instanceof ZfsError) || !saysBusy(err.stderr) || attempt >= 20) throw err;
      await sleep(250);
    }
  }
}

/**
 * Whether zfs's stderr says that property `name` does not exist here: libzfs's
 * `zprop_get_list()` ("bad property list: invalid property '%s'", lib/libzfs/libzfs_util.c),
 * which zfs-fuse prints too, for `encryption`.
 */
export function saysInvalidProperty(stderr: string, name: string): boolean {
  return stderr.split("\n").some((line) =>
    line === `bad property list: invalid property '${name}'`
  );
}

/** The argv that reads one property's raw value: `zfs get -H -p -o value NAME TARGET`. */
export function getPropertyArgv(name: string, target: string): string[] {
  return zfs("get", "-H", "-p", "-o", "value", name, target);
}

/**
 * `dataset`'s `encryption` property (`off`, `aes-256-gcm`, …). A zfs without the property
 * (zfs-fuse, ZFS before native encryption) has no encrypted datasets: `off`.
 */
export async function getEncryption(dataset: string): Promise<string> {
  validateDataset(dataset);
  try {
    const value = (await zfsText(getPropertyArgv("encryption", dataset).slice(1))).trim();
    if (!/^[a-z0-9-]+$/.test(value)) {
      throw new ZfsError(`Cannot read the encryption of "${dataset}" from zfs: got "${value}"`);
    }
    return value;
  } catch (err) {
    if (err instanceof ZfsError && saysInvalidProperty(err.stderr, "encryption")) return "off";
    throw err;
  }
}

/** The argv of the one call that reads the `userrefs` of every snapshot of `dataset`. */
export function userRefsArgv(dataset: string): string[] {
  return zfs("get", "-H", "-p", "-r", "-d", "1", "-o", "name,value", "userrefs", dataset);
}

/** `zfs get userrefs` output → each snapshot's count (the dataset's own `-` line skipped). */
export function parseUserRefs(dataset: string, text: string): Map<string, number> {
  const refs = new Map<string, number>();
  for (const line of text.split("\n")) {
    const [name, value] = line.split("\t");
    if (!name?.startsWith(`${dataset}@`)) continue;
    if (!/^\d+$/.test(value ?? "")) {
      throw new ZfsError(`Cannot read the userrefs of "${name}" from zfs: got "${value}"`);
    }
    refs.set(name, Number(value));
  }
  return refs;
}

/**
 * The snapshots of `dataset` with at least one user hold, and how many (`userrefs`, every
 * tool's holds: zfs-fuse cannot list hold tags), oldest name first as zfs prints them.
 */
export async function heldSnapshots(dataset: string): Promise<Map<string, number>> {
  validateDataset(dataset);
  let text: string;
  try {
    text = await zfsText(userRefsArgv(dataset).slice(1));
  } catch (err) {
    // A dataset only in the bucket (`status --all` on a new host) holds nothing here.
    if (err instanceof ZfsError && saysNoSuchDataset(err.stderr, dataset)) return new Map();
    throw err;
  }
  const refs = parseUserRefs(dataset, text);
  return new Map([...refs].filter(([, n]) => n > 0));
}

/** A hold tag z3 may pass: no leading `-`, printable, short (OpenZFS: "tag too long"). */
function validateTag(tag: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(tag) || tag.startsWith("-")) {
    throw new ZfsError(`Cannot use hold tag ${JSON.stringify(tag)}`);
  }
  return tag;
}

/** The argv of `zfs hold TAG SNAPSHOT`. */
export function holdArgv(tag: string, snapshot: string): string[] {
  parseSnapshot(snapshot);
  return zfs("hold", validateTag(tag), snapshot);
}

/** The argv of `zfs release TAG SNAPSHOT`. */
export function releaseArgv(tag: string, snapshot: string): string[] {
  parseSnapshot(snapshot);
  return zfs("release", validateTag(tag), snapshot);
}

/**
 * `zfs hold TAG SNAPSHOT`. A hold with that tag already there is success: libzfs's
 * EZFS_REFTAG_HOLD, "tag already exists on this dataset" (lib/libzfs/libzfs_util.c; zfs-fuse
 * prints the same).
 */
export async function hold(tag: string, snapshot: string): Promise<void> {
  try {
    await zfsText(holdArgv(tag, snapshot).slice(1));
  } catch (err) {
    if (err instanceof ZfsError && /: tag already exists on this dataset$/m.test(err.stderr)) {
      return;
    }
    throw err;
  }
}

/**
 * `zfs release TAG SNAPSHOT`. No such hold, or no such snapshot any more, is success (libzfs's
 * EZFS_REFTAG_RELE, "no such tag on this dataset"; "dataset does not exist").
 */
export async function release(tag: string, snapshot: string): Promise<void> {
  try {
    await zfsText(releaseArgv(tag, snapshot).slice(1));
  } catch (err) {
    if (
      err instanceof ZfsError &&
      /: (no such tag on this dataset|dataset does not exist)$/m.test(err.stderr)
    ) return;
    throw err;
  }
}

/** A bookmark as `zfs list -t bookmark` shows it. */
export interface LocalBookmark {
  /** Full name, `pool/fs#bm`. */
  name: string;
  /** The short name after `#`. */
  bookmark: string;
  /** GUID of the snapshot it was made from (decimal). */
  guid: string;
  /** That snapshot's `createtxg` (a bookmark keeps it: its place among the snapshots). */
  createtxg: number;
  /** Creation time of that snapshot, seconds since the epoch. */
  creation: number;
}

/**
 * The argv that lists `dataset`'s bookmarks with GUID, createtxg and creation (OpenZFS has all
 * three for bookmarks: `ZFS_TYPE_BOOKMARK` in their `zprop_register_number` calls,
 * module/zcommon/zfs_prop.c, openzfs/zfs commit 00cb9c5b as stored by the search index).
 */
export function listBookmarksArgv(dataset: string): string[] {
  validateDataset(dataset);
  // `-t` before `-p`: zfs-fuse then says `invalid type 'bookmark'` (not `invalid option 'p'`).
  return zfs(
    "list",
    "-H",
    "-t",
    "bookmark",
    "-p",
    "-o",
    "name,guid,createtxg,creation",
    "-d",
    "1",
    dataset,
  );
}

/** Parses {@linkcode listBookmarksArgv}'s output: `name TAB guid TAB createtxg TAB creation`. */
export function parseBookmarkList(dataset: string, text: string): LocalBookmark[] {
  const out: LocalBookmark[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [name, guid, txg, creation] = line.split("\t");
    if (!name.startsWith(`${dataset}#`)) continue;
    if (![guid, txg, creation].every((v) => /^\d+$/.test(v ?? ""))) {
      throw new ZfsError(
        `Cannot read the guid, createtxg and creation of "${name}" from zfs: got ` +
          JSON.stringify([guid, txg, creation]),
      );
    }
    out.push({
      name,
      bookmark: name.slice(dataset.length + 1),
      guid,
      createtxg: Number(txg),
      creation: Number(creation),
    });
  }
  return out;
}

/** Whether zfs's stderr says it has no bookmarks at all (zfs-fuse: `invalid type 'bookmark'`). */
export function saysNoBookmarks(stderr: string): boolean {
  return stderr.split("\n").some((line) => line === "invalid type 'bookmark'");
}

/** `dataset`'s bookmarks; undefined when this zfs has none (zfs-fuse). */
export async function listBookmarks(dataset: string): Promise<LocalBookmark[] | undefined> {
  try {
    return parseBookmarkList(dataset, await zfsText(listBookmarksArgv(dataset).slice(1)));
  } catch (err) {
    if (err instanceof ZfsError && saysNoBookmarks(err.stderr)) return undefined;
    throw err;
  }
}

/** A bookmark's full name z3 may pass: `dataset#name`, name of ZFS's component characters. */
function validateBookmark(bookmark: string): string {
  const at = bookmark.indexOf("#");
  if (at < 0 || !/^[A-Za-z0-9_.:-]{1,200}$/.test(bookmark.slice(at + 1))) {
    throw new ZfsError(`Cannot use bookmark ${JSON.stringify(bookmark)}`);
  }
  validateDataset(bookmark.slice(0, at));
  return bookmark;
}

/** The argv of `zfs bookmark SNAPSHOT BOOKMARK`. */
export function bookmarkArgv(snapshot: string, bookmark: string): string[] {
  parseSnapshot(snapshot);
  return zfs("bookmark", snapshot, validateBookmark(bookmark));
}

/**
 * Whether zfs refused a bookmark because the pool lacks the feature: OpenZFS's
 * zfs_do_bookmark() (cmd/zfs/zfs_main.c at openzfs/zfs 3fcd6197) prints
 * "cannot create bookmark '%s'" + ": %s" with "bookmark feature not enabled" on ENOTSUP.
 */
export function saysBookmarkFeatureOff(stderr: string): boolean {
  return /^cannot create bookmark '[^'\n]*': bookmark feature not enabled$/m.test(stderr);
}

/** `zfs bookmark SNAPSHOT BOOKMARK`; false when the pool lacks feature `bookmarks`. */
export async function bookmark(snapshot: string, bookmark: string): Promise<boolean> {
  try {
    await zfsText(bookmarkArgv(snapshot, bookmark).slice(1));
    return true;
  } catch (err) {
    if (err instanceof ZfsError && saysBookmarkFeatureOff(err.stderr)) return false;
    throw err;
  }
}

/** The argv of `zfs destroy BOOKMARK` (only ever a `#` name: never a dataset or snapshot). */
export function destroyBookmarkArgv(bookmark: string): string[] {
  return zfs("destroy", validateBookmark(bookmark));
}

/** `zfs destroy BOOKMARK`. */
export async function destroyBookmark(bookmark: string): Promise<void> {
  await zfsText(destroyBookmarkArgv(bookmark).slice(1));
}

/** The argv that reads `dataset`'s local properties: `zfs get -H -p -s local -o property,value all`. */
export function getLocalPropertiesArgv(dataset: string): string[] {
  validateDataset(dataset);
  return zfs("get", "-H", "-p", "-s", "local", "-o", "property,value", "all", dataset);
}

/** A property name z3 may pass to `zfs set`: ZFS's characters, no leading `-`. */
export function validPropertyName(name: string): boolean {
  return /^[a-z0-9][a-z0-9_.:@-]{0,255}$/i.test(name);
}

/** Parses {@linkcode getLocalPropertiesArgv}'s output: `property TAB value`, one a line. */
export function parseLocalProperties(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const tab = line.indexOf("\t");
    const name = line.slice(0, tab);
    if (tab < 0 || !validPropertyName(name)) {
      throw new ZfsError(`Cannot read a local property from zfs: got ${JSON.stringify(line)}`);
    }
    out[name] = line.slice(tab + 1);
  }
  return out;
}

/** `dataset`'s local properties (set on it, not inherited or default). */
export async function getLocalProperties(dataset: string): Promise<Record<string, string>> {
  return parseLocalProperties(await zfsText(getLocalPropertiesArgv(dataset).slice(1)));
}

/** The argv of `zfs set NAME=VALUE DATASET`. */
export function setPropertyArgv(dataset: string, name: string, value: string): string[] {
  validateDataset(dataset);
  if (!validPropertyName(name) || value.includes("\n")) {
    throw new ZfsError(`Cannot set property ${JSON.stringify(name)}=${JSON.stringify(value)}`);
  }
  return zfs("set", `${name}=${value}`, dataset);
}

/** `zfs set NAME=VALUE DATASET`. */
export async function setProperty(dataset: string, name: string, value: string): Promise<void> {
  await zfsText(setPropertyArgv(dataset, name, value).slice(1));
}
