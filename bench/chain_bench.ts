/**
 * How chain work grows with the number of snapshots in one chain (issue #25: walking every
 * ancestor per row made status, prune's order, `chainNeeds` and verify quadratic). Builds one
 * chain of N snapshots in memory (a full and N-1 incrementals, two per second, the upper half
 * without a recorded creation time, every 1,000th also in the pool) and times `statusRows`,
 * `planPrune`, `chainNeeds` and a sort by `timeOrder` for N = 1,000, 10,000 and 100,000, each on
 * fresh `Chains`; prints milliseconds and the ratio per 10× (10 for linear work, 100 for
 * quadratic). Pure: no bucket, no pool.
 *
 * Usage: deno run bench/chain_bench.ts, or `deno task bench --only chain`.
 *
 * @module
 */

import { indexRemote, parseRemote } from "../lib/chain/metadata.ts";
import { statusRows } from "../lib/chain/status_rows.ts";
import { planPrune } from "../lib/chain/retention.ts";
import { chainNeeds } from "../lib/chain/object_lock_policy.ts";
import { timeOrder } from "../lib/chain/order.ts";
import { Chains } from "../lib/chain/walk.ts";
import type { LocalSnapshot, LockState, RemoteSnapshot } from "../lib/chain/types.ts";

const DS = "pool/fs";
const T0 = 1_700_000_000;
const SIZES = [1_000, 10_000, 100_000];
const name = (i: number) => `s${String(i).padStart(6, "0")}`;

/** The objects and pool snapshots of one chain of `n`. */
function chainOf(n: number): { objects: RemoteSnapshot[]; local: LocalSnapshot[] } {
  const objects: RemoteSnapshot[] = [];
  const local: LocalSnapshot[] = [];
  for (let i = 0; i < n; i++) {
    const metadata: Record<string, string> = i === 0
      ? { isfull: "true" }
      : { parent: `${DS}@${name(i - 1)}` };
    if (i < n / 2) metadata["z3-created"] = String(T0 + Math.floor(i / 2));
    objects.push(parseRemote("", DS, `${DS}@${name(i)}`, metadata, 100)!);
    if (i % 1000 === 0) {
      local.push({
        name: `${DS}@${name(i)}`,
        snapshot: name(i),
        guid: String(i + 1),
        creation: T0 + Math.floor(i / 2),
        createtxg: i,
      });
    }
  }
  return { objects: objects.reverse(), local };
}

const lockOf = (s: RemoteSnapshot): LockState =>
  Number(s.snapshot.slice(1)) % 10 === 0
    ? { kind: "locked", mode: "GOVERNANCE", until: new Date((T0 + 86_400) * 1000) }
    : { kind: "none" };

/** Milliseconds of each piece of chain work for one chain of `n`, each on fresh `Chains`. */
function measure(n: number): Record<string, number> {
  const { objects, local } = chainOf(n);
  const fresh = () => new Chains(indexRemote(objects));
  const time = (work: (chains: Chains) => unknown) => {
    const chains = fresh();
    const t = performance.now();
    work(chains);
    return performance.now() - t;
  };
  return {
    statusRows: time((c) => statusRows(local, c)),
    planPrune: time((c) => planPrune(c, { last: 1 }, new Date())),
    chainNeeds: time((c) => chainNeeds(c, lockOf, new Date(T0 * 1000))),
    timeOrder: time((c) => [...c.remote.values()].sort(timeOrder(c))),
  };
}

/** The report: one row per piece of work, ms per size and the ratio per 10×. */
export function chainBench(log: (line: string) => void = () => {}): string {
  measure(1_000); // warm-up: compile the code paths once
  const results = SIZES.map((n) => {
    log(`chain: ${n} snapshots`);
    return measure(n);
  });
  const head = `| work | ${SIZES.map((n) => `${n.toLocaleString("en")} ms`).join(" | ")} | ` +
    `${SIZES.slice(1).map((n, i) => `${SIZES[i] / 1000}k→${n / 1000}k`).join(" | ")} |`;
  const lines = [
    "## Chain work: one chain of N snapshots (pure, in memory)",
    "",
    head,
    `|${" --- |".repeat(2 * SIZES.length)}`,
  ];
  for (const work of Object.keys(results[0])) {
    const ms = results.map((r) => r[work]);
    const ratios = ms.slice(1).map((m, i) => (m / ms[i]).toFixed(1));
    lines.push(`| ${work} | ${ms.map((m) => m.toFixed(1)).join(" | ")} | ${ratios.join(" | ")} |`);
  }
  lines.push("", "Ratios near 10 per 10× are linear work; near 100, quadratic.");
  return lines.join("\n");
}

if (import.meta.main) console.log(chainBench((line) => console.error(line)));
