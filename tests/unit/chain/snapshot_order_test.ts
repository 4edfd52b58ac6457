/**
 * The bucket's time order when snapshots share a recorded creation second (`z3-created` has 1 s
 * resolution): an ancestor goes before its descendants, whatever their names say.
 */
import assert from "node:assert/strict";
import { indexRemote } from "../../../lib/chain/metadata.ts";
import { statusRows } from "../../../lib/chain/status_rows.ts";
import { timeOrder } from "../../../lib/chain/order.ts";
import { Chains } from "../../../lib/chain/walk.ts";
import { planPrune } from "../../../lib/chain/retention.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const DS = "pool/fs";
const SECOND = 1_700_000_000;

/** `pool/fs@<snapshot>` created at `SECOND`; `parent` undefined = full. */
function snap(snapshot: string, parent?: string): RemoteSnapshot {
  return {
    name: `${DS}@${snapshot}`,
    snapshot,
    key: `z3-backup/${DS}@${snapshot}`,
    isFull: parent === undefined,
    ...(parent === undefined ? {} : { parent: `${DS}@${parent}` }),
    created: SECOND,
    objectSize: 1000,
    metadata: {},
  };
}

// sanoid takes its hourly and daily in one second; here the daily came second (its child).
const SAME_SECOND = [
  snap("autosnap_2026-12-01_00:00:00_hourly"),
  snap("autosnap_2026-12-01_00:00:00_daily", "autosnap_2026-12-01_00:00:00_hourly"),
];

Deno.test("planPrune() KEEP_LAST=1 keeps the newest of one second by chain, not by name", () => {
  const plan = planPrune(new Chains(indexRemote(SAME_SECOND)), { last: 1 }, new Date());
  assert.deepEqual(plan.deletes, []);
  const daily = plan.decisions.find((d) => d.snapshot.snapshot.endsWith("daily"));
  assert.deepEqual(daily?.reasons, ["last"]);
});

Deno.test("statusRows() lists bucket-only snapshots of one second parent first", () => {
  const rows = statusRows([], new Chains(indexRemote(SAME_SECOND)));
  assert.deepEqual(rows.map((r) => r.name), SAME_SECOND.map((s) => s.snapshot));
});

Deno.test("timeOrder() sorts a one-second chain whatever the names and input order", () => {
  const chain = [snap("c"), snap("b", "c"), snap("a", "b"), snap("d", "a")];
  const chains = new Chains(indexRemote(chain));
  for (const input of [[...chain].reverse(), [chain[2], chain[0], chain[3], chain[1]]]) {
    assert.deepEqual(input.sort(timeOrder(chains)).map((s) => s.snapshot), ["c", "b", "a", "d"]);
  }
  // Other seconds still come first by time.
  const early = { ...snap("z"), created: SECOND - 1 };
  const all = new Chains(indexRemote([...chain, early]));
  assert.equal([...chain, early].sort(timeOrder(all))[0].snapshot, "z");
});

Deno.test("timeOrder() and statusRows(): a new full is not older than an incremental of the old chain of its second", () => {
  // FULL_EVERY=2 within one second: s1 full, s2 its incremental, s3 the next full, s4 on s3;
  // uploaded in that order. Before, the full s3 (depth 0) sorted before s2 (depth 1).
  const uploaded = (s: RemoteSnapshot, ms: number) => ({ ...s, lastModified: new Date(ms) });
  const chain = [
    uploaded(snap("s1"), 1_000),
    uploaded(snap("s2", "s1"), 2_000),
    uploaded(snap("s3"), 3_000),
    uploaded(snap("s4", "s3"), 4_000),
  ];
  const chains = new Chains(indexRemote(chain));
  const names = ["s1", "s2", "s3", "s4"];
  for (const input of [[...chain].reverse(), [chain[2], chain[1], chain[3], chain[0]]]) {
    assert.deepEqual(input.sort(timeOrder(chains)).map((s) => s.snapshot), names);
  }
  assert.deepEqual(statusRows([], chains).map((r) => r.name), names);
});
