/**
 * lib/zfs/send_stream.ts on real zfs-fuse streams: full, incremental and dedup (`-D`) streams
 * parse to the GUIDs `zfs get guid` shows and pass their END checksum, byte for byte unchanged
 * (and a `zfs receive` started after `openSendStream()` takes them); `-p` and `-R` streams, a
 * stream of the wrong snapshot and a stream cut short are refused.
 */
import assert from "node:assert/strict";
import { integration } from "../bed/bed.ts";
import { withCleanup } from "../bed/cleanup.ts";
import { pseudoRandom } from "../bed/files.ts";
import { run } from "../bed/run.ts";
import { createPool, type TestPool } from "../bed/zfs_bed.ts";
import { IntegrityError } from "../../lib/base/errors.ts";
import {
  checkedSendStream,
  openSendStream,
  parseBegin,
  type SendStreamExpectation,
} from "../../lib/zfs/send_stream.ts";

const DATA = "stream data";
const RECORD = 312;

async function guid(snapshot: string): Promise<string> {
  return (await run(["zfs", "get", "-H", "-p", "-o", "value", "guid", snapshot])).trim();
}

/** `zfs send ARGS`, its whole stdout (the test's streams are a few MiB). */
async function send(args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command("zfs", { args: ["send", ...args], stdout: "piped" }).output();
  assert.ok(out.success, `zfs send ${args.join(" ")} failed`);
  return out.stdout;
}

/** Feeds `bytes` through the check in 64 KiB pieces, as a pipe hands them over. */
async function check(
  bytes: Uint8Array,
  expect: SendStreamExpectation,
): Promise<{ out: Uint8Array; error?: unknown }> {
  const pieces: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += 65536) pieces.push(bytes.subarray(at, at + 65536));
  const out = new Uint8Array(bytes.length + RECORD);
  let length = 0;
  try {
    for await (const part of ReadableStream.from(pieces).pipeThrough(checkedSendStream(expect))) {
      out.set(part, length);
      length += part.length;
    }
    return { out: out.subarray(0, length) };
  } catch (error) {
    return { out: out.subarray(0, length), error };
  }
}

/** Pool with `pool/stream data` at s1 (3 MiB of noise and small files) and s2 (changes). */
async function withSnapshots(fn: (pool: TestPool, dataset: string) => Promise<void>) {
  const pool = await createPool(256);
  await withCleanup([() => pool.destroy()], async () => {
    const dir = await pool.createDataset(DATA);
    await Deno.writeFile(`${dir}/noise`, pseudoRandom(3 * 1024 * 1024, 1));
    for (let i = 0; i < 20; i++) await Deno.writeTextFile(`${dir}/small ${i}`, `file ${i}\n`);
    await pool.snapshot(DATA, "s1");
    await Deno.writeFile(`${dir}/more`, pseudoRandom(500_000, 2));
    await Deno.remove(`${dir}/small 3`);
    await pool.snapshot(DATA, "s2");
    await fn(pool, `${pool.name}/${DATA}`);
  });
}

integration(
  "parseBegin()/checkedSendStream() read zfs-fuse's full, incremental and -D streams",
  async () => {
    await withSnapshots(async (_pool, dataset) => {
      const s1 = await guid(`${dataset}@s1`);
      const s2 = await guid(`${dataset}@s2`);
      const streams: [string[], string, string][] = [
        [[`${dataset}@s1`], s1, "0"],
        [["-i", `${dataset}@s1`, `${dataset}@s2`], s2, s1],
        [["-i", "@s1", `${dataset}@s2`], s2, s1],
        [["-D", `${dataset}@s1`], s1, "0"],
      ];
      for (const [args, toguid, fromguid] of streams) {
        const stream = await send(args);
        const begin = parseBegin(stream);
        assert.equal(begin.toguid, toguid, args.join(" "));
        assert.equal(begin.fromguid, fromguid, args.join(" "));
        assert.equal(begin.toname, `${dataset}@${toguid === s1 ? "s1" : "s2"}`);
        assert.equal(begin.compound, false);
        assert.equal(begin.byteswapped, false);
        let summary: { records: number; bytes: number } | undefined;
        const { out, error } = await check(stream, {
          toguid,
          fromguid,
          onEnd: (s) => summary = s,
        });
        assert.equal(error, undefined, `${args.join(" ")}: ${error}`);
        assert.deepEqual(out, stream);
        assert.equal(summary?.bytes, stream.length);
        console.error(
          `zfs send ${args.join(" ")}: ${stream.length} bytes, ` +
            `${summary?.records} records, features ${begin.features}, all accepted`,
        );
      }
    });
  },
  { s3: false },
);

integration(
  "zfs receive takes a zfs-fuse stream opened with openSendStream(); a refused one starts none",
  async () => {
    await withSnapshots(async (pool, dataset) => {
      const s1 = await guid(`${dataset}@s1`);
      const target = `${pool.name}/copy`;
      const sendS1 = (stderr: "inherit" | "null") =>
        new Deno.Command("zfs", { args: ["send", `${dataset}@s1`], stdout: "piped", stderr })
          .spawn();

      const wrong = sendS1("null"); // it says "Broken pipe" when its stdout is cancelled
      await assert.rejects(openSendStream(wrong.stdout, { toguid: "1" }), IntegrityError);
      await wrong.status; // ends on the broken pipe; no zfs receive was started

      const sender = sendS1("inherit");
      const opened = await openSendStream(sender.stdout, { toguid: s1, fromguid: "0" });
      assert.equal(opened.begin.toguid, s1);
      const receiver = new Deno.Command("zfs", {
        args: ["receive", target],
        stdin: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(receiver.stderr).text();
      await opened.stream.pipeTo(receiver.stdin);
      assert.ok((await sender.status).success);
      assert.ok((await receiver.status).success, await stderr);
      assert.equal(await guid(`${target}@s1`), s1);
    });
  },
  { s3: false },
);

integration(
  "checkedSendStream() refuses zfs-fuse's -p and -R streams, a wrong GUID and a cut stream",
  async () => {
    await withSnapshots(async (_pool, dataset) => {
      const s1 = await guid(`${dataset}@s1`);
      const s2 = await guid(`${dataset}@s2`);
      const refused = async (
        stream: Uint8Array,
        expect: SendStreamExpectation,
        why: string | RegExp,
        passedAtMost = 0,
      ) => {
        const { out, error } = await check(stream, { name: "s", ...expect });
        assert.ok(error instanceof IntegrityError, `expected a refusal (${why}), got ${error}`);
        assert.equal(error.exitCode, 6);
        if (typeof why === "string") {
          assert.equal(error.message, `Cannot accept "s" as a zfs send stream: ${why}`);
        } else assert.match(error.message, why);
        assert.ok(out.length <= passedAtMost, `${out.length} bytes passed`);
      };
      const compound = "it is a replication or property stream (zfs send -R or -p), " +
        "which carries properties z3 does not receive";
      const withProperties = await send(["-p", `${dataset}@s1`]);
      assert.equal(parseBegin(withProperties).compound, true);
      await refused(withProperties, {}, compound);
      await refused(await send(["-R", `${dataset}@s2`]), {}, compound);

      const full = await send([`${dataset}@s1`]);
      await refused(
        full,
        { toguid: s2 },
        `it recreates the snapshot with GUID ${s1}, ` +
          `not the expected ${s2}`,
      );
      const incremental = await send(["-i", "@s1", `${dataset}@s2`]);
      await refused(
        incremental,
        { fromguid: s2 },
        `it is an incremental from GUID ${s1}, ` +
          `not from ${s2}`,
      );
      await refused(
        incremental,
        { fromguid: "0" },
        `it is an incremental from GUID ${s1}, ` +
          `not from nothing (a full)`,
      );

      for (const length of [0, 100, Math.floor(full.length / 2), full.length - RECORD]) {
        await refused(
          full.subarray(0, length),
          { toguid: s1 },
          /: it ends after \d+ bytes/,
          length,
        );
      }
      const flipped = full.slice();
      flipped[Math.floor(full.length / 2)] ^= 1;
      await refused(
        flipped,
        { toguid: s1 },
        "its END record's checksum does not match the stream's Fletcher-4",
        full.length - RECORD,
      );
    });
  },
  { s3: false },
);
