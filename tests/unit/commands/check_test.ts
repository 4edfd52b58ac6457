import assert from "node:assert/strict";
import {
  checkExitCode,
  type CheckInput,
  decideCheck,
  formatCheck,
} from "../../../lib/commands/check.ts";

const NOW = new Date("2026-12-01T12:00:00Z");
const HOUR = 3_600_000;
const at = (hoursAgo: number) => new Date(NOW.getTime() - hoursAgo * HOUR);
const ok = (name: string, hoursAgo: number): CheckInput => ({
  name: `tank/a@${name}`,
  health: "ok",
  uploaded: at(hoursAgo),
  why: "",
});
const decide = (objects: CheckInput[], maxAgeMs = 26 * HOUR) =>
  decideCheck("tank/a", objects, { now: NOW, maxAgeMs });

Deno.test("decideCheck() is OK when the newest healthy upload is younger than the max age", () => {
  const r = decide([ok("s1", 50), ok("s2", 2), ok("s0", 30)]);
  assert.deepEqual(r, {
    dataset: "tank/a",
    state: "OK",
    newest: "tank/a@s2",
    uploaded: at(2).toISOString(),
    ageSeconds: 7200,
    maxAgeSeconds: 26 * 3600,
    detail: "newest tank/a@s2",
  });
  assert.deepEqual(formatCheck(r), "OK\ttank/a\t2h\tnewest tank/a@s2");
  assert.deepEqual(checkExitCode([r]), 0);
});

Deno.test("decideCheck() is STALE when the newest healthy upload is older than the max age", () => {
  const r = decide([ok("s1", 50), ok("s2", 27)]);
  assert.deepEqual([r.state, r.newest, r.ageSeconds], ["STALE", "tank/a@s2", 27 * 3600]);
  assert.deepEqual(checkExitCode([r]), 9);
  // Exactly the max age is not yet stale.
  assert.deepEqual(decide([ok("s2", 26)]).state, "OK");
});

Deno.test("decideCheck() is STALE with no object, or none with an upload time", () => {
  const none = decide([]);
  assert.deepEqual([none.state, none.newest, none.ageSeconds], ["STALE", undefined, undefined]);
  assert.deepEqual(formatCheck(none), "STALE\ttank/a\t-\tno healthy backup in the bucket");
  assert.deepEqual(decide([{ ...ok("s1", 1), uploaded: undefined }]).state, "STALE");
});

Deno.test("decideCheck() is BROKEN when any object's chain is broken, even with a fresh one", () => {
  const broken: CheckInput = {
    name: "tank/a@s3",
    health: "missing parent",
    uploaded: at(0),
    why: 'missing parent: "tank/a@s3" needs "tank/a@s2", which is not in the bucket',
  };
  const r = decide([ok("s1", 1), broken]);
  assert.deepEqual(
    [r.state, r.newest],
    ["BROKEN", "tank/a@s1"],
    "newest healthy, not the broken one",
  );
  assert.match(r.detail, /needs "tank\/a@s2"/);
  assert.deepEqual(checkExitCode([r]), 5);
});

Deno.test("decideCheck() skips a broken newer object when it picks the newest healthy one", () => {
  const r = decide([ok("s1", 30), { ...ok("s2", 1), health: "parent broken" }]);
  assert.deepEqual([r.state, r.newest], ["BROKEN", "tank/a@s1"]);
});

Deno.test("checkExitCode() puts broken before stale before ok", () => {
  const okR = decide([ok("s1", 1)]);
  const stale = decide([]);
  const broken = decide([{ ...ok("s1", 1), health: "cycle detected" }]);
  assert.deepEqual(checkExitCode([okR, stale, broken]), 5);
  assert.deepEqual(checkExitCode([okR, stale]), 9);
  assert.deepEqual(checkExitCode([okR, okR]), 0);
});
