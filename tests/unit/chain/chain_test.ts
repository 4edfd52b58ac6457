import assert from "node:assert/strict";
import { indexRemote, parseRemote } from "../../../lib/chain/metadata.ts";
import { keyFor } from "../../../lib/chain/keys.ts";
import { planBackup } from "../../../lib/chain/backup_plan.ts";
import { planRestore } from "../../../lib/chain/restore_plan.ts";
import { statusRows } from "../../../lib/chain/status_rows.ts";
import { Chains, type Flaw, type Health } from "../../../lib/chain/walk.ts";
import { ChainError, UsageError } from "../../../lib/base/errors.ts";
import { normalizePrefix } from "../../../lib/config/prefix.ts";
import type { LocalSnapshot } from "../../../lib/chain/types.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const DS = "pool/fs";
const PREFIX = "z3-backup/";

/** Local snapshots `pool/fs@<name>`, guid `g-<name>` → decimal, one minute apart. */
function locals(...names: string[]): LocalSnapshot[] {
  return names.map((snapshot, i) => ({
    name: `${DS}@${snapshot}`,
    snapshot,
    guid: guidOf(snapshot),
    creation: 1_700_000_000 + 60 * i,
    createtxg: 100 + i,
  }));
}

function guidOf(snapshot: string): string {
  let n = 17n;
  for (const c of snapshot) n = n * 131n + BigInt(c.charCodeAt(0));
  return (n % 18446744073709551615n).toString();
}

/** One object: `parent` undefined = full; `null` = incremental without a parent recorded. */
function obj(
  snapshot: string,
  parent?: string | null,
  extra: Record<string, string> = {},
  lastModified?: Date,
): RemoteSnapshot {
  const metadata: Record<string, string> = { ...extra };
  if (parent === undefined) metadata.isfull = "true";
  else if (parent !== null) metadata.parent = `${DS}@${parent}`;
  const snap = parseRemote(PREFIX, DS, `${PREFIX}${DS}@${snapshot}`, metadata, 1000, lastModified);
  assert.ok(snap);
  return snap;
}

/** Objects of this z3, with GUIDs matching {@linkcode locals}. */
function ours(snapshot: string, parent?: string): RemoteSnapshot {
  const extra: Record<string, string> = { "z3-guid": guidOf(snapshot) };
  if (parent !== undefined) extra["z3-parent-guid"] = guidOf(parent);
  return obj(snapshot, parent, extra);
}

function bucket(...objects: RemoteSnapshot[]): Chains {
  return new Chains(indexRemote(objects));
}

function healthOf(objects: RemoteSnapshot[], flaws?: Map<string, Flaw>): Record<string, Health> {
  return Object.fromEntries(new Chains(indexRemote(objects), flaws).healthMap());
}

/** A Map that counts its lookups (`get`, `has`): the walk's unit of work. */
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

const full = (name: string) => `${DS}@${name}`;

// ---- Chains.health -------------------------------------------------------------------------

const healthCases: { name: string; objects: RemoteSnapshot[]; want: Record<string, Health> }[] = [
  {
    name: "a full and its incrementals are ok",
    objects: [obj("a"), obj("b", "a"), obj("c", "b")],
    want: { [full("a")]: "ok", [full("b")]: "ok", [full("c")]: "ok" },
  },
  {
    name: "an incremental whose parent object is absent has a missing parent",
    objects: [obj("b", "a"), obj("c", "b"), obj("d", "c")],
    want: {
      [full("b")]: "missing parent",
      [full("c")]: "parent broken",
      [full("d")]: "parent broken",
    },
  },
  {
    name: "an incremental with no parent recorded has a missing parent",
    objects: [obj("x", null)],
    want: { [full("x")]: "missing parent" },
  },
  {
    name: "a cycle marks the loop and everything above it",
    objects: [obj("a", "b"), obj("b", "a"), obj("c", "b"), obj("d", "c")],
    want: {
      [full("a")]: "cycle detected",
      [full("b")]: "cycle detected",
      [full("c")]: "cycle detected",
      [full("d")]: "cycle detected",
    },
  },
  {
    name: "a snapshot that is its own parent is a cycle",
    objects: [obj("a", "a"), obj("b", "a"), obj("f")],
    want: { [full("a")]: "cycle detected", [full("b")]: "cycle detected", [full("f")]: "ok" },
  },
  {
    name: "a link whose parent GUID differs is a guid mismatch, and breaks what is above",
    objects: [
      ours("a"),
      obj("b", "a", { "z3-guid": guidOf("b"), "z3-parent-guid": "999" }),
      ours("c", "b"),
    ],
    want: { [full("a")]: "ok", [full("b")]: "guid mismatch", [full("c")]: "parent broken" },
  },
  {
    name: "a link is checked by GUID only where both sides record one",
    objects: [obj("a"), obj("b", "a", { "z3-parent-guid": "999" }), ours("c", "b")],
    want: { [full("a")]: "ok", [full("b")]: "ok", [full("c")]: "ok" },
  },
  {
    name: "names ZFS would refuse are invalid, and so is what builds on them",
    objects: [obj(".."), obj("x", ".."), obj("a\nb"), obj("t\tab"), obj("-o")],
    want: {
      [full("..")]: "invalid name",
      [full("x")]: "parent broken",
      [full("a\nb")]: "invalid name",
      [full("t\tab")]: "invalid name",
      [full("-o")]: "invalid name",
    },
  },
  {
    name: "a full that also names a parent is still ok",
    objects: [obj("a", undefined, { parent: `${DS}@gone` })],
    want: { [full("a")]: "ok" },
  },
];

for (const c of healthCases) {
  Deno.test(`Chains.health() says ${c.name}`, () => {
    assert.deepEqual(healthOf(c.objects), c.want);
  });
}

Deno.test("Chains.health() shows a flaw the caller found, and breaks what is above it", () => {
  const flaws = new Map<string, Flaw>([[full("b"), {
    health: "record mismatch",
    detail: `"${full("b")}": its metadata disagrees with its check record`,
  }]]);
  const objects = [ours("a"), ours("b", "a"), ours("c", "b")];
  assert.deepEqual(healthOf(objects, flaws), {
    [full("a")]: "ok",
    [full("b")]: "record mismatch",
    [full("c")]: "parent broken",
  });
  const chains = new Chains(indexRemote(objects), flaws);
  assert.match(chains.why(full("c")), /^parent broken: "pool\/fs@b": its metadata disagrees/);
});

Deno.test("Chains.health() calls a 0-byte object empty, even a full, and breaks what is above it", () => {
  const emptyFull = parseRemote(PREFIX, DS, `${PREFIX}${full("a")}`, { isfull: "true" }, 0);
  assert.ok(emptyFull);
  const objects = [emptyFull, obj("b", "a"), obj("c")];
  assert.deepEqual(healthOf(objects), {
    [full("a")]: "empty",
    [full("b")]: "parent broken",
    [full("c")]: "ok",
  });
  const chains = bucket(...objects);
  assert.match(chains.why(full("a")), /^empty: "pool\/fs@a" is an empty object \(0 bytes\)/);
  assert.equal(chains.fullOf(full("b")), undefined);
  assert.throws(() => planRestore(chains, full("a"), new Map()), ChainError);
  const rows = statusRows([], chains);
  assert.deepEqual(rows.map((r) => [r.name, r.health]), [
    ["a", "empty"],
    ["b", "parent broken"],
    ["c", "ok"],
  ]);
});

Deno.test("Chains.ancestors() walks sound links down to the full, newest first", () => {
  const chains = bucket(obj("a"), obj("b", "a"), obj("c", "b"), obj("d"), obj("e", "d"));
  assert.deepEqual([...chains.ancestors(full("c"))].map((s) => s.snapshot), ["c", "b", "a"]);
  assert.equal(chains.depth(full("c")), 2);
  assert.equal(chains.depth(full("a")), 0);
  // A loop yields each object once.
  const loop = bucket(obj("x", "y"), obj("y", "x"));
  assert.deepEqual([...loop.ancestors(full("x"))].map((s) => s.snapshot), ["x", "y"]);
});

Deno.test("Chains.descendants() finds everything built on the given objects", () => {
  const chains = bucket(
    obj("a"),
    obj("b", "a"),
    obj("c", "b"),
    obj("c2", "b"),
    obj("d", "c"),
    obj("f"),
    obj("g", "f"),
  );
  assert.deepEqual([...chains.descendants([full("b")])].sort(), [
    full("c"),
    full("c2"),
    full("d"),
  ]);
  assert.deepEqual([...chains.descendants([full("d"), full("f")])], [full("g")]);
});

Deno.test("Chains.health() is linear: a 3,000-long chain costs O(n) lookups, from any order", () => {
  const n = 3000;
  const objects = [obj("s0")];
  for (let i = 1; i < n; i++) objects.push(obj(`s${i}`, `s${i - 1}`));
  for (const order of [objects, [...objects].reverse()]) {
    const remote = new CountingMap(order.map((o) => [o.name, o] as const));
    const health = new Chains(remote).healthMap();
    assert.equal(health.size, n);
    assert.ok([...health.values()].every((h) => h === "ok"));
    // Each object is looked up once as a start and once as a parent; a walk per object from
    // scratch (quadratic) makes n²/2 = 4.5 million.
    assert.ok(remote.lookups <= 3 * n, `${remote.lookups} lookups for ${n} objects`);
  }
  // Broken at the bottom: everything above is "parent broken", without stack overflow.
  const broken = new CountingMap(objects.slice(1).reverse().map((o) => [o.name, o] as const));
  const chains = new Chains(broken);
  assert.equal(chains.health(full("s1")), "missing parent");
  assert.equal(chains.health(full(`s${n - 1}`)), "parent broken");
  chains.healthMap();
  assert.ok(broken.lookups <= 3 * n, `${broken.lookups} lookups when broken`);
  // A 3,000-long loop.
  const loop = new CountingMap(
    objects.map((o, i) => i === 0 ? obj("s0", `s${n - 1}`) : o).map((o) => [o.name, o] as const),
  );
  assert.ok([...new Chains(loop).healthMap().values()].every((h) => h === "cycle detected"));
  assert.ok(loop.lookups <= 3 * n, `${loop.lookups} lookups in a loop`);
});

// ---- parseRemote, normalizePrefix, keyFor -----------------------------------------------------

Deno.test("normalizePrefix() ends a non-empty prefix in exactly one slash", () => {
  const cases: [string, string][] = [
    ["", ""],
    ["/", ""],
    ["z3-backup", "z3-backup/"],
    ["z3-backup/", "z3-backup/"],
    ["a/b//", "a/b/"],
  ];
  for (const [input, want] of cases) assert.equal(normalizePrefix(input), want, input);
});

Deno.test("keyFor() joins the normalised prefix and the full snapshot name", () => {
  assert.equal(keyFor("z3-backup", "pool/fs@s1"), "z3-backup/pool/fs@s1");
  assert.equal(keyFor("", "pool/fs@s1"), "pool/fs@s1");
});

const parseCases: {
  name: string;
  prefix: string;
  key: string;
  metadata: Record<string, string>;
  want: Partial<RemoteSnapshot> | undefined;
}[] = [
  {
    name: "reads an original z3 full (isfull=true)",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@zfs-auto-snap_daily-2016-01-01",
    metadata: { isfull: "true", compressor: "pigz1", size: "1048576" },
    want: {
      name: "pool/fs@zfs-auto-snap_daily-2016-01-01",
      snapshot: "zfs-auto-snap_daily-2016-01-01",
      isFull: true,
      compressor: "pigz1",
      size: 1048576,
    },
  },
  {
    name: "reads the legacy is_full key",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@a",
    metadata: { is_full: "true" },
    want: { isFull: true, parent: undefined },
  },
  {
    name: "accepts True in any case",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@a",
    metadata: { isfull: "True" },
    want: { isFull: true },
  },
  {
    name: "reads an original z3 incremental",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@b",
    metadata: { parent: "pool/fs@a", size: "42" },
    want: { isFull: false, parent: "pool/fs@a", size: 42, guid: undefined },
  },
  {
    name: "treats isfull=false as incremental",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@b",
    metadata: { isfull: "false", parent: "pool/fs@a" },
    want: { isFull: false, parent: "pool/fs@a" },
  },
  {
    name: "treats a junk size as unknown",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@b",
    metadata: { isfull: "true", size: "12MB" },
    want: { size: undefined, objectSize: 7 },
  },
  {
    name: "reads this z3's GUIDs and creation time",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@b",
    metadata: {
      parent: "pool/fs@a",
      "z3-guid": "18446744073709551615",
      "z3-parent-guid": "123",
      "z3-created": "1700000000",
    },
    want: { guid: "18446744073709551615", parentGuid: "123", created: 1700000000 },
  },
  {
    name: "lower-cases metadata keys",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@b",
    metadata: { IsFull: "TRUE", "Z3-Guid": "5" },
    want: { isFull: true, guid: "5" },
  },
  {
    name: "normalises a prefix without its trailing slash",
    prefix: "z3-backup",
    key: "z3-backup/pool/fs@a",
    metadata: { isfull: "true" },
    want: { name: "pool/fs@a", key: "z3-backup/pool/fs@a" },
  },
  {
    name: "works with an empty prefix",
    prefix: "",
    key: "pool/fs@a",
    metadata: { isfull: "true" },
    want: { name: "pool/fs@a" },
  },
  {
    name: "ignores another dataset's key",
    prefix: "z3-backup/",
    key: "z3-backup/pool/other@a",
    metadata: { isfull: "true" },
    want: undefined,
  },
  {
    name: "ignores a child dataset's key",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs/child@a",
    metadata: { isfull: "true" },
    want: undefined,
  },
  {
    name: "ignores a key outside the prefix",
    prefix: "z3-backup/",
    key: "elsewhere/pool/fs@a",
    metadata: { isfull: "true" },
    want: undefined,
  },
  {
    name: "ignores a key with an empty snapshot name",
    prefix: "z3-backup/",
    key: "z3-backup/pool/fs@",
    metadata: { isfull: "true" },
    want: undefined,
  },
];

for (const c of parseCases) {
  Deno.test(`parseRemote() ${c.name}`, () => {
    const got = parseRemote(c.prefix, DS, c.key, c.metadata, 7);
    if (c.want === undefined) {
      assert.equal(got, undefined);
      return;
    }
    assert.ok(got);
    const picked = Object.fromEntries(
      Object.keys(c.want).map((k) => [k, got[k as keyof RemoteSnapshot]]),
    );
    assert.deepEqual(picked, c.want);
  });
}

// ---- planBackup --------------------------------------------------------------------------------

function describePlan(plan: ReturnType<typeof planBackup>) {
  return {
    target: plan.target.snapshot,
    base: plan.base?.snapshot,
    steps: plan.steps.map((s) => `${s.from?.snapshot ?? "full"}→${s.snapshot.snapshot}`),
  };
}

const backupCases: {
  name: string;
  local: LocalSnapshot[];
  objects: RemoteSnapshot[];
  options?: { full?: boolean; target?: string; fullEvery?: number };
  want: ReturnType<typeof describePlan>;
}[] = [
  {
    name:
      "sends the whole history when the bucket is empty: the oldest as a full, then incrementals",
    local: locals("a", "b", "c"),
    objects: [],
    want: { target: "c", base: undefined, steps: ["full→a", "a→b", "b→c"] },
  },
  {
    name: "sends the history up to an older --target when the bucket is empty",
    local: locals("a", "b", "c"),
    objects: [],
    options: { target: "b" },
    want: { target: "b", base: undefined, steps: ["full→a", "a→b"] },
  },
  {
    name: "sends the whole history when the bucket holds none of the local snapshots",
    local: locals("a", "b"),
    objects: [obj("old")],
    want: { target: "b", base: undefined, steps: ["full→a", "a→b"] },
  },
  {
    name: "sends the whole history with a single snapshot as one full",
    local: locals("a"),
    objects: [],
    want: { target: "a", base: undefined, steps: ["full→a"] },
  },
  {
    name:
      "FULL_EVERY=2 with a full base and five pending uploads every one, a new full at the third",
    local: locals("a", "b", "c", "d", "e", "f"),
    objects: [ours("a")],
    options: { fullEvery: 2 },
    want: { target: "f", base: "a", steps: ["a→b", "b→c", "full→d", "d→e", "e→f"] },
  },
  {
    name: "FULL_EVERY=2 counts the incrementals already below the base",
    local: locals("a", "b", "c", "d", "e", "f", "g"),
    objects: [ours("a"), ours("b", "a")],
    options: { fullEvery: 2 },
    want: { target: "g", base: "b", steps: ["b→c", "full→d", "d→e", "e→f", "full→g"] },
  },
  {
    name: "FULL_EVERY=1 on an empty bucket alternates fulls and incrementals",
    local: locals("a", "b", "c", "d"),
    objects: [],
    options: { fullEvery: 1 },
    want: { target: "d", base: undefined, steps: ["full→a", "a→b", "full→c", "c→d"] },
  },
  {
    name: "FULL_EVERY=0 never starts a new full",
    local: locals("a", "b", "c", "d"),
    objects: [ours("a")],
    options: { fullEvery: 0 },
    want: { target: "d", base: "a", steps: ["a→b", "b→c", "c→d"] },
  },
  {
    name: "sends the incremental chain from the newest snapshot in the bucket",
    local: locals("a", "b", "c", "d"),
    objects: [obj("a")],
    want: { target: "d", base: "a", steps: ["a→b", "b→c", "c→d"] },
  },
  {
    name: "builds on objects of the original z3 by name",
    local: locals("a", "b", "c"),
    objects: [obj("a"), obj("b", "a")],
    want: { target: "c", base: "b", steps: ["b→c"] },
  },
  {
    name: "builds on this z3's objects when the GUIDs match",
    local: locals("a", "b", "c"),
    objects: [ours("a"), ours("b", "a")],
    want: { target: "c", base: "b", steps: ["b→c"] },
  },
  {
    name: "plans nothing when the bucket is up to date",
    local: locals("a", "b"),
    objects: [obj("a"), obj("b", "a")],
    want: { target: "b", base: "b", steps: [] },
  },
  {
    name: "sends one full with --full and names the newest object below it as the base to release",
    local: locals("a", "b", "c"),
    objects: [obj("a"), obj("b", "a")],
    options: { full: true },
    want: { target: "c", base: "b", steps: ["full→c"] },
  },
  {
    name: "sends one full with --full onto a broken chain, its base named for the release",
    local: locals("a", "b", "c"),
    objects: [obj("b", "x")],
    options: { full: true },
    want: { target: "c", base: "b", steps: ["full→c"] },
  },
  {
    name: "sends a full of an older --target",
    local: locals("a", "b", "c"),
    objects: [],
    options: { full: true, target: "b" },
    want: { target: "b", base: undefined, steps: ["full→b"] },
  },
  {
    name: "stops at an older --target",
    local: locals("a", "b", "c", "d"),
    objects: [obj("a")],
    options: { target: "c" },
    want: { target: "c", base: "a", steps: ["a→b", "b→c"] },
  },
  {
    name: "accepts --target as a full name",
    local: locals("a", "b"),
    objects: [obj("a")],
    options: { target: `${DS}@b` },
    want: { target: "b", base: "a", steps: ["a→b"] },
  },
];

for (const c of backupCases) {
  Deno.test(`planBackup() ${c.name}`, () => {
    assert.deepEqual(describePlan(planBackup(c.local, bucket(...c.objects), c.options)), c.want);
  });
}

Deno.test("planBackup() gives each step the previous local snapshot as its parent", () => {
  const local = locals("a", "b", "c", "d");
  const plan = planBackup(local, bucket(obj("a")));
  assert.deepEqual(plan.steps, [
    { snapshot: local[1], from: local[0] },
    { snapshot: local[2], from: local[1] },
    { snapshot: local[3], from: local[2] },
  ]);
  assert.equal(plan.base, local[0]);
});

const refusedBackups: {
  name: string;
  local: LocalSnapshot[];
  objects: RemoteSnapshot[];
  options?: { full?: boolean; target?: string };
  error: typeof ChainError | typeof UsageError;
  message: RegExp[];
  /** What the message must not say. */
  absent?: RegExp[];
}[] = [
  {
    name: "refuses an unhealthy base and says what to run",
    local: locals("a", "b", "c"),
    objects: [obj("b", "a")],
    error: ChainError,
    message: [/"pool\/fs@b"/, /missing parent/, /z3 backup --full/],
  },
  {
    name: "refuses a base above a cycle",
    local: locals("a", "b", "c"),
    objects: [obj("b", "x"), obj("x", "b")],
    error: ChainError,
    message: [/"pool\/fs@b"/, /cycle detected/],
  },
  {
    name: "refuses a base whose GUID differs and prints both GUIDs",
    local: locals("a", "b", "c"),
    objects: [ours("a"), obj("b", "a", { "z3-guid": "999" })],
    error: ChainError,
    message: [/diverged/, new RegExp(`local ${guidOf("b")} vs bucket 999`), /new S3_PREFIX/],
    absent: [/--full/],
  },
  {
    name: "refuses when an older common snapshot's GUID differs",
    local: locals("a", "b", "c"),
    objects: [obj("a", undefined, { "z3-guid": "111" }), ours("b", "a")],
    error: ChainError,
    message: [/"pool\/fs@a"/, new RegExp(`local ${guidOf("a")} vs bucket 111`)],
    absent: [/--full/],
  },
  {
    name: "refuses --full onto another history, naming what depends on it and what is safe",
    local: locals("a", "b", "c"),
    objects: [
      ours("a"),
      obj("b", "a", { "z3-guid": "999", "z3-parent-guid": guidOf("a") }),
      obj("c", "b", { "z3-guid": guidOf("c"), "z3-parent-guid": "999" }),
      obj("d", "c"),
    ],
    options: { full: true, target: "b" },
    error: ChainError,
    message: [
      /^Cannot back up "pool\/fs@b" as a full: .*another snapshot/,
      new RegExp(`local ${guidOf("b")} vs bucket 999`),
      /2 object\(s\) depend on it: "pool\/fs@c", "pool\/fs@d"/,
      /new S3_PREFIX/,
      /delete the bucket's "pool\/fs@b" and the objects that depend on it/,
    ],
    absent: [/backup --full/],
  },
  {
    name: "refuses --full over the same snapshot's object (same GUID), naming its dependents",
    local: locals("a", "b", "c"),
    objects: [ours("a"), ours("b", "a"), ours("c", "b")],
    options: { full: true, target: "b" },
    error: ChainError,
    message: [
      /^Cannot back up "pool\/fs@b" as a full: the bucket already holds it \(an incremental from "pool\/fs@a"; 1 object\(s\) depend on it: "pool\/fs@c"\)/,
      /never writes over an object/,
      /take a new snapshot and back that up with --full, or use a new S3_PREFIX/,
    ],
  },
  {
    name: "refuses --full over an object without a GUID (original z3)",
    local: locals("a"),
    objects: [obj("a")],
    options: { full: true },
    error: ChainError,
    message: [/already holds it \(a full; no other object depends on it\)/],
  },
  {
    name: "refuses --full onto another history even when nothing depends on it",
    local: locals("a"),
    objects: [obj("a", undefined, { "z3-guid": "999" })],
    options: { full: true },
    error: ChainError,
    message: [/another snapshot/, /no other object depends on it/],
  },
  {
    name: "refuses a base whose link to its parent has another GUID, naming both",
    local: locals("a", "b", "c"),
    objects: [ours("a"), obj("b", "a", { "z3-guid": guidOf("b"), "z3-parent-guid": "999" })],
    error: ChainError,
    message: [
      /"pool\/fs@b" in the bucket is broken/,
      /guid mismatch/,
      /with GUID 999/,
      new RegExp(`has GUID ${guidOf("a")}`),
    ],
  },
  {
    name: "refuses an unknown --target",
    local: locals("a", "b"),
    objects: [],
    options: { target: "nope" },
    error: UsageError,
    message: [/^Cannot back up "nope": no such local snapshot$/],
  },
  {
    name: "refuses when there are no local snapshots",
    local: [],
    objects: [],
    error: UsageError,
    message: [/no local snapshots/],
  },
];

for (const c of refusedBackups) {
  Deno.test(`planBackup() ${c.name}`, () => {
    const chains = bucket(...c.objects);
    assert.throws(() => planBackup(c.local, chains, c.options), (err: unknown) => {
      assert.ok(err instanceof c.error, String(err));
      for (const pattern of c.message) assert.match(err.message, pattern);
      for (const pattern of c.absent ?? []) assert.doesNotMatch(err.message, pattern);
      return true;
    });
  });
}

// ---- planRestore -------------------------------------------------------------------------------

function restoreNames(plan: ReturnType<typeof planRestore>) {
  return { steps: plan.steps.map((s) => s.remote.snapshot), base: plan.base };
}

const restoreCases: {
  name: string;
  objects: RemoteSnapshot[];
  target: string;
  local: Record<string, string>;
  want: ReturnType<typeof restoreNames>;
}[] = [
  {
    name: "restores a full and its incrementals oldest first",
    objects: [obj("a"), obj("b", "a"), obj("c", "b"), obj("d", "c")],
    target: "c",
    local: {},
    want: { steps: ["a", "b", "c"], base: undefined },
  },
  {
    name: "stops at a snapshot that already exists locally",
    objects: [ours("a"), ours("b", "a"), ours("c", "b"), ours("d", "c")],
    target: "d",
    local: { a: guidOf("a"), b: guidOf("b") },
    want: { steps: ["c", "d"], base: full("b") },
  },
  {
    name: "stops at a local snapshot by name for objects without GUIDs",
    objects: [obj("a"), obj("b", "a"), obj("c", "b")],
    target: "c",
    local: { a: "1" },
    want: { steps: ["b", "c"], base: full("a") },
  },
  {
    name: "plans nothing when the target already exists locally",
    objects: [obj("a"), obj("b", "a")],
    target: "b",
    local: { a: "1", b: "2" },
    want: { steps: [], base: full("b") },
  },
  {
    name: "restores from the newest full below the target",
    objects: [obj("a"), obj("b", "a"), obj("c"), obj("d", "c")],
    target: "d",
    local: {},
    want: { steps: ["c", "d"], base: undefined },
  },
];

for (const c of restoreCases) {
  Deno.test(`planRestore() ${c.name}`, () => {
    const plan = planRestore(
      bucket(...c.objects),
      full(c.target),
      new Map(Object.entries(c.local)),
    );
    assert.deepEqual(restoreNames(plan), c.want);
  });
}

const refusedRestores: {
  name: string;
  objects: RemoteSnapshot[];
  target: string;
  local: Record<string, string>;
  error: typeof ChainError | typeof UsageError;
  message: RegExp[];
}[] = [
  {
    name: "refuses a missing parent before anything, even if a descendant is local",
    objects: [obj("b", "a"), obj("c", "b")],
    target: "c",
    local: { b: "1" },
    error: ChainError,
    message: [/^Cannot restore "pool\/fs@c"/, /parent broken/, /needs "pool\/fs@a"/],
  },
  {
    name: "refuses a target whose own parent is missing",
    objects: [obj("b", "a")],
    target: "b",
    local: {},
    error: ChainError,
    message: [/missing parent/],
  },
  {
    name: "refuses a cycle",
    objects: [obj("a", "b"), obj("b", "a")],
    target: "a",
    local: {},
    error: ChainError,
    message: [/cycle detected/],
  },
  {
    name: "refuses a snapshot that is not in the bucket",
    objects: [obj("a")],
    target: "zz",
    local: {},
    error: UsageError,
    message: [/^Cannot restore "pool\/fs@zz": not in the bucket$/],
  },
  {
    name: "refuses a local snapshot whose GUID differs from the bucket's",
    objects: [ours("a"), ours("b", "a")],
    target: "b",
    local: { a: "12345" },
    error: ChainError,
    message: [new RegExp(`local 12345 vs bucket ${guidOf("a")}`)],
  },
  {
    name: "refuses a chain whose link in the bucket has another GUID, naming both",
    objects: [
      ours("a"),
      obj("b", "a", { "z3-guid": guidOf("b"), "z3-parent-guid": "999" }),
      ours("c", "b"),
    ],
    target: "c",
    local: {},
    error: ChainError,
    message: [
      /^Cannot restore "pool\/fs@c": its chain in the bucket is broken/,
      /"pool\/fs@b" was sent from a "pool\/fs@a" with GUID 999/,
      new RegExp(`the bucket's "pool\\/fs@a" has GUID ${guidOf("a")}`),
    ],
  },
  {
    name: "refuses an incremental sent from another parent than the local one",
    objects: [obj("a"), obj("b", "a", { "z3-parent-guid": "777" })],
    target: "b",
    local: { a: "12345" },
    error: ChainError,
    message: [/local 12345 vs bucket 777/],
  },
];

for (const c of refusedRestores) {
  Deno.test(`planRestore() ${c.name}`, () => {
    const chains = bucket(...c.objects);
    const localGuids = new Map(Object.entries(c.local));
    assert.throws(() => planRestore(chains, full(c.target), localGuids), (err: unknown) => {
      assert.ok(err instanceof c.error, String(err));
      for (const pattern of c.message) assert.match(err.message, pattern);
      return true;
    });
  });
}

// ---- statusRows --------------------------------------------------------------------------------

Deno.test("statusRows() puts bucket-only snapshots in creation order among the local ones", () => {
  const local = locals("a", "b", "c");
  const uploaded = new Date("2024-01-01T00:00:00Z");
  const chains = bucket(
    obj("a", undefined, { size: "5000" }, uploaded),
    obj("b", "a", { size: "junk" }),
    // Bucket-only: by z3-created; without it, just after the parent (the chain's link), by
    // depth, then name; with no time at all, last.
    obj("zz-late", "b", { "z3-created": "1800000000", "z3-guid": "9" }),
    obj("aa-early", "b", { "z3-created": "1600000000" }),
    obj("mm-mod", "b", {}, new Date("2025-01-01T00:00:00Z")),
    obj("q-none", "b"),
    obj("p-none", "gone"),
  );
  const rows = statusRows(local, chains);
  assert.deepEqual(rows.map((r) => r.name), [
    "aa-early",
    "a",
    "b",
    "mm-mod",
    "q-none",
    "c",
    "zz-late",
    "p-none",
  ]);
  assert.deepEqual(rows[1], {
    name: "a",
    parent: "",
    type: "full",
    health: "ok",
    localState: "ok",
    size: 5000,
    guid: guidOf("a"),
    created: "2023-11-14T22:13:20.000Z",
    uploaded: "2024-01-01T00:00:00.000Z",
  });
  assert.deepEqual(rows[2], {
    name: "b",
    parent: "a",
    type: "incremental",
    health: "ok",
    localState: "ok",
    size: 1000,
    guid: guidOf("b"),
    created: "2023-11-14T22:14:20.000Z",
  });
  assert.deepEqual(rows[5], {
    name: "c",
    parent: "-",
    type: "missing",
    health: "-",
    localState: "ok",
    guid: guidOf("c"),
    created: "2023-11-14T22:15:20.000Z",
  });
  assert.deepEqual(rows[6], {
    name: "zz-late",
    parent: "b",
    type: "incremental",
    health: "ok",
    localState: "missing",
    size: 1000,
    guid: "9",
    created: "2027-01-15T08:00:00.000Z",
  });
  assert.equal(rows[3].created, undefined, "no z3-created: no creation time is made up");
  assert.equal(rows[3].uploaded, "2025-01-01T00:00:00.000Z");
  assert.equal(rows[7].health, "missing parent");
  assert.equal(rows[7].parent, "gone");
  assert.equal(
    rows[7].why,
    `missing parent: "${full("p-none")}" needs "${full("gone")}", which is not in the bucket`,
  );
});

Deno.test("statusRows() places an original z3 object (no z3-created) by its parent links", () => {
  // Uploaded after every local snapshot was taken, but the ancestor of the local "y".
  const late = new Date("2030-01-01T00:00:00Z");
  const chains = bucket(
    obj("w", undefined, {}, late),
    obj("x", "w", {}, late),
    obj("y", "x", {}, late),
    // Unrelated, and sorted before w and x by its time: it does not hold them back.
    obj("u", undefined, { "z3-created": "1800000000" }),
  );
  const rows = statusRows(locals("v", "y", "z"), chains);
  assert.deepEqual(rows.map((r) => r.name), ["v", "w", "x", "y", "z", "u"]);
});

Deno.test("statusRows() returns nothing for an empty pool and bucket", () => {
  assert.deepEqual(statusRows([], new Chains(new Map())), []);
});

Deno.test("statusRows() shows bucket-only rows of the prefix, with health over every object", () => {
  const chains = bucket(obj("other-a"), obj("keep-b", "other-a"), obj("other-c", "keep-b"));
  const rows = statusRows([], chains, "keep-");
  assert.deepEqual(rows.map((r) => [r.name, r.health]), [["keep-b", "ok"]]);
});
