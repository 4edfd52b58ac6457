/**
 * An OpenZFS 2.x stand-in for integration runs: a `zfs` (through `Z3_ZFS_COMMAND`) that passes
 * the real work to zfs-fuse's `zfs` but speaks 2.x where zfs-fuse differs. Run as
 * `deno run openzfs_shim.ts STATE_FILE ZFS_ARGS...` by the wrapper {@linkcode openzfsShim}
 * writes; every run appends its argv to the log the test reads.
 *
 * What it does like 2.x (every text quoted from openzfs/zfs as the search index stores it:
 * lib/libzfs/libzfs_sendrecv.c at commit 97f39af3, cmd/zfs/zfs_main.c at 3fcd6197; which
 * release tag holds those commits could not be read there):
 * - `send` takes `-w`, `-L`, `-c`, `-e` (cmd/zfs/zfs_main.c, zfs_do_send's getopt), records them
 *   and strips them before zfs-fuse sends (so the bytes are zfs-fuse's plain stream).
 * - `send` of a dataset whose `encryption` is not off, without `-w`, fails as a send whose key
 *   is not loaded does: "warning: cannot send '%s'" + ": dataset key must be loaded"
 *   (libzfs_sendrecv.c at 97f39af3, EACCES in zfs_send_one_cb_impl()'s error switch).
 * - `send -n -v -P` prints `full\t%s\t%llu` or `incremental\t%s\t%s\t%llu`, then `size\t%llu`, on
 *   stdout (libzfs_sendrecv.c, send_print_verbose() and the "size\t%llu\n" after it; `fout` is
 *   stdout for a verbose dry run), from the real stream's size times `estimateFactor`.
 * - `get -H -p -o value encryption DS` answers from the state file (default `off`, as 2.x does
 *   for an unencrypted dataset).
 * - `receive -w` fails: 2.x's receive has no `-w` (zfs_main.c usage: "receive [-vMnsFhu] ...";
 *   getopt's "invalid option '%c'"). A raw stream (one this shim sent with `-w`) received as an
 *   incremental into a dataset whose `encryption` is off fails with "cannot receive incremental
 *   stream: cannot perform raw receive on top of existing unencrypted dataset"
 *   (libzfs_sendrecv.c, zfs_receive_one); a raw full makes its target encrypted in the state.
 * - Bookmarks, which zfs-fuse lacks, live only in the state file: `bookmark SNAP DS#BM` records
 *   the snapshot's real GUID, createtxg and creation; `list -t bookmark -o COLUMNS` prints the
 *   asked ones of `name`, `guid`, `createtxg` (the snapshot's, as 2.x's bookmarks keep it) and
 *   `creation`; `destroy DS#BM` forgets one; `send -i DS#BM SNAP` sends from the bookmark's
 *   snapshot. With `bookmarkFeature: false`, `bookmark` fails with "cannot create bookmark
 *   '%s': bookmark feature not enabled" (zfs_do_bookmark, ENOTSUP). The simulation of a
 *   destroyed snapshot is that it is hidden
 *   (`ShimState.hidden`) from `list` and `get` output but really stays in zfs-fuse, so the
 *   incremental from its bookmark is zfs-fuse's incremental from that snapshot: the same
 *   changes a real bookmark-based send carries, not a test of OpenZFS's bookmark code itself.
 *
 * @module
 */

/** The first `n` bytes of `stream` (fewer at its end) and a stream of the rest. */
async function peek(stream: ReadableStream<Uint8Array>, n: number) {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let have = 0;
  while (have < n) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    have += value.length;
  }
  const all = new Uint8Array(have);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const bytes = all.subarray(0, Math.min(n, have));
  const leftover = all.subarray(bytes.length);
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      if (leftover.length > 0) controller.enqueue(leftover);
    },
    async pull(controller) {
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
  });
  return { bytes, rest };
}

/** The state file the test and the shim share. */
export interface ShimState {
  /** The real zfs (zfs-fuse's). */
  real: string;
  /** Log file: one JSON line per run, `{"argv": [...]}` (and `"received"` for a receive). */
  log: string;
  /** `encryption` by dataset name; absent: `off`. */
  encryption: Record<string, string>;
  /** `send -nvP` reports the real size times this. @default {1} */
  estimateFactor?: number;
  /** Snapshots this shim sent raw (`-w`), by full name. */
  rawSent?: Record<string, true>;
  /** Bookmarks by full name (`ds#bm`): the snapshot made from, its GUID, createtxg, creation. */
  bookmarks?: Record<string, ShimBookmark>;
  /** False: `bookmark` fails as on a pool without feature `bookmarks`. @default {true} */
  bookmarkFeature?: boolean;
  /** Snapshots `list` and `get` no longer show, as if destroyed (they stay in zfs-fuse). */
  hidden?: string[];
}

/** A bookmark in the shim's state: what 2.x's `list -t bookmark` would print of it. */
export interface ShimBookmark {
  snapshot: string;
  guid: string;
  createtxg: string;
  creation: string;
}

/** One line of the shim's log. */
export interface ShimLogLine {
  argv: string[];
  /** For a receive: the stream's snapshot (from its BEGIN record) and whether it went raw. */
  received?: { toname: string; raw: boolean; incremental: boolean };
}

const SEND_OPTIONS = new Set(["w", "L", "c", "e", "n", "v", "P"]);

async function main(): Promise<number> {
  const [statePath, ...args] = Deno.args;
  const state = JSON.parse(await Deno.readTextFile(statePath)) as ShimState;
  const log = async (line: ShimLogLine) =>
    await Deno.writeTextFile(state.log, JSON.stringify(line) + "\n", { append: true });
  const save = async () => await Deno.writeTextFile(statePath, JSON.stringify(state));
  const fail = (text: string, code = 1) => {
    console.error(text);
    return code;
  };
  const [command, ...rest] = args;
  const bookmarks = state.bookmarks ??= {};
  if (command === "bookmark" && rest.length === 2) {
    await log({ argv: args });
    const [snapshot, name] = rest;
    if (state.bookmarkFeature === false) {
      return fail(`cannot create bookmark '${name}': bookmark feature not enabled`);
    }
    if (bookmarks[name]) return fail(`cannot create bookmark '${name}': bookmark exists`);
    const prop = async (p: string) => {
      const out = await new Deno.Command(state.real, {
        args: ["get", "-H", "-p", "-o", "value", p, snapshot],
        stdout: "piped",
        stderr: "inherit",
      }).output();
      return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
    };
    const guid = await prop("guid");
    const createtxg = await prop("createtxg");
    const creation = await prop("creation");
    if (guid === undefined || createtxg === undefined || creation === undefined) return 1;
    bookmarks[name] = { snapshot, guid, createtxg, creation };
    await save();
    return 0;
  }
  if (command === "list" && rest.includes("bookmark")) {
    await log({ argv: args });
    const dataset = rest[rest.length - 1];
    const columns = (rest[rest.indexOf("-o") + 1] ?? "name").split(",");
    for (const [name, b] of Object.entries(bookmarks)) {
      if (!name.startsWith(`${dataset}#`)) continue;
      const field = { name, ...b } as Record<string, string>;
      console.log(columns.map((c) => field[c] ?? "-").join("\t"));
    }
    return 0;
  }
  if (command === "destroy" && rest.length === 1 && rest[0].includes("#")) {
    await log({ argv: args });
    if (!bookmarks[rest[0]]) return fail(`cannot destroy '${rest[0]}': bookmark does not exist`);
    delete bookmarks[rest[0]];
    await save();
    return 0;
  }
  if (command === "get" && rest.length === 6 && rest.slice(0, 4).join(" ") === "-H -p -o value") {
    const [property, target] = rest.slice(4);
    if (property === "encryption") {
      await log({ argv: args });
      const exists = await new Deno.Command(state.real, {
        args: ["list", "-H", "-o", "name", target],
        stdout: "null",
        stderr: "inherit",
      }).output();
      if (!exists.success) return exists.code;
      console.log(state.encryption[target] ?? "off");
      return 0;
    }
  }
  if ((command === "list" || command === "get") && (state.hidden ?? []).length > 0) {
    await log({ argv: args });
    const out = await new Deno.Command(state.real, { args, stdout: "piped", stderr: "inherit" })
      .output();
    const hidden = new Set(state.hidden);
    const lines = new TextDecoder().decode(out.stdout).split("\n");
    const shown = lines.filter((l) => !hidden.has(l.split("\t")[0]));
    await Deno.stdout.write(new TextEncoder().encode(shown.join("\n")));
    return out.code;
  }
  if (command === "send") {
    await log({ argv: args });
    const seen = new Set<string>();
    const passed: string[] = [];
    let snapshot: string | undefined;
    let from: string | undefined;
    for (let i = 0; i < rest.length; i++) {
      const a = rest[i];
      if (a === "-i") {
        from = rest[++i];
        const mark = bookmarks[from];
        if (from.includes("#") && !mark) {
          return fail(`cannot open '${from}': dataset does not exist`);
        }
        passed.push("-i", mark ? mark.snapshot : from);
      } else if (/^-[A-Za-z]+$/.test(a)) {
        for (const letter of a.slice(1)) {
          if (!SEND_OPTIONS.has(letter)) return fail(`invalid option '${letter}'`, 2);
          seen.add(letter);
        }
      } else snapshot = a;
    }
    if (snapshot === undefined) return fail("missing snapshot argument", 2);
    const dataset = snapshot.split("@")[0];
    const encryption = state.encryption[dataset] ?? "off";
    if (encryption !== "off" && !seen.has("w")) {
      return fail(`warning: cannot send '${snapshot}': dataset key must be loaded`);
    }
    if (seen.has("n")) {
      if (!seen.has("v") || !seen.has("P")) return 0;
      const real = new Deno.Command(state.real, {
        args: ["send", ...passed, snapshot],
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      let bytes = 0;
      for await (const chunk of real.stdout) bytes += chunk.length;
      const status = await real.status;
      if (!status.success) return status.code;
      const size = Math.round(bytes * (state.estimateFactor ?? 1));
      const head = from === undefined ? `full\t${snapshot}` : `incremental\t${from}\t${snapshot}`;
      console.log(`${head}\t${size}\nsize\t${size}`);
      return 0;
    }
    if (seen.has("w")) {
      state.rawSent = { ...state.rawSent, [snapshot]: true };
      await save();
    }
    return (await new Deno.Command(state.real, { args: ["send", ...passed, snapshot] }).spawn()
      .status).code;
  }
  if (command === "receive" || command === "recv") {
    for (const a of rest) {
      if (/^-[A-Za-z]*w/.test(a)) {
        await log({ argv: args });
        return fail("invalid option 'w'\nusage:\n\treceive [-vMnsFhu] ...", 2);
      }
    }
    const target = rest[rest.length - 1];
    // The BEGIN record: drr_type, drr_payloadlen, then drr_begin (magic, versioninfo,
    // creation_time, type, flags, toguid, fromguid, toname[256]): toname at byte 56.
    const head = await peek(Deno.stdin.readable, 312);
    const toname = new TextDecoder().decode(head.bytes.subarray(56, 312)).replace(/\0.*$/s, "");
    const fromguid = head.bytes.length >= 56
      ? new DataView(head.bytes.buffer, head.bytes.byteOffset).getBigUint64(48, true)
      : 0n;
    const raw = state.rawSent?.[toname] === true;
    const incremental = fromguid !== 0n;
    await log({ argv: args, received: { toname, raw, incremental } });
    if (raw && incremental && (state.encryption[target] ?? "off") === "off") {
      return fail(
        "cannot receive incremental stream: cannot perform raw receive on top of existing " +
          "unencrypted dataset",
      );
    }
    const child = new Deno.Command(state.real, { args, stdin: "piped" }).spawn();
    const writer = child.stdin.getWriter();
    try {
      await writer.write(head.bytes);
      writer.releaseLock();
      await head.rest.pipeTo(child.stdin);
    } catch { /* zfs stopped reading: its status says why */ }
    const status = await child.status;
    if (status.success && raw && !incremental) {
      state.encryption[target] = state.encryption[toname.split("@")[0]] ?? "aes-256-gcm";
      await save();
    }
    return status.code;
  }
  await log({ argv: args });
  return (await new Deno.Command(state.real, { args }).spawn().status).code;
}

if (import.meta.main) Deno.exit(await main());
