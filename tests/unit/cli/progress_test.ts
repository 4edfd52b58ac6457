import assert from "node:assert/strict";
import { humanSeconds, progressLine } from "../../../lib/cli/progress.ts";

const MiB = 1024 * 1024;

Deno.test("progressLine() names what moves, and with a total shows it, the percent and an ETA", () => {
  assert.equal(
    progressLine("tank/data@daily-3", 25 * MiB, 5, 100 * MiB),
    "tank/data@daily-3: 25.0 MiB of 100.0 MiB (25%), 5.0 MiB/s, 5s, ETA 15s",
  );
  assert.equal(
    progressLine("tank/data@daily-3", 25 * MiB, 5),
    "tank/data@daily-3: 25.0 MiB, 5.0 MiB/s, 5s",
    "no estimate: no total, no ETA",
  );
  assert.equal(
    progressLine("t@s", 120 * MiB, 10, 100 * MiB),
    "t@s: 120.0 MiB of 100.0 MiB (100%), 12.0 MiB/s, 10s",
    "past a low estimate: no ETA",
  );
});

Deno.test("humanSeconds() writes seconds, minutes and hours", () => {
  assert.deepEqual([humanSeconds(42), humanSeconds(185), humanSeconds(3725)], [
    "42s",
    "3m05s",
    "1h02m",
  ]);
});
