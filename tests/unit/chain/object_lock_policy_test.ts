import assert from "node:assert/strict";
import { indexRemote } from "../../../lib/chain/metadata.ts";
import { Chains } from "../../../lib/chain/walk.ts";
import {
  extension,
  isLocked,
  lockPolicy,
  modeShortfall,
  parseLock,
  retentionAt,
  runRetention,
} from "../../../lib/chain/object_lock_policy.ts";
import { heldByLock } from "../../../lib/repository/prune_versions.ts";
import { planPrune } from "../../../lib/chain/retention.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

Deno.test("parseLock() reads what Ceph 16 sends and nothing looser", () => {
  // $ curl -I …: x-amz-object-lock-retain-until-date: 2026-12-01T13:43:39.112000000Z (Ceph 16.2.15)
  assert.deepEqual(
    parseLock({ mode: "GOVERNANCE", until: "2026-12-01T13:43:39.112000000Z" }),
    { kind: "locked", mode: "GOVERNANCE", until: new Date("2026-12-01T13:43:39.112Z") },
  );
  assert.deepEqual(parseLock({ mode: "COMPLIANCE", until: "2026-12-01T13:43:39Z" }), {
    kind: "locked",
    mode: "COMPLIANCE",
    until: new Date("2026-12-01T13:43:39Z"),
  });
  assert.deepEqual(parseLock({}), { kind: "none" });
  assert.deepEqual(parseLock(undefined), { kind: "none" });
  for (
    const bad of [
      { mode: "governance", until: "2026-12-01T13:43:39Z" },
      { mode: "GOVERNANCE" },
      { until: "2026-12-01T13:43:39Z" },
      { mode: "GOVERNANCE", until: "2026-12-01" },
      { mode: "GOVERNANCE", until: "2026-02-30T00:00:00Z" },
      { mode: "GOVERNANCE", until: "2026-12-01T13:43:39+01:00" },
      { mode: "GOVERNANCE", until: "Tue, 01 Dec 2026 13:43:39 GMT" },
      { mode: "GOVERNANCE", until: "2026-12-01T13:43:39Z, 2099-01-01T00:00:00Z" },
      { mode: "GOVERNANCE, COMPLIANCE", until: "2026-12-01T13:43:39Z" },
    ]
  ) {
    const state = parseLock(bad);
    assert.equal(state.kind, "unreadable", JSON.stringify(bad));
    // An unreadable lock is treated as locked: prune never counts on it having ended.
    assert.ok(isLocked(state, new Date("2100-01-01T00:00:00Z")));
  }
});

Deno.test("runRetention() never sets a weaker lock than the bucket's default rule", () => {
  const now = new Date("2026-12-01T00:00:00Z");
  assert.deepEqual(runRetention(7, "GOVERNANCE", { now }), {
    retention: { mode: "GOVERNANCE", until: new Date("2026-12-08T00:00:00Z") },
  });
  const longer = runRetention(7, "GOVERNANCE", { now, rule: { mode: "COMPLIANCE", days: 30 } });
  assert.deepEqual(longer.retention, {
    mode: "COMPLIANCE",
    until: new Date("2026-12-31T00:00:00Z"),
  });
  assert.match(longer.note ?? "", /default rule \(COMPLIANCE, 30 days\) is stricter/);
  const weaker = runRetention(30, "GOVERNANCE", { now, rule: { mode: "GOVERNANCE", days: 1 } });
  assert.deepEqual(weaker, {
    retention: { mode: "GOVERNANCE", until: new Date("2026-12-31T00:00:00Z") },
  });
  assert.equal(
    runRetention(1, "GOVERNANCE", { now, rule: { mode: "GOVERNANCE", years: 1 } }).retention
      .until.toISOString(),
    "2027-12-01T00:00:00.000Z",
  );
});

Deno.test("retentionAt() counts each object's days from when it is locked, never weaker than the bucket's rule", () => {
  // The policy is read once at the start of a run; objects are locked hours apart.
  const start = new Date("2026-12-01T00:00:00Z");
  const later = new Date("2026-12-01T05:30:00Z");
  const plain = lockPolicy(7, "GOVERNANCE");
  assert.deepEqual(retentionAt(plain, start), {
    mode: "GOVERNANCE",
    until: new Date("2026-12-08T00:00:00Z"),
  });
  assert.deepEqual(retentionAt(plain, later), {
    mode: "GOVERNANCE",
    until: new Date("2026-12-08T05:30:00Z"),
  });
  // The bucket's default rule would give the later object 30 days from its own creation: the
  // explicit retention that replaces it is no shorter, counted from the same moment.
  const ruled = lockPolicy(7, "GOVERNANCE", { mode: "COMPLIANCE", days: 30 });
  assert.match(ruled.note ?? "", /default rule \(COMPLIANCE, 30 days\) is stricter/);
  assert.deepEqual(retentionAt(ruled, later), {
    mode: "COMPLIANCE",
    until: new Date("2026-12-31T05:30:00Z"),
  });
  assert.equal(lockPolicy(30, "COMPLIANCE", { mode: "GOVERNANCE", days: 1 }).note, undefined);
});

Deno.test("modeShortfall() finds a running GOVERNANCE lock where COMPLIANCE is required", () => {
  const now = new Date("2026-12-01T00:00:00Z");
  const governance = parseLock({ mode: "GOVERNANCE", until: "2026-12-08T00:00:00Z" });
  const compliance = parseLock({ mode: "COMPLIANCE", until: "2026-12-08T00:00:00Z" });
  assert.match(
    modeShortfall(governance, "COMPLIANCE", now) ?? "",
    /^retention \(GOVERNANCE until 2026-12-08T00:00:00.000Z\) is GOVERNANCE, but OBJECT_LOCK_MODE is COMPLIANCE/,
  );
  assert.equal(modeShortfall(compliance, "COMPLIANCE", now), undefined);
  assert.equal(modeShortfall(governance, "GOVERNANCE", now), undefined);
  // An ended lock or none is a matter of dates (chainNeeds), not of mode.
  assert.equal(
    modeShortfall(governance, "COMPLIANCE", new Date("2026-12-09T00:00:00Z")),
    undefined,
  );
  assert.equal(modeShortfall({ kind: "none" }, "COMPLIANCE", now), undefined);
});

Deno.test("extension() only ever lengthens and keeps a running COMPLIANCE lock", () => {
  const now = new Date("2026-12-01T00:00:00Z");
  const until = new Date("2026-12-10T00:00:00Z");
  const later = {
    kind: "locked" as const,
    mode: "GOVERNANCE" as const,
    until: new Date(until.getTime() + 1),
  };
  assert.equal(extension(later, until, "GOVERNANCE", now), undefined);
  assert.deepEqual(extension({ kind: "none" }, until, "GOVERNANCE", now), {
    mode: "GOVERNANCE",
    until,
  });
  const compliance = {
    kind: "locked" as const,
    mode: "COMPLIANCE" as const,
    until: new Date("2026-12-05T00:00:00Z"),
  };
  assert.deepEqual(extension(compliance, until, "GOVERNANCE", now), { mode: "COMPLIANCE", until });
  const ended = {
    kind: "locked" as const,
    mode: "COMPLIANCE" as const,
    until: new Date("2026-11-01T00:00:00Z"),
  };
  assert.deepEqual(extension(ended, until, "GOVERNANCE", now), { mode: "GOVERNANCE", until });
});

Deno.test("planPrune() keeps what Object Lock holds, and what it builds on, counting it for no rule", () => {
  const ds = "pool/fs";
  const snap = (name: string, hour: number, parent?: string): RemoteSnapshot => ({
    name: `${ds}@${name}`,
    snapshot: name,
    key: `z3-backup/${ds}@${name}`,
    isFull: parent === undefined,
    parent: parent === undefined ? undefined : `${ds}@${parent}`,
    created: Date.parse("2030-01-01T00:00:00Z") / 1000 + hour * 3600,
    objectSize: 1,
    metadata: {},
  });
  // a0 ← a1 ← a2 (a1 locked), then b0 ← b1.
  const remote = indexRemote([
    snap("a0", 0),
    snap("a1", 1, "a0"),
    snap("a2", 2, "a1"),
    snap("b0", 3),
    snap("b1", 4, "b0"),
  ]);
  const now = new Date("2030-02-01T00:00:00Z");
  const held = heldByLock(
    new Map([...remote].map(([name, s]) => [
      name,
      {
        ...s,
        lock: name.endsWith("@a1")
          ? parseLock({ mode: "GOVERNANCE", until: "2030-03-01T00:00:00Z" })
          : name.endsWith("@a2")
          ? parseLock({ mode: "GOVERNANCE", until: "2030-01-15T00:00:00Z" }) // ended
          : { kind: "none" as const },
      },
    ])),
    now,
  );
  assert.deepEqual([...held], [[`${ds}@a1`, "locked until 2030-03-01T00:00:00.000Z"]]);
  const plan = planPrune(new Chains(remote), { last: 1 }, now, held);
  const reasons = Object.fromEntries(plan.decisions.map((d) => [d.snapshot.snapshot, d.reasons]));
  assert.deepEqual(reasons, {
    a0: ["needed by a kept snapshot"],
    a1: ["locked until 2030-03-01T00:00:00.000Z"],
    a2: [],
    b0: ["needed by a kept snapshot"],
    b1: ["last"],
  });
  assert.deepEqual(plan.deletes.map((s) => s.snapshot), ["a2"]);
});
