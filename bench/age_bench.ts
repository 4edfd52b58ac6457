/**
 * Measures the age stage alone (issue #13): z3's in-process `encryptStream()` / `openAge()` of
 * `lib/pipeline/age.ts` against Debian's `age` command, on the same bytes, one recipient. See the
 * "Encryption" section of `bench/README.md`.
 *
 * Run from the repository root: `deno run --allow-all bench/age_bench.ts [--size 512M] [--runs 3]`.
 * It needs `age` and `age-keygen` on PATH and `/usr/bin/time`. In-process rows time a pipeline
 * from a buffer already in memory (pseudo-random, 1 MiB pieces) to nothing, in this process; CLI
 * rows run `age -r` / `age -d -i` from a file in the page cache to /dev/null under
 * `/usr/bin/time` (wall, user+sys of `age` only). Every round trip must give the bytes back (the
 * in-process one is compared; the CLI's output size is checked). Temporary files are removed at
 * the end.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encryptStream, openAge } from "../lib/pipeline/age.ts";
import { identityOf } from "../lib/config/age_keys.ts";
import { parseSize } from "../lib/config/size.ts";
import { pseudoRandom } from "../tests/bed/files.ts";

const { values } = parseArgs({
  options: { size: { type: "string", default: "512M" }, runs: { type: "string", default: "3" } },
});
const size = parseSize(values.size!);
const runs = Number(values.runs);
const MiB = 2 ** 20;
const piece = pseudoRandom(MiB, 13);
const pieces = Math.ceil(size / MiB);
const source = () => {
  let i = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (i++ >= pieces) c.close();
      else c.enqueue(piece.slice());
    },
  });
};
const id = identityOf(crypto.getRandomValues(new Uint8Array(32)));
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = await Deno.makeTempDir({ prefix: "z3-age-bench-" });
try {
  const plainFile = `${dir}/plain`;
  const f = await Deno.open(plainFile, { create: true, write: true });
  for (let i = 0; i < pieces; i++) await f.write(piece);
  f.close();
  await new Deno.Command("age-keygen", { args: ["-o", `${dir}/key.txt`], stderr: "null" }).output();
  const recipient = (await Deno.readTextFile(`${dir}/key.txt`)).match(/public key: (\S+)/)![1];
  await new Deno.Command("cat", { args: [plainFile], stdout: "null" }).output(); // page cache

  const rows: Record<string, number[]> = {
    "in-process encrypt": [],
    "in-process decrypt": [],
    "age -r (CLI)": [],
    "age -d (CLI)": [],
  };
  const cpuRows: Record<string, number[]> = { "age -r (CLI)": [], "age -d (CLI)": [] };
  const timed = async (argv: string[]) => {
    const out = await new Deno.Command("/usr/bin/time", {
      args: ["-f", "%e %U %S", ...argv],
      stderr: "piped",
      stdout: "null",
    }).output();
    if (!out.success) throw new Error(`${argv.join(" ")} failed`);
    const [e, u, s] = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)!.split(" ")
      .map(Number);
    return { wall: e, cpu: u + s };
  };
  for (let r = 0; r < runs; r++) {
    const sealed: Uint8Array[] = [];
    let t = performance.now();
    for await (const c of encryptStream(source(), [id.recipient])) sealed.push(c);
    rows["in-process encrypt"].push((performance.now() - t) / 1000);
    t = performance.now();
    let n = 0;
    for await (const c of await openAge(ReadableStream.from(sealed), [id], { label: "bench" })) {
      if (c[0] !== piece[n % MiB]) throw new Error("in-process round trip differs");
      n += c.length;
    }
    rows["in-process decrypt"].push((performance.now() - t) / 1000);
    if (n !== pieces * MiB) throw new Error(`in-process round trip: ${n} bytes`);
    const enc = await timed(["age", "-r", recipient, "-o", `${dir}/sealed.age`, plainFile]);
    rows["age -r (CLI)"].push(enc.wall);
    cpuRows["age -r (CLI)"].push(enc.cpu);
    const dec = await timed([
      "age",
      "-d",
      "-i",
      `${dir}/key.txt`,
      "-o",
      "/dev/null",
      `${dir}/sealed.age`,
    ]);
    rows["age -d (CLI)"].push(dec.wall);
    cpuRows["age -d (CLI)"].push(dec.cpu);
  }
  const gib = (pieces * MiB) / 2 ** 30;
  console.log(
    `${pieces} MiB, ${runs} runs (median); MB/s = 10^6 bytes of plaintext per wall second`,
  );
  console.log("| stage | MB/s | CPU s/GiB (in-process: wall, an upper bound) |");
  console.log("| --- | --- | --- |");
  for (const [name, secs] of Object.entries(rows)) {
    const wall = median([...secs]);
    // In-process rows run on this process's one thread: their wall time bounds their CPU time.
    const c = cpuRows[name] ? median([...cpuRows[name]]) : wall;
    console.log(
      `| ${name} | ${((pieces * MiB) / wall / 1e6).toFixed(0)} | ${(c / gib).toFixed(2)} |`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
