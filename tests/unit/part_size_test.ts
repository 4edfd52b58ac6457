import assert from "node:assert/strict";
import { UsageError } from "../../lib/errors.ts";
import {
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  type PartSchedule,
  partSizeOf,
  planSchedule,
  SCHEDULE_KEYS,
  scheduleFromMetadata,
  scheduleToMetadata,
} from "../../lib/part_size.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** Bytes that `parts` parts hold under `schedule`. */
function capacity(schedule: PartSchedule, parts: number): number {
  let total = 0;
  for (let n = 1; n <= parts; n++) total += partSizeOf(schedule, n);
  return total;
}

Deno.test("planSchedule() defaults to 8 MiB parts doubling every 909 parts", () => {
  assert.deepEqual(planSchedule(), { base: 8 * MiB, doubleEvery: 909 });
});

Deno.test("planSchedule() by default holds more than S3's 5 TiB in 10,000 parts", () => {
  const schedule = planSchedule();
  assert.ok(capacity(schedule, MAX_PARTS) >= 5 * TiB, `capacity ${capacity(schedule, MAX_PARTS)}`);
});

Deno.test("planSchedule() holds S3's 5 TiB in 10,000 parts for every part size from 5M", () => {
  // pput --help: "the part size doubles every max-parts/11 parts, so any stream up to S3's
  // 5 TiB limit fits".
  for (const partSize of [MIN_PART_SIZE, 5 * MiB + 128 * 1024, 8 * MiB, 64 * MiB, MAX_PART_SIZE]) {
    const held = capacity(planSchedule({ partSize }), MAX_PARTS);
    assert.ok(held >= 5 * TiB, `--chunk-size ${partSize}: 10,000 parts hold ${held / TiB} TiB`);
  }
});

Deno.test("planSchedule() doubles every maxParts/11 parts, at least every part", () => {
  const table: [number, number][] = [[10_000, 909], [22, 2], [20, 1], [11, 1], [9, 1], [1, 1]];
  for (const [maxParts, doubleEvery] of table) {
    assert.deepEqual(
      planSchedule({ partSize: 5 * MiB, maxParts }),
      { base: 5 * MiB, doubleEvery },
      `maxParts ${maxParts}`,
    );
  }
});

Deno.test("partSizeOf() doubles after every doubleEvery parts, capped at 5 GiB", () => {
  const grow = { base: 5 * MiB, doubleEvery: 2 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7].map((n) => partSizeOf(grow, n) / MiB),
    [5, 5, 10, 10, 20, 20, 40],
  );
  const every = { base: 8 * MiB, doubleEvery: 1000 };
  assert.deepEqual(
    [1, 1000, 1001, 2000, 2001, 9001, 10_000].map((n) => partSizeOf(every, n) / MiB),
    [8, 8, 16, 16, 32, 4096, 4096],
  );
  assert.deepEqual(partSizeOf({ base: 5 * MiB, doubleEvery: 1 }, 11), 5 * GiB, "5 MiB × 2^10");
  assert.deepEqual(partSizeOf({ base: 5 * MiB, doubleEvery: 1 }, 10_000), MAX_PART_SIZE);
  assert.deepEqual(partSizeOf({ base: 5 * GiB, doubleEvery: 1 }, 2), MAX_PART_SIZE);
});

Deno.test("partSizeOf() keeps a fixed schedule (doubleEvery 0) constant", () => {
  const fixed = { base: 12 * MiB, doubleEvery: 0 };
  for (const n of [1, 2, 1000, 9999, 10_000]) assert.deepEqual(partSizeOf(fixed, n), 12 * MiB);
});

Deno.test("planSchedule() growing schedules keep every part within S3's limits", () => {
  for (const partSize of [MIN_PART_SIZE, 8 * MiB, 100 * MiB, GiB, MAX_PART_SIZE]) {
    for (const maxParts of [1, 2, 20, 1000, MAX_PARTS]) {
      const schedule = planSchedule({ partSize, maxParts });
      for (let n = 1; n <= maxParts; n++) {
        const size = partSizeOf(schedule, n);
        assert.ok(
          size >= MIN_PART_SIZE && size <= MAX_PART_SIZE,
          `part ${n} of ${JSON.stringify(schedule)} is ${size} bytes`,
        );
      }
    }
  }
});

Deno.test("planSchedule() with an estimate picks one fixed size that fits in maxParts - 1 parts", () => {
  const table = [0, 1, 5 * MiB, 8 * MiB * 9999, 8 * MiB * 9999 + 1, 50 * GiB, TiB, 5 * TiB];
  for (const estimated of table) {
    const schedule = planSchedule({ estimated });
    const label = `estimated ${estimated}: ${JSON.stringify(schedule)}`;
    assert.deepEqual(schedule.doubleEvery, 0, label);
    assert.ok(schedule.base >= Math.ceil(estimated / 9999), label);
    assert.ok(schedule.base >= 8 * MiB, `${label}: never below the requested 8 MiB`);
    assert.ok(schedule.base <= MAX_PART_SIZE, label);
    assert.ok(schedule.base * 9999 >= estimated, `${label}: the estimate must fit in 9,999 parts`);
  }
  assert.deepEqual(planSchedule({ estimated: 8 * MiB * 9999 }).base, 8 * MiB);
  assert.deepEqual(planSchedule({ estimated: 8 * MiB * 9999 + 1 }).base, 8 * MiB + 1);
});

Deno.test("planSchedule() with an estimate never goes below the requested size or 5 MiB", () => {
  const table: [number, number, number][] = [
    // partSize, estimated, expected base
    [MIN_PART_SIZE, 0, MIN_PART_SIZE],
    [MIN_PART_SIZE, 1, MIN_PART_SIZE],
    [64 * MiB, GiB, 64 * MiB],
    [MIN_PART_SIZE, 30 * MiB, MIN_PART_SIZE],
  ];
  for (const [partSize, estimated, base] of table) {
    assert.deepEqual(
      planSchedule({ partSize, estimated }),
      { base, doubleEvery: 0 },
      `partSize ${partSize}, estimated ${estimated}`,
    );
  }
  // With --max-parts 4 one part is slack: 30 MiB goes in 3 parts of 10 MiB.
  assert.deepEqual(planSchedule({ partSize: MIN_PART_SIZE, estimated: 30 * MiB, maxParts: 4 }), {
    base: 10 * MiB,
    doubleEvery: 0,
  });
  // With --max-parts 1 there is no slack to keep: the whole stream is one part.
  assert.deepEqual(planSchedule({ partSize: MIN_PART_SIZE, estimated: 30 * MiB, maxParts: 1 }), {
    base: 30 * MiB,
    doubleEvery: 0,
  });
});

Deno.test("planSchedule() throws UsageError for part sizes outside 5M to 5G", () => {
  for (const partSize of [0, -1, MiB, MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, 5.5 * MiB + 0.5, NaN]) {
    assert.throws(
      () => planSchedule({ partSize }),
      (err: unknown) => err instanceof UsageError && /5M to 5G/.test(err.message),
      `partSize ${partSize}`,
    );
  }
  assert.deepEqual(planSchedule({ partSize: MiB, minPartSize: MiB }).base, MiB);
});

Deno.test("planSchedule() throws UsageError for maxParts outside 1 to 10000", () => {
  for (const maxParts of [0, -1, 1.5, MAX_PARTS + 1, NaN]) {
    assert.throws(
      () => planSchedule({ maxParts }),
      (err: unknown) => err instanceof UsageError && /1 to 10000/.test(err.message),
      `maxParts ${maxParts}`,
    );
  }
});

Deno.test("planSchedule() throws UsageError for an estimate that is not a byte count", () => {
  for (const estimated of [NaN, -1, 1.5, Infinity]) {
    let got: unknown;
    try {
      got = planSchedule({ estimated });
    } catch (err) {
      got = err;
    }
    assert.ok(got instanceof UsageError, `estimated ${estimated} gave ${JSON.stringify(got)}`);
  }
});

Deno.test("scheduleToMetadata() round-trips through scheduleFromMetadata()", () => {
  const table: PartSchedule[] = [
    planSchedule(),
    planSchedule({ partSize: MIN_PART_SIZE, maxParts: 20 }),
    planSchedule({ estimated: 5 * TiB }),
    { base: MAX_PART_SIZE, doubleEvery: 0 },
  ];
  for (const schedule of table) {
    const metadata = scheduleToMetadata(schedule);
    assert.deepEqual(Object.keys(metadata).sort(), ["z3-part-double-every", "z3-part-size"]);
    assert.deepEqual(scheduleFromMetadata({ other: "x", ...metadata }), schedule);
  }
  assert.deepEqual(scheduleToMetadata({ base: 8 * MiB, doubleEvery: 1000 }), {
    "z3-part-size": "8388608",
    "z3-part-double-every": "1000",
  });
});

Deno.test("scheduleFromMetadata() returns undefined for absent or malformed keys", () => {
  const good = { [SCHEDULE_KEYS.base]: "8388608", [SCHEDULE_KEYS.doubleEvery]: "1000" };
  const table: Record<string, string>[] = [
    {},
    { [SCHEDULE_KEYS.base]: "8388608" },
    { [SCHEDULE_KEYS.doubleEvery]: "1000" },
    { ...good, [SCHEDULE_KEYS.base]: "0" },
    { ...good, [SCHEDULE_KEYS.base]: "-5" },
    { ...good, [SCHEDULE_KEYS.base]: "8M" },
    { ...good, [SCHEDULE_KEYS.base]: "1.5" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: "-1" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: "two" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: "0.5" },
    // Plain decimal digits only: Number() alone would read each of these as a count.
    { ...good, [SCHEDULE_KEYS.base]: "" },
    { ...good, [SCHEDULE_KEYS.base]: "0x800000" },
    { ...good, [SCHEDULE_KEYS.base]: "8e6" },
    { ...good, [SCHEDULE_KEYS.base]: " 1000 " },
    { ...good, [SCHEDULE_KEYS.base]: "+8388608" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: "" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: "0x10" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: "1e3" },
    { ...good, [SCHEDULE_KEYS.doubleEvery]: " 1000 " },
  ];
  for (const metadata of table) {
    assert.deepEqual(scheduleFromMetadata(metadata), undefined, JSON.stringify(metadata));
  }
});
