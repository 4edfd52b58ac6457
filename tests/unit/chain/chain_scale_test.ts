/**
 * One chain of 100,000 snapshots (a full and 99,999 incrementals, two per second so that ties
 * within a second are common) through every planner that walks chains: `statusRows`,
 * `planPrune`, `chainNeeds` and `timeOrder`. Walking every ancestor per object made these
 * quadratic (4,000 snapshots took over a second); the answers are asserted, not the time.
 */
import assert from "node:assert/strict";
import { indexRemote, parseRemote } from "../../../lib/chain/metadata.ts";
import { statusRows } from "../../../lib/chain/status_rows.ts";
import { planPrune } from "../../../lib/chain/retention.ts";
import { chainNeeds } from "../../../lib/chain/object_lock_policy.ts";
import { timeOrder } from "../../../lib/chain/order.ts";
import { Chains } from "../../../lib/chain/walk.ts";
import type { LocalSnapshot, LockState, RemoteSnapshot } from "../../../lib/chain/types.ts";

const N = 100_000;
const DS = "pool/fs";
const T0 = 1_700_000_000;
const name = (i: number) => `s${String(i).padStart(6, "0")}`;

/**
 * Object `i`: a full at 0, else the incremental from `i - 1`, created at `T0 + ⌊i / 2⌋`. The
 * upper half records no creation time (status places those by their parents').
 */
function chainOf(n: number): Chains {
  const objects: RemoteSnapshot[] = [];
  for (let i = 0; i < n; i++) {
    const metadata: Record<string, string> = i === 0
      ? { isfull: "true" }
      : { parent: `${DS}@${name(i - 1)}` };
    if (i < n / 2) metadata["z3-created"] = String(T0 + Math.floor(i / 2));
    objects.push(parseRemote("", DS, `${DS}@${name(i)}`, metadata, 100)!);
  }
  // Newest first in the map, so that no walk happens to run in the chain's own order.
  return new Chains(indexRemote(objects.reverse()));
}

/** Every 1,000th snapshot in the pool, one second each. */
function localsOf(n: number): LocalSnapshot[] {
  const out: LocalSnapshot[] = [];
  for (let i = 0; i < n; i += 1000) {
    out.push({
      name: `${DS}@${name(i)}`,
      snapshot: name(i),
      guid: String(i + 1),
      creation: T0 + Math.floor(i / 2),
      createtxg: i,
    });
  }
  return out;
}

Deno.test("statusRows(), planPrune(), chainNeeds() and timeOrder() answer for one chain of 100,000 snapshots", () => {
  const chains = chainOf(N);
  const last = `${DS}@${name(N - 1)}`;
  assert.equal(chains.depth(last), N - 1);
  assert.equal(chains.fullOf(last)?.snapshot, name(0));
  assert.equal(chains.bottom(`${DS}@${name(500)}`)?.snapshot, name(0));

  const rows = statusRows(localsOf(N), chains);
  assert.equal(rows.length, N);
  assert.deepEqual(rows.slice(0, 3).map((r) => r.name), [name(0), name(1), name(2)]);
  assert.equal(rows[N - 1].name, name(N - 1));
  assert.equal(rows[N / 2].created, new Date((T0 + N / 4) * 1000).toISOString());
  assert.equal(rows[N / 2 + 1].created, undefined);
  assert.ok(rows.every((r, i) => r.name === name(i) && r.health === "ok"));

  const order = timeOrder(chains);
  const sorted = [...chains.remote.values()].sort(order);
  // Two per second: within a second the ancestor goes first; unknown times come last, by chain.
  assert.ok(sorted.every((s, i) => s.snapshot === name(i)));

  const plan = planPrune(chains, { last: 1 }, new Date());
  assert.equal(plan.deletes.length, 0);
  assert.deepEqual(plan.decisions[N - 1].reasons, ["last"]);
  assert.deepEqual(plan.decisions[0].reasons, ["needed by a kept snapshot"]);

  const now = new Date(T0 * 1000);
  const lockOf = (s: RemoteSnapshot): LockState => {
    const i = Number(s.snapshot.slice(1));
    return i % 10 === 0
      ? { kind: "locked", mode: "GOVERNANCE", until: new Date(now.getTime() + (i + 1) * 1000) }
      : { kind: "none" };
  };
  const needs = chainNeeds(chains, lockOf, now);
  assert.equal(needs.size, N - 10);
  const newestLocked = name(N - 10);
  assert.equal(needs.get(`${DS}@${name(0)}`)?.by, `${DS}@${newestLocked}`);
  assert.equal(needs.get(`${DS}@${name(N - 11)}`)?.by, `${DS}@${newestLocked}`);
  assert.equal(needs.get(`${DS}@${name(N - 10)}`), undefined);
  assert.equal(needs.get(last), undefined);
});

Deno.test("Chains depth() and bottom() answer in a loop of links as the ancestors walk ends", () => {
  const objects = ["a", "b", "c"].map((s, i, all) =>
    parseRemote("", DS, `${DS}@${s}`, { parent: `${DS}@${all[(i + 1) % 3]}` }, 100)!
  );
  objects.push(parseRemote("", DS, `${DS}@d`, { parent: `${DS}@a` }, 100)!);
  const chains = new Chains(indexRemote(objects));
  for (const s of ["d", "b", "a", "c"]) {
    const walk = [...chains.ancestors(`${DS}@${s}`)];
    assert.equal(chains.bottom(`${DS}@${s}`)?.name, walk[walk.length - 1].name, s);
    assert.equal(chains.depth(`${DS}@${s}`), walk.length, s);
  }
  assert.equal(chains.fullOf(`${DS}@d`), undefined);
});
