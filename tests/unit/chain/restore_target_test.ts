import assert from "node:assert/strict";
import { checkTarget, type RestorePlan } from "../../../lib/chain/restore_plan.ts";
import { ChainError } from "../../../lib/base/errors.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const DS = "pool/fs";
const step = (snapshot: string) => ({
  remote: {
    name: `${DS}@${snapshot}`,
    snapshot,
    key: `z3-backup/${DS}@${snapshot}`,
    isFull: false,
    objectSize: 1,
    metadata: {},
  } satisfies RemoteSnapshot,
});
const incremental: RestorePlan = { steps: [step("c"), step("d")], base: `${DS}@b` };
const full: RestorePlan = { steps: [step("a")] };
const target = (snapshots: string[], more: { exists?: boolean; force?: boolean } = {}) => ({
  name: "pool/back",
  exists: more.exists ?? true,
  snapshots,
  force: more.force ?? false,
});

Deno.test("checkTarget() refuses incrementals onto a target with snapshots newer than the base", () => {
  assert.throws(
    () => checkTarget(`${DS}@d`, incremental, target(["a", "b", "x", "y"])),
    (err: Error) =>
      err instanceof ChainError &&
      /^Cannot restore "pool\/fs@d" into "pool\/back": it has 2 snapshot\(s\) newer than "b"/
        .test(err.message) &&
      /\("x", "y"\)/.test(err.message) && /--force/.test(err.message),
  );
});

Deno.test("checkTarget() accepts a target whose newest snapshot is the base", () => {
  checkTarget(`${DS}@d`, incremental, target(["a", "b"]));
});

Deno.test("checkTarget() leaves newer snapshots to --force (zfs receive -F)", () => {
  checkTarget(`${DS}@d`, incremental, target(["a", "b", "x"], { force: true }));
});

Deno.test("checkTarget() refuses a full onto a dataset that exists, unless --force", () => {
  assert.throws(
    () => checkTarget(`${DS}@a`, full, target([])),
    (err: Error) => err instanceof ChainError && /exists and shares no snapshot/.test(err.message),
  );
  checkTarget(`${DS}@a`, full, target([], { force: true }));
  checkTarget(`${DS}@a`, full, target([], { exists: false }));
});

Deno.test("checkTarget() accepts an empty plan (nothing to restore)", () => {
  checkTarget(`${DS}@b`, { steps: [], base: `${DS}@b` }, target(["a", "b", "x"]));
});
