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

/** Where an object sits in its chain: the last object of its `ancestors` walk, and its depth. */
interface Place {
  bottom: RemoteSnapshot;
  depth: number;
}

/** Health inherited by the child of a snapshot whose health is `parent`. */
function inherit(parent: Health): Health {
  if (parent === "ok" || parent === "cycle detected") return parent;
  return "parent broken";
}

/**
 * The chains formed by one dataset's objects: each object's link, health, why a chain is broken,
 * its full, ancestors, depth, children and descendants. Health, depth, the bottom of a chain and
 * its full are memoised: asking them of every object together costs time linear in the number of
 * objects. `ancestors` is not: each call walks the chain, in time linear in its length.
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
  /** For each object walked: the last object of its `ancestors` walk, and its `depth`. */
  #places = new Map<string, Place>();

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
   * in the bucket or its chain is broken (not `ok`). Memoised.
   */
  fullOf(name: string): RemoteSnapshot | undefined {
    if (this.health(name) !== "ok") return undefined;
    return this.#place(name)?.bottom;
  }

  /**
   * The last object of `name`'s {@linkcode ancestors} walk: its full, the object whose link is
   * broken, or in a loop the object before `name` comes round again; undefined when `name` is not
   * in the bucket. Memoised.
   */
  bottom(name: string): RemoteSnapshot | undefined {
    return this.#place(name)?.bottom;
  }

  /**
   * How many incrementals lie between `name` (included) and its full, or the object where its
   * chain breaks (see {@linkcode ancestors}). Memoised; 0 when `name` is not in the bucket.
   */
  depth(name: string): number {
    return this.#place(name)?.depth ?? 0;
  }

  /**
   * The bottom and depth of `name`, as {@linkcode health} walks: up the links until an object
   * already placed, an end (a full or a broken link) or a loop, then each object of the path from
   * the top down. An object with a sound link sits one above its parent (same bottom, depth + 1);
   * in a loop each object's walk ends at the object before it.
   */
  #place(name: string): Place | undefined {
    const known = this.#places.get(name);
    if (known !== undefined) return known;
    const path: RemoteSnapshot[] = [];
    const index = new Map<string, number>();
    let snap = this.remote.get(name);
    let below: Place | undefined;
    while (snap !== undefined) {
      below = this.#places.get(snap.name);
      if (below !== undefined) break;
      const loopAt = index.get(snap.name);
      if (loopAt !== undefined) {
        this.#placeLoop(path.slice(loopAt));
        below = this.#places.get(path[loopAt].name);
        path.length = loopAt;
        break;
      }
      index.set(snap.name, path.length);
      path.push(snap);
      const link = this.link(snap);
      if (link.kind !== "parent") {
        path.pop();
        below = { bottom: snap, depth: snap.isFull ? 0 : 1 };
        this.#places.set(snap.name, below);
        break;
      }
      snap = link.parent;
    }
    for (let i = path.length - 1; i >= 0 && below !== undefined; i--) {
      below = { bottom: below.bottom, depth: below.depth + 1 };
      this.#places.set(path[i].name, below);
    }
    return this.#places.get(name);
  }

  /** Places the objects of a loop (`loop[i]`'s parent is `loop[i + 1]`, the last's `loop[0]`). */
  #placeLoop(loop: RemoteSnapshot[]): void {
    for (let i = 0; i < loop.length; i++) {
      const bottom = loop[(i + loop.length - 1) % loop.length];
      this.#places.set(loop[i].name, { bottom, depth: loop.length });
    }
  }

  /** The objects whose sound link ({@linkcode link}) leads to `name`, in the order of `remote`. */
  children(name: string): readonly RemoteSnapshot[] {
    return this.#childMap().get(name) ?? [];
  }

  #childMap(): Map<string, RemoteSnapshot[]> {
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
    return this.#children;
  }

  /**
   * Every object whose chain goes through one of `names` by sound links, those excluded: what
   * cannot be restored without them. Linear in the number of objects.
   */
  descendants(names: Iterable<string>): Set<string> {
    const children = this.#childMap();
    const start = new Set(names);
    const out = new Set<string>();
    const stack = [...start];
    while (stack.length > 0) {
      for (const child of children.get(stack.pop()!) ?? []) {
        if (out.has(child.name) || start.has(child.name)) continue;
        out.add(child.name);
        stack.push(child.name);
      }
    }
    return out;
  }
}
