/**
 * Compressors by the names stored in object metadata. `gzip` runs in-process; `zstd` and `lz4`
 * run the Debian commands (`zstd` falls back to `node:zlib`'s zstd, same format, where the
 * command is missing or not permitted); `pigz1` / `pigz4` (the original z3's names) write gzip streams with
 * `pigz` when installed and read back in-process, so old backups restore without pigz.
 *
 * @module
 */

import { CommandError, UsageError, Z3Error } from "../base/errors.ts";
import { spawnChild } from "../exec/process.ts";
import type { Stage } from "../exec/pipeline.ts";
import { Duplex } from "node:stream";
import { constants as zlibConstants, createZstdCompress, createZstdDecompress } from "node:zlib";

/** Names accepted for new backups and found in old metadata. */
export const COMPRESSORS = ["none", "gzip", "zstd", "lz4", "pigz1", "pigz4"] as const;

/** A transformed stream and the promise that says whether the transform succeeded. */
export interface Piped {
  stream: ReadableStream<Uint8Array>;
  /** Rejects if the helper command failed; await before trusting `stream`'s end. */
  done: Promise<void>;
}

const COMPRESS_ARGV: Record<string, string[]> = {
  zstd: ["zstd", "-1", "-T0", "-q", "-c"],
  lz4: ["lz4", "-1", "-q", "-c"],
  pigz1: ["pigz", "-1", "-c"],
  pigz4: ["pigz", "-4", "-c"],
};

const DECOMPRESS_ARGV: Record<string, string[]> = {
  zstd: ["zstd", "-d", "-q", "-c"],
  lz4: ["lz4", "-d", "-q", "-c"],
};

const GZIP_FAMILY = new Set(["gzip", "pigz1", "pigz4"]);

/** The argv of the compress step for `name` (for dry runs), or a description. */
export function compressCommand(name: string): string[] | undefined {
  if (name === "none") return undefined;
  if (name === "gzip") return ["(in-process gzip)"];
  return COMPRESS_ARGV[name];
}

/** The CommandError of a helper command, with the package to install when it is missing. */
function helperError(command: string): (message: string) => CommandError {
  return (m) =>
    new CommandError(`${m}${/not found/.test(m) ? ` (install the ${command} package)` : ""}`);
}

/**
 * The compress step for `name` as a command that can take `zfs send`'s stdout directly (`zstd`,
 * `lz4`, `pigz1`, `pigz4`), or `undefined` where it runs in-process (`none`, `gzip`). A failure is
 * a CommandError naming the command.
 */
export function compressStage(name: string): Stage | undefined {
  const argv = COMPRESS_ARGV[checkCompressor(name)];
  return argv ? { argv, makeError: helperError(argv[0]) } : undefined;
}

/** Whether `err` says the helper could not start because it is missing or not permitted. */
export function helperMissing(err: unknown): boolean {
  return err instanceof CommandError && /not found|not permitted/.test(err.message);
}

function throughChild(
  argv: string[],
  source: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): Piped {
  const child = spawnChild(argv, {
    stdin: "piped",
    signal,
    makeError: helperError(argv[0]),
  });
  const pump = source.pipeTo(child.stdin!, { signal });
  pump.catch(() => child.kill());
  const done = Promise.all([pump, child.done]).then(() => {});
  done.catch(() => {});
  return { stream: child.stdout!, done };
}

function inProcess(
  source: ReadableStream<Uint8Array>,
  transform: CompressionStream | DecompressionStream | TransformStream<Uint8Array, Uint8Array>,
  what: string,
): Piped {
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => {});
  const reader = source.pipeThrough(transform as unknown as TransformStream<Uint8Array, Uint8Array>)
    .getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const r = await reader.read();
        if (r.done) {
          settle.resolve();
          controller.close();
        } else controller.enqueue(r.value);
      } catch (err) {
        // A failure of the input (an object that did not verify) keeps its own error and code.
        const e = err instanceof Z3Error
          ? err
          : new CommandError(`Cannot ${what}: ${(err as Error).message}`);
        settle.reject(e);
        controller.error(e);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return { stream, done };
}

/** zstd through `node:zlib`, for hosts without the `zstd` command (same format, level 1). */
function zstdInProcess(source: ReadableStream<Uint8Array>, mode: "compress" | "decompress"): Piped {
  const codec = mode === "compress"
    ? createZstdCompress({ params: { [zlibConstants.ZSTD_c_compressionLevel]: 1 } })
    : createZstdDecompress();
  const web = Duplex.toWeb(codec) as unknown as TransformStream<Uint8Array, Uint8Array>;
  const what = mode === "compress"
    ? "zstd-compress (in-process)"
    : "zstd-decompress (corrupt or not a zstd stream?)";
  return inProcess(source, web, what);
}

/** Runs `argv`, or `fallback` when the command is not installed (or not permitted). */
function childOr(
  argv: string[],
  source: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
  fallback?: () => Piped,
): Piped {
  if (!fallback) return throughChild(argv, source, signal);
  try {
    return throughChild(argv, source, signal);
  } catch (err) {
    if (helperMissing(err)) return fallback();
    throw err;
  }
}

/** The compressor's canonical name; throws a UsageError for one z3 does not know. */
export function checkCompressor(name: string | undefined): string {
  const n = (name ?? "none").toLowerCase();
  if (!(COMPRESSORS as readonly string[]).includes(n)) {
    throw new UsageError(
      `Cannot use compressor ${JSON.stringify(name)}: expected one of ${COMPRESSORS.join(", ")}`,
    );
  }
  return n;
}

/** Compresses `source` with compressor `name`. */
export function compress(
  name: string,
  source: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): Piped {
  const n = checkCompressor(name);
  if (n === "none") return { stream: source, done: Promise.resolve() };
  if (n === "gzip") return inProcess(source, new CompressionStream("gzip"), "gzip-compress");
  const fallback = n === "zstd" ? () => zstdInProcess(source, "compress") : undefined;
  return childOr(COMPRESS_ARGV[n], source, signal, fallback);
}

/** Undoes compressor `name` (as read from metadata; absent means none). */
export function decompress(
  name: string | undefined,
  source: ReadableStream<Uint8Array>,
  signal?: AbortSignal,
): Piped {
  const n = checkCompressor(name);
  if (n === "none") return { stream: source, done: Promise.resolve() };
  if (GZIP_FAMILY.has(n)) {
    return inProcess(
      source,
      new DecompressionStream("gzip"),
      "gunzip (corrupt or not a gzip stream?)",
    );
  }
  const fallback = n === "zstd" ? () => zstdInProcess(source, "decompress") : undefined;
  return childOr(DECOMPRESS_ARGV[n], source, signal, fallback);
}
