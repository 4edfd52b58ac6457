import assert from "node:assert/strict";
import { UsageError } from "../../../lib/base/errors.ts";
import {
  capacity,
  MAX_PART_SIZE,
  MAX_PARTS,
  MIN_PART_SIZE,
  type PartSchedule,
  partSizeOf,
  planSchedule,
  SCHEDULE_KEYS,
  scheduleFromMetadata,
  scheduleToMetadata,
  usableEstimate,
} from "../../../lib/transfer/part_size.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** Bytes that `parts` parts hold under `schedule`, part by part. */
function capacityOf(schedule: PartSchedule, parts: number): number {
  let total = 0;
  for (let n = 1; n <= parts; n++) total += partSizeOf(schedule, n);
  return total;
}

Deno.test("planSchedule() defaults to 8 MiB parts doubling every 909 parts", () => {
  assert.deepEqual(planSchedule(), { base: 8 * MiB, doubleEvery: 909 });
});

Deno.test("planSchedule() by default holds more than S3's 5 TiB in 10,000 parts", () => {
  const schedule = planSchedule();
  assert.ok(
    capacityOf(schedule, MAX_PARTS) >= 5 * TiB,
    `capacity ${capacityOf(schedule, MAX_PARTS)}`,
  );
});

Deno.test("planSchedule() holds S3's 5 TiB in 10,000 parts for every part size from 5M", () => {
  // pput --help: "the part size doubles every max-parts/11 parts, so any stream up to S3's
  // 5 TiB limit fits".
  for (const partSize of [MIN_PART_SIZE, 5 * MiB + 128 * 1024, 8 * MiB, 64 * MiB, MAX_PART_SIZE]) {
    const held = capacityOf(planSchedule({ partSize }), MAX_PARTS);
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

Deno.test("planSchedule() with any estimate still holds S3's 5 TiB in 10,000 parts", () => {
  // A low estimate must never fail an upload: OpenZFS's estimates can be more than 10 % low.
  const estimates = [0, 1, 5 * MiB, 8 * MiB * 9999, 78 * GiB, 100 * GiB, TiB, 5 * TiB];
  for (const partSize of [MIN_PART_SIZE, 8 * MiB, 64 * MiB]) {
    for (const estimated of estimates) {
      const schedule = planSchedule({ partSize, estimated });
      const label = `--chunk-size ${partSize} estimated ${estimated}: ${JSON.stringify(schedule)}`;
      assert.ok(capacity(schedule, MAX_PARTS) >= 5 * TiB, label);
      assert.deepEqual(capacityOf(schedule, MAX_PARTS), capacity(schedule, MAX_PARTS), label);
    }
  }
});

Deno.test("planSchedule() with an estimate sizes the first parts to hold it, then grows", () => {
  const table = [0, 1, 5 * MiB, 8 * MiB * 9999, 50 * GiB, 100 * GiB, TiB, 5 * TiB];
  for (const estimated of table) {
    const schedule = planSchedule({ estimated });
    const label = `estimated ${estimated}: ${JSON.stringify(schedule)}`;
    const head = schedule.growAfter ?? 0;
    assert.ok(schedule.base * head >= estimated * 1.1, `${label}: the head holds estimate + 10 %`);
    assert.ok(schedule.base >= 8 * MiB, `${label}: never below the requested 8 MiB`);
    assert.ok(schedule.base <= MAX_PART_SIZE, label);
    // Parts stay near what the estimate needs: at most 1.5 × estimate / 9,999.
    assert.ok(schedule.base <= 1.5 * Math.max(8 * MiB, estimated / 9999), label);
    assert.ok(schedule.doubleEvery === 200, `${label}: doubles every 200 parts past the head`);
  }
  // 100 GiB: 15 MiB parts for the first 7,497 parts (110 GiB), then 30 MiB, 60 MiB, …
  assert.deepEqual(planSchedule({ estimated: 100 * GiB }), {
    base: 15_754_516,
    doubleEvery: 200,
    growAfter: 7497,
  });
});

Deno.test("planSchedule() pput --estimated 50M --max-parts 10 --chunk-size 5M holds 75 MB and more", () => {
  const schedule = planSchedule({ partSize: 5 * MiB, estimated: 50 * MiB, maxParts: 10 });
  assert.ok(capacity(schedule, 10) >= 75 * MiB, JSON.stringify(schedule));
  // As much as the same flags hold without an estimate (5 MiB doubling every part: ~5 GiB).
  const unknown = planSchedule({ partSize: 5 * MiB, maxParts: 10 });
  assert.ok(capacity(schedule, 10) >= capacity(unknown, 10), JSON.stringify(schedule));
});

Deno.test("planSchedule() with an estimate never goes below the requested size or 5 MiB", () => {
  for (const [partSize, estimated] of [[MIN_PART_SIZE, 0], [MIN_PART_SIZE, 1], [64 * MiB, GiB]]) {
    const schedule = planSchedule({ partSize, estimated });
    assert.deepEqual(schedule.base, partSize, `partSize ${partSize}, estimated ${estimated}`);
  }
  // With --max-parts 1 the whole stream (estimate + 10 %) is one part.
  const one = planSchedule({ partSize: MIN_PART_SIZE, estimated: 30 * MiB, maxParts: 1 });
  assert.deepEqual(partSizeOf(one, 1), 33 * MiB, "30 MiB + 10 %");
});

Deno.test("usableEstimate() keeps 0 to 5 TiB and treats anything else as unknown", () => {
  const kept = [0, 1, 5 * MiB, 5 * TiB];
  for (const e of kept) assert.deepEqual(usableEstimate(e), e);
  // 18446744073614344448: printed by OpenZFS's `zfs send -nvP` (2^64 minus a little).
  const absurd = [18446744073614344448, 5 * TiB + 1, -1, 1.5, NaN, Infinity, 2 ** 53, undefined];
  for (const e of absurd) assert.deepEqual(usableEstimate(e), undefined, `estimate ${e}`);
});

Deno.test("planSchedule() treats an absurd estimate as unknown, not as a usage error", () => {
  for (const estimated of [18446744073614344448, 5 * TiB + 1, NaN, -1, 1.5, Infinity]) {
    assert.deepEqual(planSchedule({ estimated }), planSchedule(), `estimated ${estimated}`);
  }
});

Deno.test("partSizeOf() keeps the head of growAfter parts at the base, then doubles", () => {
  const s = { base: 6 * MiB, doubleEvery: 2, growAfter: 3 };
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8].map((n) => partSizeOf(s, n) / MiB), [
    6,
    6,
    6,
    6,
    6,
    12,
    12,
    24,
  ]);
  assert.deepEqual(partSizeOf({ base: 5 * GiB, doubleEvery: 1, growAfter: 1 }, 5), MAX_PART_SIZE);
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

Deno.test("scheduleToMetadata() round-trips through scheduleFromMetadata()", () => {
  const table: PartSchedule[] = [
    planSchedule(),
    planSchedule({ partSize: MIN_PART_SIZE, maxParts: 20 }),
    { base: MAX_PART_SIZE, doubleEvery: 0 },
  ];
  for (const schedule of table) {
    const metadata = scheduleToMetadata(schedule);
    assert.deepEqual(Object.keys(metadata).sort(), ["z3-part-double-every", "z3-part-size"]);
    assert.deepEqual(scheduleFromMetadata({ other: "x", ...metadata }), schedule);
  }
  for (const schedule of [planSchedule({ estimated: 5 * TiB }), planSchedule({ estimated: 0 })]) {
    const metadata = scheduleToMetadata(schedule);
    assert.deepEqual(Object.keys(metadata).sort(), [
      "z3-part-double-every",
      "z3-part-grow-after",
      "z3-part-size",
    ]);
    assert.deepEqual(scheduleFromMetadata(metadata), schedule);
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
    { ...good, [SCHEDULE_KEYS.growAfter]: "0" },
    { ...good, [SCHEDULE_KEYS.growAfter]: "x" },
    { ...good, [SCHEDULE_KEYS.growAfter]: "-3" },
    { ...good, [SCHEDULE_KEYS.growAfter]: "" },
    { ...good, [SCHEDULE_KEYS.growAfter]: "0x10" },
    { ...good, [SCHEDULE_KEYS.growAfter]: "1e3" },
    { ...good, [SCHEDULE_KEYS.growAfter]: " 100 " },
    { ...good, [SCHEDULE_KEYS.growAfter]: "+100" },
  ];
  for (const metadata of table) {
    assert.deepEqual(scheduleFromMetadata(metadata), undefined, JSON.stringify(metadata));
  }
});
