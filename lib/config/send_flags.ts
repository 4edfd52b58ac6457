/**
 * Pure: the `zfs send` options z3 passes, how they are recorded on each object (`z3-send-flags`)
 * and the rules a chain of objects must keep.
 *
 * - `SEND_FLAGS` takes `-L` (large blocks), `-e` (embedded data) and `-c` (compressed), alone or
 *   together (`-Lc`, `-L -c`, `--large-block,--compressed`); anything else is a usage error.
 * - `-w` (raw) is never configured: z3 adds it itself when the dataset's `encryption` is not
 *   `off`. OpenZFS's `zfs send -w` implies `-L`, `-c` and `-e` (cmd/zfs/zfs_main.c, `case 'w'`
 *   sets largeblock, compress and embed_data too), so a raw object counts as `-L`.
 * - An incremental must keep its chain's large-block setting and its raw-ness: OpenZFS refuses
 *   "incremental send stream requires -L (--large-block), to match previous receive." and a raw
 *   stream on top of an unencrypted dataset (lib/libzfs/libzfs_sendrecv.c, zfs_receive_one).
 *
 * @module
 */

import { ChainError, IntegrityError, UsageError } from "../base/errors.ts";

/** Metadata key of the send options an object's stream was made with. */
export const SEND_FLAGS_META = "z3-send-flags";

/** The options `SEND_FLAGS` may hold, in the order z3 writes them, with their long names. */
const CONFIGURABLE: Readonly<Record<string, string>> = {
  "-L": "--large-block",
  "-e": "--embed",
  "-c": "--compressed",
};

/** Every option an object's `z3-send-flags` may name (`-w` is z3's own). */
const RECORDED = ["-w", "-L", "-e", "-c"];

function inOrder(flags: Iterable<string>): string[] {
  const set = new Set(flags);
  return RECORDED.filter((f) => set.has(f));
}

/**
 * Parses a `SEND_FLAGS` value into canonical short options (`["-L", "-c"]`); `""` is none.
 * Throws a {@linkcode UsageError} naming the first option z3 does not take.
 */
export function parseSendFlags(value: string, source = "SEND_FLAGS"): string[] {
  const out: string[] = [];
  for (const word of value.split(/[\s,]+/).filter((w) => w !== "")) {
    const long = Object.entries(CONFIGURABLE).find(([, l]) => l === word);
    if (long) {
      out.push(long[0]);
      continue;
    }
    if (!/^-[A-Za-z]+$/.test(word)) throw badFlag(value, source, word);
    for (const letter of word.slice(1)) {
      const flag = `-${letter}`;
      if (!(flag in CONFIGURABLE)) throw badFlag(value, source, flag);
      out.push(flag);
    }
  }
  return inOrder(out);
}

function badFlag(value: string, source: string, word: string): UsageError {
  return new UsageError(
    `Cannot parse SEND_FLAGS ${JSON.stringify(value)} from ${source}: ${
      JSON.stringify(word)
    } is not one of -L (--large-block), -e (--embed), -c (--compressed)`,
  );
}

/** The options of one send: `-w` first when `raw`, then the configured ones. */
export function sendOptions(configured: readonly string[], raw: boolean): string[] {
  return inOrder(raw ? ["-w", ...configured] : configured);
}

/** The metadata value for `flags` (`"-w -L"`), or `undefined` when there are none. */
export function formatSendFlags(flags: readonly string[]): string | undefined {
  return flags.length === 0 ? undefined : inOrder(flags).join(" ");
}

/**
 * Reads an object's `z3-send-flags` (untrusted: from the bucket). Absent means none (objects of
 * the original z3 and of z3 before this option were sent without any). An option z3 never
 * writes is an {@linkcode IntegrityError}: z3 cannot know how to receive such a stream.
 */
export function readSendFlags(name: string, metadata: Record<string, string>): string[] {
  const value = metadata[SEND_FLAGS_META];
  if (value === undefined) return [];
  const words = value.trim() === "" ? [] : value.trim().split(/\s+/);
  for (const word of words) {
    if (!RECORDED.includes(word)) {
      throw new IntegrityError(
        `Cannot use "${name}": its ${SEND_FLAGS_META} ${JSON.stringify(value)} names ${
          JSON.stringify(word)
        }, which z3 does not write`,
      );
    }
  }
  return inOrder(words);
}

/** Whether a stream made with `flags` is raw (`-w`). */
export function isRaw(flags: readonly string[]): boolean {
  return flags.includes("-w");
}

/** Whether a stream made with `flags` carries large blocks (`-L`, or `-w`, which implies it). */
export function isLargeBlock(flags: readonly string[]): boolean {
  return flags.includes("-L") || flags.includes("-w");
}

/**
 * Throws a {@linkcode ChainError} unless an incremental sent with `next` may follow `base`
 * (the object it builds on, sent with `previous`): the same large-block setting and the same
 * raw-ness. The message says to start a new full.
 */
export function checkIncrementalFlags(
  base: string,
  previous: readonly string[],
  next: readonly string[],
): void {
  const show = (f: readonly string[]) => f.length ? f.join(" ") : "no options";
  const why = isRaw(previous) !== isRaw(next)
    ? `it was sent ${isRaw(previous) ? "raw (-w)" : "not raw"} and this one would be ${
      isRaw(next) ? "raw (-w: the dataset is encrypted)" : "not raw"
    }; ZFS cannot receive a raw stream on top of a non-raw one, nor the reverse`
    : isLargeBlock(previous) !== isLargeBlock(next)
    ? `its large-block setting (-L) differs: recorded ${show(previous)}, now ${
      show(next)
    }; ZFS refuses "incremental send stream requires -L (--large-block), to match previous receive."`
    : undefined;
  if (why) {
    throw new ChainError(
      `Cannot send an incremental on top of "${base}": ${why}. Start a new chain with ` +
        `z3 backup --full, or set SEND_FLAGS back to ${JSON.stringify(show(previous))}`,
    );
  }
}

/**
 * Throws a {@linkcode ChainError} unless the objects `steps` (oldest first, with their flags) can
 * be received one after another into `target`, whose encryption is `targetEncrypted` (undefined
 * when it does not exist yet): the raw-ness may not change, neither along the objects nor from
 * the existing target to the first object.
 */
export function checkRestoreFlags(
  steps: readonly { name: string; flags: readonly string[] }[],
  target: string,
  targetEncrypted: boolean | undefined,
): void {
  let raw: boolean | undefined = targetEncrypted;
  let previous = targetEncrypted === undefined ? undefined : `"${target}" as it is`;
  for (const step of steps) {
    const now = isRaw(step.flags);
    if (raw !== undefined && now !== raw) {
      throw new ChainError(
        `Cannot restore "${step.name}" into "${target}": it is ${
          now ? "a raw (encrypted) stream" : "a non-raw stream"
        } on top of ${previous} (${raw ? "raw/encrypted" : "non-raw/unencrypted"}); ZFS refuses ` +
          `it ("Can't perform a raw receive on top of a non-raw receive", and the reverse). ` +
          `Restore into a new dataset from a full of the same kind (--target)`,
      );
    }
    raw = now;
    previous = `"${step.name}"`;
  }
}
