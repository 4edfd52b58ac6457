import assert from "node:assert/strict";
import {
  chainHealth,
  type Health,
  humanSize,
  indexRemote,
  keyFor,
  normalizePrefix,
  parseRemote,
  planBackup,
  planRestore,
  type RemoteSnapshot,
  statusRows,
} from "../../lib/chain.ts";
import { ChainError, UsageError } from "../../lib/errors.ts";
import type { LocalSnapshot } from "../../lib/zfs.ts";

const DS = "pool/fs";
const PREFIX = "z3-backup/";

/** Local snapshots `pool/fs@<name>`, guid `g-<name>` → decimal, one minute apart. */
function locals(...names: string[]): LocalSnapshot[] {
  return names.map((snapshot, i) => ({
    name: `${DS}@${snapshot}`,
    snapshot,
    guid: guidOf(snapshot),
    creation: 1_700_000_000 + 60 * i,
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

function bucket(...objects: RemoteSnapshot[]) {
  const remote = indexRemote(objects);
  return { remote, health: chainHealth(remote) };
}

function healthOf(objects: RemoteSnapshot[]): Record<string, Health> {
  return Object.fromEntries(chainHealth(indexRemote(objects)));
}

const full = (name: string) => `${DS}@${name}`;

// ---- chainHealth -------------------------------------------------------------------------------

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
    name: "a full that also names a parent is still ok",
    objects: [obj("a", undefined, { parent: `${DS}@gone` })],
    want: { [full("a")]: "ok" },
  },
];

for (const c of healthCases) {
  Deno.test(`chainHealth() says ${c.name}`, () => {
    assert.deepEqual(healthOf(c.objects), c.want);
  });
}

Deno.test("chainHealth() handles a 3,000-long chain quickly, from any starting order", () => {
  const n = 3000;
  const objects = [obj("s0")];
  for (let i = 1; i < n; i++) objects.push(obj(`s${i}`, `s${i - 1}`));
  for (const order of [objects, [...objects].reverse()]) {
    const started = performance.now();
    const health = chainHealth(indexRemote(order));
    assert.equal(health.size, n);
    assert.ok([...health.values()].every((h) => h === "ok"));
    assert.ok(performance.now() - started < 1000, "linear, not quadratic or recursive");
  }
  // Broken at the bottom: everything above is "parent broken", without stack overflow.
  const broken = indexRemote(objects.slice(1).reverse());
  const health = chainHealth(broken);
  assert.equal(health.get(full("s1")), "missing parent");
  assert.equal(health.get(full(`s${n - 1}`)), "parent broken");
  // A 3,000-long loop.
  const loop = indexRemote(objects.map((o, i) => i === 0 ? obj("s0", `s${n - 1}`) : o));
  assert.ok([...chainHealth(loop).values()].every((h) => h === "cycle detected"));
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
  options?: { full?: boolean; target?: string };
  want: ReturnType<typeof describePlan>;
}[] = [
  {
    name: "starts a full when the bucket is empty",
    local: locals("a", "b", "c"),
    objects: [],
    want: { target: "c", base: undefined, steps: ["full→c"] },
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
    name: "sends one full with --full, whatever the bucket holds",
    local: locals("a", "b", "c"),
    objects: [obj("a"), obj("b", "a")],
    options: { full: true },
    want: { target: "c", base: undefined, steps: ["full→c"] },
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
    const { remote, health } = bucket(...c.objects);
    assert.deepEqual(describePlan(planBackup(c.local, remote, health, c.options)), c.want);
  });
}

Deno.test("planBackup() gives each step the previous local snapshot as its parent", () => {
  const local = locals("a", "b", "c", "d");
  const { remote, health } = bucket(obj("a"));
  const plan = planBackup(local, remote, health);
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
    message: [/diverged/, new RegExp(`local ${guidOf("b")} vs bucket 999`), /--full/],
  },
  {
    name: "refuses when an older common snapshot's GUID differs",
    local: locals("a", "b", "c"),
    objects: [obj("a", undefined, { "z3-guid": "111" }), ours("b", "a")],
    error: ChainError,
    message: [/"pool\/fs@a"/, new RegExp(`local ${guidOf("a")} vs bucket 111`)],
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
    const { remote, health } = bucket(...c.objects);
    assert.throws(() => planBackup(c.local, remote, health, c.options), (err: unknown) => {
      assert.ok(err instanceof c.error, String(err));
      for (const pattern of c.message) assert.match(err.message, pattern);
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
    const { remote, health } = bucket(...c.objects);
    const plan = planRestore(remote, health, full(c.target), new Map(Object.entries(c.local)));
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
    const { remote, health } = bucket(...c.objects);
    const localGuids = new Map(Object.entries(c.local));
    assert.throws(() => planRestore(remote, health, full(c.target), localGuids), (err: unknown) => {
      assert.ok(err instanceof c.error, String(err));
      for (const pattern of c.message) assert.match(err.message, pattern);
      return true;
    });
  });
}

// ---- statusRows --------------------------------------------------------------------------------

Deno.test("statusRows() lists local snapshots in order, then bucket-only ones by time", () => {
  const local = locals("a", "b", "c");
  const { remote, health } = bucket(
    obj("a", undefined, { size: "5000" }),
    obj("b", "a", { size: "junk" }),
    // Bucket-only: ordered by z3-created, then lastModified, then name.
    obj("zz-late", "b", { "z3-created": "1800000000", "z3-guid": "9" }),
    obj("aa-early", "b", { "z3-created": "1600000000" }),
    obj("mm-mod", "b", {}, new Date("2024-01-01T00:00:00Z")),
    obj("q-none", "b"),
    obj("p-none", "gone"),
  );
  const rows = statusRows(local, remote, health);
  assert.deepEqual(rows.map((r) => r.name), [
    "a",
    "b",
    "c",
    "aa-early",
    "mm-mod",
    "zz-late",
    "p-none",
    "q-none",
  ]);
  assert.deepEqual(rows[0], {
    name: "a",
    parent: "",
    type: "full",
    health: "ok",
    localState: "ok",
    size: 5000,
    guid: guidOf("a"),
  });
  assert.deepEqual(rows[1], {
    name: "b",
    parent: "a",
    type: "incremental",
    health: "ok",
    localState: "ok",
    size: 1000,
    guid: guidOf("b"),
  });
  assert.deepEqual(rows[2], {
    name: "c",
    parent: "-",
    type: "missing",
    health: "-",
    localState: "ok",
    guid: guidOf("c"),
  });
  assert.deepEqual(rows[5], {
    name: "zz-late",
    parent: "b",
    type: "incremental",
    health: "ok",
    localState: "missing",
    size: 1000,
    guid: "9",
  });
  assert.equal(rows[6].health, "missing parent");
  assert.equal(rows[6].parent, "gone");
});

Deno.test("statusRows() returns nothing for an empty pool and bucket", () => {
  assert.deepEqual(statusRows([], new Map(), new Map()), []);
});

// ---- humanSize ---------------------------------------------------------------------------------

Deno.test("humanSize() prints like the original z3", () => {
  const M = 1024 ** 2;
  const cases: [number | undefined, string][] = [
    [undefined, ""],
    [0, "0 M"],
    [12.5 * M, "12.5 M"],
    [M, "1 M"],
    [1024 * M, "1024 M"],
    [1.2 * 1024 * M, "1.2 G"],
    [1.234 * 1024 * M, "1.23 G"],
    [3 * 1024 ** 2 * M, "3 T"],
    [5000 * 1024 ** 2 * M, "5000 T"],
    [Number.NaN, ""],
  ];
  for (const [bytes, want] of cases) assert.equal(humanSize(bytes), want, String(bytes));
});
