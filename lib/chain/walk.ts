/**
 * Pure: the walk up a snapshot's chain in the bucket. Every module under lib/ that follows an
 * object's parent (the plans, status rows, time order, retention, the Object Lock policy,
 * `restore --properties`'s full, verify) goes through {@linkcode Chains}: each link is checked the
 * same way (by name and GUID) and there is one cycle guard.
 *
 * A link from an incremental to its parent holds when the parent object is in the bucket and,
 * where both GUIDs are recorded, the child's `z3-parent-guid` equals the parent's `z3-guid`. An
 * object may also be broken in itself (a name ZFS would refuse, an empty object, or a flaw the
 * caller found, such as metadata that disagrees with its check record); then nothing above it is
 * sound either.
 *
 * @module
 */

import { printable, snapshotNameProblem } from "./names.ts";
import type { RemoteSnapshot } from "./types.ts";

/** Health of an object in the bucket, worded as the original z3's status table (and more). */
export type Health =
  | "ok"
  | "missing parent"
  | "parent broken"
  | "cycle detected"
  | "guid mismatch"
  | "invalid name"
  | "record missing"
  | "record mismatch"
  | "empty"
  | "unsigned"
  | "bad signature";

/** Something wrong with an object itself, found by the caller (see `check_records.ts`). */
export interface Flaw {
  /** How status shows it. */
  health: "record missing" | "record mismatch" | "unsigned" | "bad signature";
  /** Why, naming the object; one line. */
  detail: string;
}

/** Where one object's link down its chain leads. */
export type Link =
  | { kind: "full" }
  | { kind: "parent"; parent: RemoteSnapshot }
  | { kind: "broken"; health: Health; detail: string };

/** `"name"`, with control characters escaped, for messages. */
export function quote(name: string): string {
  return `"${printable(name)}"`;
}

/** Health inherited by the child of a snapshot whose health is `parent`. */
function inherit(parent: Health): Health {
  if (parent === "ok" || parent === "cycle detected") return parent;
  return "parent broken";
}

/**
 * The chains formed by one dataset's objects: each object's link, health (memoised: the health of
 * every object together costs time linear in the number of objects), why a chain is broken, its
 * full, ancestors, depth and descendants. `ancestors`, `depth` and `fullOf` are not memoised:
 * each call walks the chain, in time linear in its length. Reads `remote` only through `get`.
 */
export class Chains {
  /** The objects, by full name. */
  readonly remote: ReadonlyMap<string, RemoteSnapshot>;
  #flaws: ReadonlyMap<string, Flaw>;
  #health = new Map<string, Health>();
  /** For each object that is not ok: the object where its chain breaks. */
  #breaksAt = new Map<string, string>();
  /** For each object where a chain breaks: why. */
  #why = new Map<string, string>();
  #children?: Map<string, RemoteSnapshot[]>;

  /** `flaws`: objects the caller found broken in themselves, by full name. */
  constructor(
    remote: ReadonlyMap<string, RemoteSnapshot>,
    flaws: ReadonlyMap<string, Flaw> = new Map(),
  ) {
    this.remote = remote;
    this.#flaws = flaws;
  }

  /** The link from `snap` to its parent, checked by name and by GUID (see module doc). */
  link(snap: RemoteSnapshot): Link {
    const nameProblem = snapshotNameProblem(snap.snapshot);
    if (nameProblem !== undefined) {
      return {
        kind: "broken",
        health: "invalid name",
        detail: `${quote(snap.name)} is no snapshot name: ${nameProblem}`,
      };
    }
    const flaw = this.#flaws.get(snap.name);
    if (flaw !== undefined) return { kind: "broken", health: flaw.health, detail: flaw.detail };
    if (snap.objectSize === 0) {
      return {
        kind: "broken",
        health: "empty",
        detail: `${quote(snap.name)} is an empty object (0 bytes), which holds no send stream`,
      };
    }
    if (snap.isFull) return { kind: "full" };
    if (snap.parent === undefined) {
      return {
        kind: "broken",
        health: "missing parent",
        detail: `${quote(snap.name)} records no parent`,
      };
    }
    const parent = this.remote.get(snap.parent);
    if (parent === undefined) {
      return {
        kind: "broken",
        health: "missing parent",
        detail: `${quote(snap.name)} needs ${quote(snap.parent)}, which is not in the bucket`,
      };
    }
    if (
      snap.parentGuid !== undefined && parent.guid !== undefined && snap.parentGuid !== parent.guid
    ) {
      return {
        kind: "broken",
        health: "guid mismatch",
        detail: `${quote(snap.name)} was sent from a ${quote(parent.name)} with GUID ` +
          `${snap.parentGuid}, but the bucket's ${quote(parent.name)} has GUID ${parent.guid}`,
      };
    }
    return { kind: "parent", parent };
  }

  /** Health of the object `name`; undefined when it is not in the bucket. */
  health(name: string): Health | undefined {
    const known = this.#health.get(name);
    if (known !== undefined) return known;
    let snap = this.remote.get(name);
    if (snap === undefined) return undefined;
    const path: string[] = [];
    const onPath = new Set<string>();
    let found: Health;
    let breaksAt: string | undefined;
    for (;;) {
      const memo = this.#health.get(snap.name);
      if (memo !== undefined) {
        found = memo;
        breaksAt = this.#breaksAt.get(snap.name);
        break;
      }
      if (onPath.has(snap.name)) {
        found = "cycle detected";
        breaksAt = snap.name;
        this.#why.set(snap.name, `the parents in the bucket form a loop at ${quote(snap.name)}`);
        break;
      }
      const link = this.link(snap);
      if (link.kind === "full") {
        this.#health.set(snap.name, "ok");
        found = "ok";
        break;
      }
      if (link.kind === "broken") {
        found = link.health;
        breaksAt = snap.name;
        this.#health.set(snap.name, found);
        this.#breaksAt.set(snap.name, snap.name);
        this.#why.set(snap.name, link.detail);
        break;
      }
      path.push(snap.name);
      onPath.add(snap.name);
      snap = link.parent;
    }
    for (let i = path.length - 1; i >= 0; i--) {
      found = inherit(found);
      this.#health.set(path[i], found);
      if (breaksAt !== undefined) this.#breaksAt.set(path[i], breaksAt);
    }
    return this.#health.get(name);
  }

  /** Health of every object, by full name. */
  healthMap(): Map<string, Health> {
    const out = new Map<string, Health>();
    for (const name of this.remote.keys()) out.set(name, this.health(name)!);
    return out;
  }

  /**
   * Why `name`'s chain is broken, naming the object where it breaks (both GUIDs for a GUID
   * mismatch), e.g. `missing parent: "pool/fs@b" needs "pool/fs@a", which is not in the
   * bucket`; `""` for a healthy chain.
   */
  why(name: string): string {
    const health = this.health(name);
    if (health === undefined) return `${quote(name)} is not in the bucket`;
    if (health === "ok") return "";
    const at = this.#breaksAt.get(name);
    const detail = at === undefined ? undefined : this.#why.get(at);
    return detail === undefined ? health : `${health}: ${detail}`;
  }

  /**
   * The objects from `name` (included) down its chain, newest first: through every sound link,
   * ending at its full, or at the object whose link is broken. Each object comes once, even in a
   * loop.
   */
  *ancestors(name: string): Generator<RemoteSnapshot> {
    const seen = new Set<string>();
    for (let snap = this.remote.get(name); snap !== undefined && !seen.has(snap.name);) {
      seen.add(snap.name);
      yield snap;
      const link = this.link(snap);
      snap = link.kind === "parent" ? link.parent : undefined;
    }
  }

  /**
   * The full at the bottom of `name`'s chain, through sound links; undefined when `name` is not
   * in the bucket or its chain is broken (not `ok`).
   */
  fullOf(name: string): RemoteSnapshot | undefined {
    if (this.health(name) !== "ok") return undefined;
    let last: RemoteSnapshot | undefined;
    for (const snap of this.ancestors(name)) last = snap;
    return last;
  }

  /**
   * How many incrementals lie between `name` (included) and its full, or the object where its
   * chain breaks (see {@linkcode ancestors}).
   */
  depth(name: string): number {
    let count = 0;
    for (const snap of this.ancestors(name)) if (!snap.isFull) count++;
    return count;
  }

  /**
   * Every object whose chain goes through one of `names` by sound links, those excluded: what
   * cannot be restored without them. Linear in the number of objects.
   */
  descendants(names: Iterable<string>): Set<string> {
    if (this.#children === undefined) {
      this.#children = new Map();
      for (const snap of this.remote.values()) {
        const link = this.link(snap);
        if (link.kind !== "parent") continue;
        const list = this.#children.get(link.parent.name);
        if (list === undefined) this.#children.set(link.parent.name, [snap]);
        else list.push(snap);
      }
    }
    const start = new Set(names);
    const out = new Set<string>();
    const stack = [...start];
    while (stack.length > 0) {
      for (const child of this.#children.get(stack.pop()!) ?? []) {
        if (out.has(child.name) || start.has(child.name)) continue;
        out.add(child.name);
        stack.push(child.name);
      }
    }
    return out;
  }
}
