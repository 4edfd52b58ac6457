/**
 * The only module that runs `zfs`. Every call is an argv array built from validated names.
 * Written for, and tested on, both current OpenZFS and the old zfs-fuse (which lacks
 * `list -p`, `send -nvP`, resume tokens and raw sends): features it lacks degrade cleanly.
 *
 * @module
 */

import { ZfsError } from "./errors.ts";
import { parseSnapshot, validateDataset } from "./names.ts";
import { type Child, runText, spawnChild } from "./process.ts";

/** A snapshot as the local pool knows it. */
export interface LocalSnapshot {
  /** Full name, `pool/fs@snap`. */
  name: string;
  /** The short name after `@`. */
  snapshot: string;
  /** ZFS GUID as a decimal string (too large for a JS number). */
  guid: string;
  /** Creation time, seconds since the epoch. */
  creation: number;
}

/** Options shared by the calls that start a long-running `zfs` child. */
export interface ZfsStreamOptions {
  /** Aborting kills the child. */
  signal?: AbortSignal;
}

const zfsError = (message: string) => new ZfsError(message);

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

/** True when `dataset` exists (any type). */
export async function datasetExists(dataset: string): Promise<boolean> {
  validateDataset(dataset);
  try {
    await zfsText(["list", "-H", "-o", "name", dataset]);
    return true;
  } catch (err) {
    if (err instanceof ZfsError && /does not exist/.test(err.message)) return false;
    throw err;
  }
}

/**
 * Lists the snapshots of `dataset` (not of its children), oldest first, with GUID and creation
 * time. GUIDs come from `zfs get -Hp` because zfs-fuse's `zfs list -o guid` rounds them.
 */
export async function listSnapshots(dataset: string): Promise<LocalSnapshot[]> {
  validateDataset(dataset);
  const order =
    (await zfsText(["list", "-H", "-r", "-d", "1", "-t", "snapshot", "-o", "name", dataset]))
      .split("\n").filter((line) => line.startsWith(`${dataset}@`));
  if (order.length === 0) return [];
  const props = await zfsText([
    "get",
    "-H",
    "-p",
    "-r",
    "-d",
    "1",
    "-o",
    "name,property,value",
    "guid,creation",
    dataset,
  ]);
  const byName = new Map<string, { guid?: string; creation?: number }>();
  for (const line of props.split("\n")) {
    const [name, property, value] = line.split("\t");
    if (!name?.startsWith(`${dataset}@`)) continue;
    const entry = byName.get(name) ?? {};
    if (property === "guid") entry.guid = value;
    if (property === "creation") entry.creation = Number(value);
    byName.set(name, entry);
  }
  return order.map((name) => {
    const entry = byName.get(name);
    if (!entry?.guid || !/^\d+$/.test(entry.guid) || !Number.isFinite(entry.creation)) {
      throw new ZfsError(`Cannot read guid and creation of "${name}" from zfs get`);
    }
    return {
      name,
      snapshot: name.slice(dataset.length + 1),
      guid: entry.guid,
      creation: entry.creation!,
    };
  });
}

/** The argv of `zfs send` for a full stream of `snapshot`, or an incremental from `from`. */
export function sendArgv(snapshot: string, from?: string): string[] {
  parseSnapshot(snapshot);
  if (from === undefined) return zfs("send", snapshot);
  parseSnapshot(from);
  return zfs("send", "-i", from, snapshot);
}

/** Starts `zfs send`; read `stdout`, then await `done` before trusting the bytes. */
export function send(snapshot: string, from?: string, options: ZfsStreamOptions = {}): Child {
  return spawnChild(sendArgv(snapshot, from), { signal: options.signal, makeError: zfsError });
}

/** Options for {@linkcode receive}. */
export interface ReceiveOptions extends ZfsStreamOptions {
  /** Pass `-F`: roll the target back to its latest snapshot first. @default {false} */
  force?: boolean;
}

/** The argv of `zfs receive` into `target` (a dataset name). */
export function receiveArgv(target: string, force = false): string[] {
  validateDataset(target);
  return force ? zfs("receive", "-F", target) : zfs("receive", target);
}

/** Starts `zfs receive`; write the stream to `stdin`, close it, then await `done`. */
export function receive(target: string, options: ReceiveOptions = {}): Child {
  return spawnChild(receiveArgv(target, options.force), {
    stdin: "piped",
    stdout: "null",
    signal: options.signal,
    makeError: zfsError,
  });
}

/**
 * Estimated stream size in bytes from `zfs send -nvP`, or `undefined` where the local ZFS has
 * no dry-run sends (zfs-fuse) or prints nothing usable.
 */
export async function estimateSendSize(
  snapshot: string,
  from?: string,
): Promise<number | undefined> {
  const argv = sendArgv(snapshot, from);
  argv.splice(2, 0, "-n", "-v", "-P");
  const child = spawnChild(argv, { makeError: zfsError });
  const out = await new Response(child.stdout).text();
  try {
    await child.done;
  } catch {
    return undefined; // no dry-run sends here (zfs-fuse): the uploader copes without a size
  }
  // OpenZFS prints the parseable summary on stdout or stderr depending on version.
  const m = /^size\s+(\d+)$/m.exec(`${out}\n${child.stderrTail().replaceAll("; ", "\n")}`);
  return m ? Number(m[1]) : undefined;
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
      if (!(err instanceof ZfsError) || !/busy/.test(err.message) || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
