import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { integration } from "../bed/bed.ts";
import { childEnv, freshBucket, type S3Env } from "../bed/s3_bed.ts";
import { pseudoRandom } from "../bed/files.ts";
import { type CliOptions, type CliResult, runPput, spawnPput } from "../bed/cli.ts";
import type { S3Store } from "../../lib/backend/s3.ts";
import { partSizeOf, scheduleFromMetadata } from "../../lib/transfer/part_size.ts";
import { multipartEtag } from "../../lib/transfer/etag.ts";

const MiB = 1024 * 1024;
const S3_ONLY = { zfs: false };

/** What pput prints on success. */
interface Success {
  status: string;
  etag: string;
  bytes: number;
  parts: number;
}

/** Runs pput against `store`'s bucket with `args` then KEY, feeding `stdin`. */
function pput(
  s3: S3Env,
  store: S3Store,
  args: string[],
  options: CliOptions = {},
): Promise<CliResult> {
  return runPput(args, { ...options, env: { ...childEnv(s3, store.bucket), ...options.env } });
}

/** Asserts a clean success and returns the parsed JSON line. */
function success(result: CliResult): Success {
  assert.deepEqual(
    { code: result.code, stderr: result.stderr },
    { code: 0, stderr: "" },
    "pput must succeed silently on stderr",
  );
  const lines = result.stdout.trimEnd().split("\n");
  assert.deepEqual(lines.length, 1, `expected one JSON line on stdout, got: ${result.stdout}`);
  const json = JSON.parse(lines[0]) as Success;
  assert.deepEqual(Object.keys(json).sort(), ["bytes", "etag", "parts", "status"]);
  assert.deepEqual(json.status, "success");
  return json;
}

/** Asserts a failure with `code` and a single line on stderr matching `pattern`. */
function failure(result: CliResult, code: number, pattern: RegExp): string {
  assert.deepEqual(result.code, code, `exit status; stderr: ${result.stderr}`);
  assert.deepEqual(result.stdout, "", "a failed run prints nothing on stdout");
  const lines = result.stderr.trimEnd().split("\n");
  assert.deepEqual(lines.length, 1, `expected one line on stderr, got: ${result.stderr}`);
  assert.match(lines[0], /^pput: /);
  assert.match(lines[0], pattern);
  return lines[0];
}

async function download(store: S3Store, key: string): Promise<Uint8Array> {
  return await new Response(await store.get(key)).bytes();
}

async function pendingUploads(store: S3Store, key: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const u of store.listMultipartUploads(key)) keys.push(u.key);
  return keys;
}

/** The user's view after a failure: no object under `key`, no upload left pending. */
async function assertNothingLeft(store: S3Store, key: string): Promise<void> {
  assert.deepEqual(await store.head(key), undefined, `no object may be left at "${key}"`);
  const listed: string[] = [];
  for await (const o of store.list(key)) listed.push(o.key);
  assert.deepEqual(listed, [], "nothing may be listed under the key");
  assert.deepEqual(await pendingUploads(store, key), [], "no multipart upload may stay pending");
}

/**
 * What a user checks after a success: the object downloads to exactly `data`, HEAD's ETag is the
 * one pput printed, and the part schedule in its metadata cuts `data` into parts whose MD5s give
 * that ETag again.
 */
async function assertStored(store: S3Store, key: string, data: Uint8Array, out: Success) {
  assert.deepEqual(out.bytes, data.length);
  const info = await store.head(key);
  assert.ok(info, `object "${key}" must exist`);
  assert.deepEqual(info.size, data.length);
  assert.deepEqual(info.etag, out.etag, "HEAD's ETag must be the one pput printed");
  const got = await download(store, key);
  assert.deepEqual(got.length, data.length);
  assert.ok(Buffer.from(got).equals(Buffer.from(data)), "downloaded bytes differ from the input");
  const md5 = (b: Uint8Array) => new Uint8Array(createHash("md5").update(b).digest());
  if (out.parts === 1) {
    assert.deepEqual(out.etag, Buffer.from(md5(data)).toString("hex"));
    return info;
  }
  assert.deepEqual(out.etag.endsWith(`-${out.parts}`), true, `ETag ${out.etag} vs parts`);
  const schedule = scheduleFromMetadata(info.metadata);
  assert.ok(schedule, "the part schedule must be recorded in the metadata");
  const md5s: Uint8Array[] = [];
  for (let offset = 0, n = 1; offset < data.length; n++) {
    const end = Math.min(data.length, offset + partSizeOf(schedule, n));
    md5s.push(md5(data.subarray(offset, end)));
    offset = end;
  }
  assert.deepEqual(md5s.length, out.parts, "the recorded schedule must give the part count");
  assert.deepEqual(multipartEtag(md5s), out.etag, "the recorded schedule must give the ETag");
  return info;
}

/** Round trip of `size` bytes with `args`; returns the JSON line. */
async function roundTrip(
  s3: S3Env,
  label: string,
  size: number,
  args: string[],
): Promise<Success> {
  const store = await freshBucket(s3, `pput-${label}`);
  try {
    const key = `backups/${label} stream.bin`;
    const data = pseudoRandom(size, size + 1);
    const out = success(await pput(s3, store, [...args, key], { stdin: data }));
    await assertStored(store, key, data, out);
    assert.deepEqual(await pendingUploads(store, key), []);
    return out;
  } finally {
    store.close();
  }
}

// --- round trips -------------------------------------------------------------------------------

integration("pput refuses an empty stream with exit 2 and stores no object", async (bed) => {
  const store = await freshBucket(bed.s3, "pput-empty");
  try {
    const result = await pput(bed.s3, store, ["empty.bin"], { stdin: new Uint8Array() });
    failure(result, 2, /empty/);
    await assertNothingLeft(store, "empty.bin");
  } finally {
    store.close();
  }
}, S3_ONLY);

integration("pput stores a 1-byte stream with one PutObject", async (bed) => {
  const out = await roundTrip(bed.s3, "one-byte", 1, []);
  assert.deepEqual(out.parts, 1);
  assert.doesNotMatch(out.etag, /-/, "a single PutObject has a plain MD5 ETag");
}, S3_ONLY);

integration(
  "pput stores exactly one part (5 MiB at --chunk-size 5M) with one PutObject",
  async (bed) => {
    const out = await roundTrip(bed.s3, "one-part", 5 * MiB, ["--chunk-size", "5M"]);
    assert.deepEqual(out.parts, 1);
  },
  S3_ONLY,
);

integration("pput stores one part + 1 byte as a 2-part multipart upload", async (bed) => {
  const out = await roundTrip(bed.s3, "one-part-plus", 5 * MiB + 1, ["--chunk-size", "5M"]);
  assert.deepEqual(out.parts, 2);
}, S3_ONLY);

integration("pput stores 23 MiB at --chunk-size 5M as 5 parts", async (bed) => {
  const out = await roundTrip(bed.s3, "many-parts", 23 * MiB, [
    "--chunk-size",
    "5M",
    "--concurrency",
    "2",
  ]);
  assert.deepEqual(out.parts, 5);
}, S3_ONLY);

integration("pput reads --file-descriptor N instead of stdin", async (bed) => {
  const store = await freshBucket(bed.s3, "pput-fd");
  const dir = await Deno.makeTempDir({ prefix: "z3-pput-fd-" });
  try {
    const data = pseudoRandom(7 * MiB, 5);
    await Deno.writeFile(`${dir}/input.bin`, data);
    const result = await pput(
      bed.s3,
      store,
      ["--chunk-size", "5M", "--file-descriptor", "5", "fd"],
      {
        // stdin carries other bytes: pput must not read them.
        stdin: new TextEncoder().encode("not this"),
        redirect: `5<'${dir}/input.bin'`,
      },
    );
    const out = success(result);
    assert.deepEqual(out.parts, 2);
    await assertStored(store, "fd", data, out);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}, S3_ONLY);

// --- metadata and part sizing ------------------------------------------------------------------

integration(
  "pput records --metadata/--meta (keys lower-cased) and the part schedule",
  async (bed) => {
    const store = await freshBucket(bed.s3, "pput-meta");
    try {
      const data = pseudoRandom(1000, 3);
      const args = ["--metadata", "a=1", "--meta", "b=two", "--metadata", "Color=Blue=ish", "m"];
      const out = success(await pput(bed.s3, store, args, { stdin: data }));
      const info = await assertStored(store, "m", data, out);
      assert.deepEqual(info.metadata, {
        a: "1",
        b: "two",
        color: "Blue=ish",
        "z3-part-size": String(8 * MiB),
        "z3-part-double-every": "909",
      });
    } finally {
      store.close();
    }
  },
  S3_ONLY,
);

integration(
  "pput doubles the part size every max-parts/11 parts (5,5,10,10,6 MiB)",
  async (bed) => {
    const store = await freshBucket(bed.s3, "pput-grow");
    try {
      const data = pseudoRandom(36 * MiB, 11);
      const args = ["--chunk-size", "5M", "--max-parts", "22", "grow"];
      const out = success(await pput(bed.s3, store, args, { stdin: data }));
      assert.deepEqual(out.parts, 5);
      assert.match(out.etag, /-5$/);
      const info = await assertStored(store, "grow", data, out);
      assert.deepEqual(
        [info.metadata["z3-part-size"], info.metadata["z3-part-double-every"]],
        [String(5 * MiB), "2"],
      );
    } finally {
      store.close();
    }
  },
  S3_ONLY,
);

integration(
  "pput --estimated 50M --max-parts 10 stores a 75 MiB stream: a low estimate never fails",
  async (bed) => {
    // 50 % more than the estimate: the parts past the estimate grow, and the recorded schedule
    // still gives every part boundary (assertStored recomputes the ETag from it).
    const out = await roundTrip(bed.s3, "est-low", 75 * MiB, [
      "--chunk-size",
      "5M",
      "--estimated",
      "50M",
      "--max-parts",
      "10",
    ]);
    assert.ok(out.parts <= 10, `${out.parts} parts`);
  },
  S3_ONLY,
);

integration(
  "pput --estimated sizes parts from the estimate and records the head in the metadata",
  async (bed) => {
    const store = await freshBucket(bed.s3, "pput-est");
    try {
      const data = pseudoRandom(30 * MiB, 13);
      // 30 MiB + 10 % in the head of a 4-part schedule: 16.5 MiB parts, so 2 parts.
      const args = ["--chunk-size", "5M", "--estimated", "30M", "--max-parts", "4", "est"];
      const out = success(await pput(bed.s3, store, args, { stdin: data }));
      assert.deepEqual(out.parts, 2);
      const info = await assertStored(store, "est", data, out);
      assert.deepEqual(
        ["z3-part-size", "z3-part-double-every", "z3-part-grow-after"].map((k) => info.metadata[k]),
        [String(16.5 * MiB), "1", "2"],
      );
    } finally {
      store.close();
    }
  },
  S3_ONLY,
);

integration(
  "pput treats an absurd --estimated (OpenZFS's 18446744073614344448) as none",
  async (bed) => {
    const store = await freshBucket(bed.s3, "pput-est-absurd");
    try {
      const data = pseudoRandom(11 * MiB, 14);
      for (const estimate of ["18446744073614344448", "6T"]) {
        const args = ["--chunk-size", "5M", "--estimated", estimate, "absurd"];
        const out = success(await pput(bed.s3, store, args, { stdin: data }));
        const info = await assertStored(store, "absurd", data, out);
        // The schedule without an estimate: 5 MiB doubling every 909 parts, no head.
        assert.deepEqual(
          ["z3-part-size", "z3-part-double-every", "z3-part-grow-after"].map((k) =>
            info.metadata[k]
          ),
          [String(5 * MiB), "909", undefined],
          `--estimated ${estimate}`,
        );
      }
    } finally {
      store.close();
    }
  },
  S3_ONLY,
);

integration("pput stores a stream that exactly fills --max-parts parts", async (bed) => {
  // --max-parts 2 at 5M: parts of 5 and 10 MiB, so 15 MiB is exactly full.
  const out = await roundTrip(bed.s3, "exact-max", 15 * MiB, [
    "--chunk-size",
    "5M",
    "--max-parts",
    "2",
  ]);
  assert.deepEqual(out.parts, 2);
}, S3_ONLY);

/** Runs pput over `size` bytes that need more than `maxParts` parts; expects a clean refusal. */
async function refuseOverMaxParts(s3: S3Env, maxParts: number, size: number): Promise<void> {
  const store = await freshBucket(s3, `pput-max${maxParts}`);
  try {
    const key = `over ${maxParts}`;
    const args = ["--chunk-size", "5M", "--max-parts", String(maxParts), key];
    const result = await pput(s3, store, args, { stdin: pseudoRandom(size, 17) });
    assert.deepEqual(result.code, 2, `stdout: ${result.stdout} stderr: ${result.stderr}`);
    failure(result, 2, new RegExp(`more than ${maxParts} parts`));
    await assertNothingLeft(store, key);
  } finally {
    store.close();
  }
}

integration(
  "pput --max-parts 2 refuses a 3-part stream with exit 2, leaving nothing",
  async (bed) => {
    // 5 + 10 MiB + 1 byte.
    await refuseOverMaxParts(bed.s3, 2, 15 * MiB + 1);
  },
  S3_ONLY,
);

integration(
  "pput --max-parts 1 refuses a 2-part stream with exit 2, leaving nothing",
  async (bed) => {
    // 5 MiB + 1 MiB.
    await refuseOverMaxParts(bed.s3, 1, 6 * MiB);
  },
  S3_ONLY,
);

// --- interruptions and read errors -------------------------------------------------------------
// Not tested on purpose: a writer that closes stdin early looks like a clean end of stream, and
// pput stores what arrived. pput cannot know (see its --help); `z3 backup` checks zfs's status.

/** Starts an upload, waits until its multipart upload is pending, sends `signal`. */
async function interrupt(s3: S3Env, signal: "SIGINT" | "SIGTERM"): Promise<string> {
  const store = await freshBucket(s3, `pput-${signal}`);
  const key = `interrupted by ${signal}`;
  const child = spawnPput(["--chunk-size", "5M", "--concurrency", "2", key], {
    env: childEnv(s3, store.bucket),
  });
  let killer: ReturnType<typeof setTimeout> | undefined;
  try {
    // Two full parts start the multipart upload; the third part waits for bytes that never come.
    const data = pseudoRandom(12 * MiB, 19);
    await child.write(data);
    const deadline = Date.now() + 20_000;
    while ((await pendingUploads(store, key)).length === 0) {
      assert.ok(Date.now() < deadline, "the multipart upload never showed up as pending");
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill(signal);
    killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    const result = await child.result;
    assert.deepEqual(result.signal, null, `pput must exit by itself after ${signal}`);
    const line = failure(result, signal === "SIGINT" ? 130 : 143, new RegExp(signal));
    await assertNothingLeft(store, key);
    return line;
  } finally {
    clearTimeout(killer);
    await child.closeStdin();
    await child.result;
    store.close();
  }
}

integration(
  "pput exits 143 on SIGTERM mid-upload, leaving no object and no pending upload",
  async (bed) => {
    await interrupt(bed.s3, "SIGTERM");
  },
  S3_ONLY,
);

integration(
  "pput exits 130 on SIGINT mid-upload, leaving no object and no pending upload",
  async (bed) => {
    await interrupt(bed.s3, "SIGINT");
  },
  S3_ONLY,
);

integration("pput's SIGTERM message names the signal and no internal error", async (bed) => {
  const line = await interrupt(bed.s3, "SIGTERM");
  assert.match(line, /^pput: Interrupted by SIGTERM/);
  // Whatever else the line says must make sense to a sysadmin: no JavaScript internals.
  assert.doesNotMatch(line, /ArrayBuffer|TypeError|undefined/);
}, S3_ONLY);

integration(
  "pput exits 2 naming the descriptor when --file-descriptor is not open",
  async (bed) => {
    const store = await freshBucket(bed.s3, "pput-badfd");
    try {
      failure(await pput(bed.s3, store, ["--file-descriptor", "97", "k"]), 2, /descriptor 97/);
      failure(await pput(bed.s3, store, ["--file-descriptor", "x", "k"]), 2, /"x"/);
      await assertNothingLeft(store, "k");
    } finally {
      store.close();
    }
  },
  S3_ONLY,
);

integration(
  "pput exits 2 naming the descriptor when --file-descriptor cannot be read (a directory)",
  async (bed) => {
    const store = await freshBucket(bed.s3, "pput-dirfd");
    const dir = await Deno.makeTempDir({ prefix: "z3-pput-dir-" });
    try {
      const result = await pput(bed.s3, store, ["--file-descriptor", "5", "k"], {
        redirect: `5<'${dir}'`,
      });
      failure(result, 2, /descriptor 5.*directory|directory.*descriptor 5/i);
      await assertNothingLeft(store, "k");
    } finally {
      store.close();
      await Deno.remove(dir);
    }
  },
  S3_ONLY,
);

// --- bad input ---------------------------------------------------------------------------------

integration("pput rejects bad flags, a missing KEY and unset BUCKET with exit 2", async (bed) => {
  const store = await freshBucket(bed.s3, "pput-usage");
  try {
    const one = new Uint8Array([1]);
    const run = (args: string[], env: CliOptions["env"] = {}) =>
      pput(bed.s3, store, args, { stdin: one, env });
    failure(await run(["--bogus", "k"]), 2, /--bogus/);
    failure(await run([]), 2, /KEY/);
    failure(await run(["a", "b"]), 2, /KEY/);
    failure(await run(["--chunk-size", "1M", "k"]), 2, /5M/);
    failure(await run(["--chunk-size", "lots", "k"]), 2, /lots/);
    failure(await run(["--max-parts", "10001", "k"]), 2, /--max-parts/);
    failure(await run(["--estimated", "huge", "k"]), 2, /--estimated/);
    failure(await run(["--metadata", "novalue", "k"]), 2, /novalue/);
    failure(await run(["k"], { BUCKET: undefined }), 2, /BUCKET/);
    failure(await run(["k"], { S3_SECRET: undefined }), 2, /S3_SECRET/);
    await assertNothingLeft(store, "k");
    const help = await run(["--help"]);
    assert.deepEqual([help.code, help.stderr], [0, ""]);
    assert.match(help.stdout, /^Usage: pput/);
  } finally {
    store.close();
  }
}, S3_ONLY);

integration("pput exits 4 on a wrong secret and never prints either secret", async (bed) => {
  const store = await freshBucket(bed.s3, "pput-secret");
  try {
    const wrong = `wrong-${crypto.randomUUID()}`;
    const wrongId = `Z3WRONG${crypto.randomUUID().replaceAll("-", "").slice(0, 13).toUpperCase()}`;
    const cases: [string[], Record<string, string>][] = [
      [[], { S3_SECRET: wrong }],
      [["--debug"], { S3_SECRET: wrong }],
      [["--debug"], { S3_KEY_ID: wrongId }],
    ];
    for (const [extra, env] of cases) {
      const result = await pput(bed.s3, store, [...extra, "k"], {
        stdin: pseudoRandom(6 * MiB, 23),
        env,
      });
      failure(result, 4, /403/);
      assert.match(result.stderr, /S3_SECRET|credential/i);
      // The key id and the secret, the ones used and the right ones.
      for (const secret of [wrong, wrongId, bed.s3.S3_SECRET, bed.s3.S3_KEY_ID]) {
        assert.ok(!result.stderr.includes(secret), "stderr must not contain a key id or secret");
        assert.ok(!result.stdout.includes(secret), "stdout must not contain a key id or secret");
      }
    }
    await assertNothingLeft(store, "k");
  } finally {
    store.close();
  }
}, S3_ONLY);
