import assert from "node:assert/strict";
import { indexRemote } from "../../../lib/chain/metadata.ts";
import { timeOf } from "../../../lib/chain/order.ts";
import { Chains } from "../../../lib/chain/walk.ts";
import { UsageError } from "../../../lib/base/errors.ts";
import {
  type KeepReason,
  parsePolicy,
  planPrune,
  type PrunePlan,
  type RetentionPolicy,
} from "../../../lib/chain/retention.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const DS = "pool/fs";
const NOW = new Date("2030-01-01T00:00:00Z");

/** One object `pool/fs@<snapshot>` created at `when` (ISO text); `parent` undefined = full. */
function snap(snapshot: string, when: string | undefined, parent?: string): RemoteSnapshot {
  const s: RemoteSnapshot = {
    name: `${DS}@${snapshot}`,
    snapshot,
    key: `z3-backup/${DS}@${snapshot}`,
    isFull: parent === undefined,
    objectSize: 1000,
    metadata: {},
  };
  if (parent !== undefined) s.parent = `${DS}@${parent}`;
  if (when !== undefined) s.created = Date.parse(when) / 1000;
  return s;
}

function plan(objects: RemoteSnapshot[], policy: RetentionPolicy): PrunePlan {
  return planPrune(new Chains(indexRemote(objects)), policy, NOW);
}

/** Short name → reasons, for every kept snapshot. */
function kept(p: PrunePlan): Record<string, KeepReason[]> {
  return Object.fromEntries(
    p.decisions.filter((d) => d.keep).map((d) => [d.snapshot.snapshot, d.reasons]),
  );
}

const deleted = (p: PrunePlan) => p.deletes.map((s) => s.snapshot);

/** A chain s0..s<n-1>, one hour apart from 2021-01-01, with a full every `fullEvery`. */
function chains(n: number, fullEvery: number): RemoteSnapshot[] {
  const start = Date.parse("2021-01-01T00:00:00Z");
  const out: RemoteSnapshot[] = [];
  for (let i = 0; i < n; i++) {
    const when = new Date(start + i * 3_600_000).toISOString();
    out.push(snap(`s${i}`, when, i % fullEvery === 0 ? undefined : `s${i - 1}`));
  }
  return out;
}

/** Fulls named by their time, e.g. `2021-01-03T12:00`. */
function fulls(...times: string[]): RemoteSnapshot[] {
  return times.map((t) => snap(t, `${t}:00Z`));
}

// ---- planPrune: the policy rules ---------------------------------------------------------------

const dailyMany: RemoteSnapshot[] = [];
for (let day = 1; day <= 30; day++) {
  for (const hour of ["01", "09", "17"]) {
    const t = `2021-04-${String(day).padStart(2, "0")}T${hour}:00`;
    dailyMany.push(snap(t, `${t}:00Z`));
  }
}

const ruleCases: {
  name: string;
  objects: RemoteSnapshot[];
  policy: RetentionPolicy;
  kept: Record<string, KeepReason[]>;
  deletes: string[];
}[] = [
  {
    name: "keeps the last 3 of one chain, pinning the full and every incremental under them",
    objects: chains(10, 10),
    policy: { last: 3 },
    kept: {
      s0: ["needed by a kept snapshot"],
      s1: ["needed by a kept snapshot"],
      s2: ["needed by a kept snapshot"],
      s3: ["needed by a kept snapshot"],
      s4: ["needed by a kept snapshot"],
      s5: ["needed by a kept snapshot"],
      s6: ["needed by a kept snapshot"],
      s7: ["last", "needed by a kept snapshot"],
      s8: ["last", "needed by a kept snapshot"],
      s9: ["last"],
    },
    deletes: [],
  },
  {
    name: "keeps the last 3 and deletes older whole chains, newest first",
    objects: chains(12, 4),
    policy: { last: 3 },
    kept: {
      s8: ["needed by a kept snapshot"],
      s9: ["last", "needed by a kept snapshot"],
      s10: ["last", "needed by a kept snapshot"],
      s11: ["last"],
    },
    deletes: ["s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"],
  },
  {
    name: "keeps the newest snapshot of each of the last 7 days",
    objects: dailyMany,
    policy: { daily: 7 },
    kept: Object.fromEntries(
      [24, 25, 26, 27, 28, 29, 30].map((d) => [`2021-04-${d}T17:00`, ["daily"]]),
    ),
    deletes: dailyMany.map((s) => s.snapshot)
      .filter((n) => !(n >= "2021-04-24" && n.endsWith("T17:00")))
      .reverse(),
  },
  {
    name: "counts only days that have snapshots",
    objects: fulls("2021-05-01T10:00", "2021-05-03T10:00", "2021-05-07T10:00", "2021-05-20T10:00"),
    policy: { daily: 3 },
    kept: {
      "2021-05-03T10:00": ["daily"],
      "2021-05-07T10:00": ["daily"],
      "2021-05-20T10:00": ["daily"],
    },
    deletes: ["2021-05-01T10:00"],
  },
  {
    name: "keeps the newest snapshot of each hour",
    objects: fulls("2021-06-01T10:00", "2021-06-01T10:59", "2021-06-01T11:00", "2021-06-01T11:30"),
    policy: { hourly: 2 },
    kept: { "2021-06-01T10:59": ["hourly"], "2021-06-01T11:30": ["hourly"] },
    deletes: ["2021-06-01T11:00", "2021-06-01T10:00"],
  },
  {
    name: "splits days at midnight UTC",
    objects: [
      snap("late", "2021-03-01T23:59:59Z"),
      snap("early", "2021-03-02T00:00:00Z"),
      // 20:30 in New York on 2 March is 01:30 UTC on 3 March.
      snap("ny", "2021-03-02T20:30:00-05:00"),
    ],
    policy: { daily: 2 },
    kept: { early: ["daily"], ny: ["daily"] },
    deletes: ["late"],
  },
  {
    name: "puts ISO week 2020-W53 across the year end (Monday 28 Dec to Sunday 3 Jan)",
    objects: fulls(
      "2020-12-27T12:00", // Sunday of W52
      "2020-12-28T12:00", // Monday of W53
      "2021-01-01T12:00",
      "2021-01-03T12:00", // Sunday of W53
      "2021-01-04T12:00", // Monday of 2021-W01
    ),
    policy: { weekly: 3 },
    kept: {
      "2020-12-27T12:00": ["weekly"],
      "2021-01-03T12:00": ["weekly"],
      "2021-01-04T12:00": ["weekly"],
    },
    deletes: ["2021-01-01T12:00", "2020-12-28T12:00"],
  },
  {
    name: "puts Monday 30 Dec 2019 in the same ISO week as Sunday 5 Jan 2020",
    objects: fulls("2019-12-29T23:00", "2019-12-30T00:00", "2020-01-05T23:59"),
    policy: { weekly: 5 },
    kept: { "2019-12-29T23:00": ["weekly"], "2020-01-05T23:59": ["weekly"] },
    deletes: ["2019-12-30T00:00"],
  },
  {
    name: "splits months at their ends, including February",
    objects: fulls(
      "2021-01-15T00:00",
      "2021-01-31T23:59",
      "2021-02-01T00:00",
      "2021-02-28T23:59",
      "2021-03-01T00:00",
      "2024-02-29T12:00",
    ),
    policy: { monthly: 3 },
    kept: {
      "2021-02-28T23:59": ["monthly"],
      "2021-03-01T00:00": ["monthly"],
      "2024-02-29T12:00": ["monthly"],
    },
    deletes: ["2021-02-01T00:00", "2021-01-31T23:59", "2021-01-15T00:00"],
  },
  {
    name: "splits years at the new year",
    objects: fulls("2019-06-01T00:00", "2020-12-31T23:59", "2021-01-01T00:00", "2021-07-01T00:00"),
    policy: { yearly: 2 },
    kept: { "2020-12-31T23:59": ["yearly"], "2021-07-01T00:00": ["yearly"] },
    deletes: ["2021-01-01T00:00", "2019-06-01T00:00"],
  },
  {
    name: "unites the reasons of combined policies",
    objects: fulls(
      "2021-01-20T10:00",
      "2021-02-10T10:00",
      "2021-02-11T09:00",
      "2021-02-11T10:00",
      "2021-02-12T10:00",
    ),
    policy: { last: 2, daily: 2, monthly: 2, yearly: 1 },
    kept: {
      "2021-01-20T10:00": ["monthly"],
      "2021-02-11T10:00": ["last", "daily"],
      "2021-02-12T10:00": ["last", "daily", "monthly", "yearly"],
    },
    deletes: ["2021-02-11T09:00", "2021-02-10T10:00"],
  },
  {
    name: "shows both reasons when a kept snapshot is also needed by another",
    objects: [
      snap("mon", "2021-03-01T12:00:00Z"),
      snap("tue", "2021-03-02T12:00:00Z", "mon"),
      snap("wed", "2021-03-03T12:00:00Z", "tue"),
      snap("thu", "2021-03-04T12:00:00Z"),
    ],
    policy: { daily: 3 },
    kept: {
      mon: ["needed by a kept snapshot"],
      tue: ["daily", "needed by a kept snapshot"],
      wed: ["daily"],
      thu: ["daily"],
    },
    deletes: [],
  },
  {
    name: "leaves broken chains alone and does not count them",
    objects: [
      snap("a", "2021-03-01T00:00:00Z"),
      snap("b", "2021-03-02T00:00:00Z", "a"),
      snap("c", "2021-03-03T00:00:00Z"),
      // `gone` is not in the bucket: d and e are broken, and newer than everything else.
      snap("d", "2021-03-04T00:00:00Z", "gone"),
      snap("e", "2021-03-05T00:00:00Z", "d"),
    ],
    policy: { last: 1, daily: 1 },
    kept: {
      c: ["last", "daily"],
      d: ["unhealthy chain (left alone)"],
      e: ["unhealthy chain (left alone)"],
    },
    deletes: ["b", "a"],
  },
  {
    name: "orders ties by name and counts unknown times as newest",
    objects: [
      snap("b", "2021-03-01T00:00:00Z"),
      snap("a", "2021-03-01T00:00:00Z"),
      snap("x", undefined),
      snap("c", "2021-02-01T00:00:00Z"),
    ],
    policy: { last: 2, daily: 1 },
    kept: { b: ["last", "daily"], x: ["last"] },
    deletes: ["a", "c"],
  },
];

for (const c of ruleCases) {
  Deno.test(`planPrune() ${c.name}`, () => {
    const p = plan(c.objects, c.policy);
    assert.deepEqual(kept(p), c.kept);
    assert.deepEqual(deleted(p), c.deletes);
    assert.equal(p.decisions.length, c.objects.length);
    for (const d of p.decisions) assert.equal(d.keep, d.reasons.length > 0);
  });
}

Deno.test("planPrune() lists decisions oldest first", () => {
  const objects = fulls("2021-03-02T00:00", "2021-03-01T00:00", "2021-03-03T00:00");
  const p = plan(objects, { last: 1 });
  assert.deepEqual(p.decisions.map((d) => d.snapshot.snapshot), [
    "2021-03-01T00:00",
    "2021-03-02T00:00",
    "2021-03-03T00:00",
  ]);
});

Deno.test("planPrune() deletes children before parents even when their times disagree", () => {
  // Re-uploaded objects: the incrementals carry older upload times than their full.
  const upload = (s: RemoteSnapshot, when: string) => ({ ...s, lastModified: new Date(when) });
  const objects = [
    upload(snap("f1", undefined), "2021-03-10T00:00:00Z"),
    upload(snap("i1", undefined, "f1"), "2021-03-01T00:00:00Z"),
    upload(snap("i2", undefined, "i1"), "2021-03-02T00:00:00Z"),
    upload(snap("f2", undefined), "2021-03-20T00:00:00Z"),
  ];
  const p = plan(objects, { last: 1 });
  assert.deepEqual(kept(p), { f2: ["last"] });
  assert.deepEqual(deleted(p), ["i2", "i1", "f1"]);
});

Deno.test("planPrune() leaves alone an incremental whose parent GUID differs, and what is above", () => {
  const withGuids = (s: RemoteSnapshot, guid: string, parentGuid?: string): RemoteSnapshot => ({
    ...s,
    guid,
    ...(parentGuid === undefined ? {} : { parentGuid }),
  });
  const objects = [
    withGuids(snap("a", "2021-03-01T00:00:00Z"), "1"),
    withGuids(snap("b", "2021-03-02T00:00:00Z", "a"), "2", "999"),
    withGuids(snap("c", "2021-03-03T00:00:00Z", "b"), "3", "2"),
    withGuids(snap("d", "2021-03-04T00:00:00Z"), "4"),
  ];
  const p = plan(objects, { last: 1 });
  assert.deepEqual(kept(p), {
    b: ["unhealthy chain (left alone)"],
    c: ["unhealthy chain (left alone)"],
    d: ["last"],
  });
  assert.deepEqual(deleted(p), ["a"]);
});

// ---- planPrune: refusals -----------------------------------------------------------------------

const nothingCases: { name: string; objects: RemoteSnapshot[]; policy: RetentionPolicy }[] = [
  { name: "an empty policy", objects: chains(3, 1), policy: {} },
  { name: "an empty policy, even for an empty bucket", objects: [], policy: {} },
  { name: "a policy of zeros", objects: chains(3, 1), policy: { last: 0, daily: 0, yearly: 0 } },
  {
    name: "bucket counts when no snapshot has a time",
    objects: [snap("a", undefined), snap("b", undefined)],
    policy: { daily: 7, weekly: 4 },
  },
];

for (const c of nothingCases) {
  Deno.test(`planPrune() refuses a policy that keeps nothing: ${c.name}`, () => {
    assert.throws(
      () => plan(c.objects, c.policy),
      (err: unknown) =>
        err instanceof UsageError &&
        err.message.startsWith(
          "Cannot prune: the policy keeps nothing; set KEEP_LAST or another KEEP_*",
        ),
    );
  });
}

Deno.test("planPrune() accepts a bucket with nothing to count", () => {
  assert.deepEqual(plan([], { last: 1 }), { decisions: [], deletes: [] });
  // Only broken chains: nothing is deleted, so nothing is refused.
  const p = plan([snap("b", "2021-03-01T00:00:00Z", "gone")], { last: 1 });
  assert.deepEqual(kept(p), { b: ["unhealthy chain (left alone)"] });
  assert.deepEqual(p.deletes, []);
});

// ---- planPrune: scale --------------------------------------------------------------------------

/** A Map that counts its lookups (`get`, `has`). */
class CountingMap<K, V> extends Map<K, V> {
  lookups = 0;
  override get(key: K): V | undefined {
    this.lookups++;
    return super.get(key);
  }
  override has(key: K): boolean {
    this.lookups++;
    return super.has(key);
  }
}

Deno.test("planPrune() plans 5,000 hourly snapshots in O(n) chain lookups", () => {
  const objects = chains(5000, 24);
  const remote = new CountingMap(objects.map((o) => [o.name, o] as const));
  const policy = { last: 5, hourly: 48, daily: 14, weekly: 8, monthly: 12, yearly: 3 };
  const p = planPrune(new Chains(remote), policy, NOW);
  // Health and the ancestor pins visit each object a bounded number of times.
  assert.ok(remote.lookups <= 3 * 5000, `${remote.lookups} lookups for 5,000 objects`);
  // One 5,000-long chain: every kept snapshot's walk stops at the first ancestor already
  // pinned. Walking each down to the full instead costs about 90 × 2,500 = 225,000 lookups.
  const one = new CountingMap(chains(5000, 5000).map((o) => [o.name, o] as const));
  const long = planPrune(new Chains(one), policy, NOW);
  assert.equal(long.deletes.length, 0, "the newest snapshot pins the whole chain");
  assert.ok(one.lookups <= 3 * 5000, `${one.lookups} lookups for a 5,000-long chain`);
  assert.equal(p.decisions.length, 5000);
  // Safety: every kept incremental's parent is kept; deletes come children first.
  const keep = new Map(p.decisions.map((d) => [d.snapshot.name, d.keep]));
  for (const d of p.decisions) {
    if (d.keep && d.snapshot.parent !== undefined) assert.ok(keep.get(d.snapshot.parent));
  }
  const gone = new Set<string>();
  for (const s of p.deletes) {
    assert.ok(!keep.get(s.name));
    gone.add(s.name);
    if (s.parent !== undefined) assert.ok(!gone.has(s.parent), "child before parent");
  }
  assert.equal(p.deletes.length + p.decisions.filter((d) => d.keep).length, 5000);
  // Whole days are pinned by the daily and weekly picks (last of each day is a chain's tip).
  assert.ok(p.deletes.length > 4000);
});

// ---- timeOf ------------------------------------------------------------------------------------

Deno.test("timeOf() prefers the recorded creation, then the upload time", () => {
  const created = snap("a", "2021-03-01T00:00:00Z");
  const uploaded = { ...snap("b", undefined), lastModified: new Date("2021-03-02T00:00:00Z") };
  const both = { ...created, lastModified: new Date("2022-01-01T00:00:00Z") };
  assert.equal(timeOf(created), Date.parse("2021-03-01T00:00:00Z"));
  assert.equal(timeOf(uploaded), Date.parse("2021-03-02T00:00:00Z"));
  assert.equal(timeOf(both), Date.parse("2021-03-01T00:00:00Z"));
  assert.equal(timeOf(snap("c", undefined)), undefined);
});

// ---- parsePolicy -------------------------------------------------------------------------------

const parseCases: {
  name: string;
  values: Record<string, string | undefined>;
  want: RetentionPolicy;
}[] = [
  {
    name: "reads every KEEP_* key",
    values: {
      KEEP_LAST: "3",
      KEEP_HOURLY: "24",
      KEEP_DAILY: "7",
      KEEP_WEEKLY: "4",
      KEEP_MONTHLY: "12",
      KEEP_YEARLY: "10",
    },
    want: { last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12, yearly: 10 },
  },
  {
    name: "leaves out absent and blank values, and other keys",
    values: { KEEP_LAST: undefined, KEEP_DAILY: "  ", KEEP_WEEKLY: "", BUCKET: "b" },
    want: {},
  },
  {
    name: "trims spaces and accepts zero",
    values: { KEEP_DAILY: " 7 ", KEEP_YEARLY: "0" },
    want: { daily: 7, yearly: 0 },
  },
];

for (const c of parseCases) {
  Deno.test(`parsePolicy() ${c.name}`, () => {
    assert.deepEqual(parsePolicy(c.values), c.want);
  });
}

const badValues = ["x", "-1", "1.5", "1e3", "+2", "0x10", "7 days", "99999999999999999999"];

for (const value of badValues) {
  Deno.test(`parsePolicy() refuses KEEP_DAILY "${value}"`, () => {
    assert.throws(
      () => parsePolicy({ KEEP_DAILY: value }, (key) => `$${key}`),
      (err: unknown) =>
        err instanceof UsageError &&
        err.message ===
          `Cannot parse KEEP_DAILY "${value}" from $KEEP_DAILY: expected a whole number`,
    );
  });
}

Deno.test("parsePolicy() names a default source when not told where", () => {
  assert.throws(
    () => parsePolicy({ KEEP_LAST: "many" }),
    {
      name: "UsageError",
      message: `Cannot parse KEEP_LAST "many" from the configuration: expected a whole number`,
    },
  );
});
