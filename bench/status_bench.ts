/**
 * How long `z3 status` takes to read a bucket with many snapshots (issue #4: 1,000 snapshots in
 * a few seconds, not one HEAD at a time). Writes N tiny objects shaped like a z3 chain (a full
 * and N-1 incrementals) to a fresh bucket on the local test server, then times the bucket read
 * (list + one HEAD per object, 16 in flight) and `z3 status --json` end to end.
 *
 * Usage: deno run --allow-all bench/status_bench.ts [--count 1000]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { Chains } from "../lib/chain/walk.ts";
import { loadRemote } from "../lib/repository/bucket_index.ts";
import { ensureS3, freshBucket } from "../tests/bed/s3_bed.ts";
import { mapLimit } from "../lib/base/map_limit.ts";

const { values } = parseArgs({ options: { count: { type: "string", default: "1000" } } });
const count = Number(values.count);
const s3 = await ensureS3();
if (typeof s3 === "string") throw new Error(s3);
const store = await freshBucket(s3, "status-bench");
const dataset = "bench/data";
const body = new TextEncoder().encode("x");
const md5 = createHash("md5").update(body).digest("base64");
const t0 = performance.now();
await mapLimit(
  [...Array(count).keys()],
  32,
  (i) =>
    store.put(`z3-backup/${dataset}@snap-${String(i).padStart(6, "0")}`, body, md5, {
      metadata: i === 0 ? { isfull: "true", "z3-created": String(1_700_000_000 + i) } : {
        parent: `${dataset}@snap-${String(i - 1).padStart(6, "0")}`,
        "z3-created": String(1_700_000_000 + i),
      },
    }),
);
const written = (performance.now() - t0) / 1000;

const t1 = performance.now();
const remote = await loadRemote(store, "z3-backup/", dataset);
const health = new Chains(remote).healthMap();
const read = (performance.now() - t1) / 1000;
const healthy = [...health.values()].filter((h) => h === "ok").length;

const main = new URL("../main.ts", import.meta.url).pathname;
const t2 = performance.now();
const out = await new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-all", main, "status", "--json"],
  env: {
    BUCKET: store.bucket,
    HOST: s3.S3_ENDPOINT,
    S3_KEY_ID: s3.S3_KEY_ID,
    S3_SECRET: s3.S3_SECRET,
    FILESYSTEM: dataset,
    Z3_CONFIG: "/dev/null",
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
  },
  clearEnv: true,
}).output();
const cli = (performance.now() - t2) / 1000;
const rows = out.success ? JSON.parse(new TextDecoder().decode(out.stdout)).length : -1;
store.close();

console.log(
  `| snapshots | bucket read (list + HEADs) | z3 status --json end to end | rows | healthy |`,
);
console.log(`|---|---|---|---|---|`);
console.log(`| ${count} | ${read.toFixed(2)} s | ${cli.toFixed(2)} s | ${rows} | ${healthy} |`);
console.log(`(writing the ${count} objects took ${written.toFixed(1)} s)`);
