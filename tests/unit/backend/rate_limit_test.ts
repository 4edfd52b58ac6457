import assert from "node:assert/strict";
import { BURST_BYTES, type RateClock, RateLimit } from "../../../lib/backend/rate_limit.ts";

/** A clock that only moves when someone sleeps on it. */
function fakeClock(): RateClock & { slept: number[] } {
  let t = 1000;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    sleep: (ms) => {
      slept.push(ms);
      t += ms;
      return Promise.resolve();
    },
  };
}

Deno.test("RateLimit.take() holds a long transfer to its rate, after one burst", async () => {
  const clock = fakeClock();
  const limit = new RateLimit(1_000_000, clock);
  const start = clock.now();
  for (let i = 0; i < 100; i++) await limit.take(100_000);
  const seconds = (clock.now() - start) / 1000;
  // 10 MB at 1 MB/s: 10 s, less the burst that passes at once.
  assert.ok(Math.abs(seconds - (10 - BURST_BYTES / 1_000_000)) < 1e-6, `${seconds} s`);
});

Deno.test("RateLimit.take() shares one limit between parallel takers", async () => {
  // Time stands still: each take's wake-up time shows where the bucket scheduled it.
  const wakes: number[] = [];
  const clock: RateClock = {
    now: () => 0,
    sleep: (ms) => (wakes.push(ms), Promise.resolve()),
  };
  const limit = new RateLimit(1_000_000, clock);
  // Four parts in flight at once, each 1 MB in 64 KiB slices: 4 MB in all.
  await Promise.all(
    [1, 2, 3, 4].map(() => limit.paced(new Uint8Array(1_000_000), () => Promise.resolve())),
  );
  const last = Math.max(...wakes) / 1000;
  assert.ok(Math.abs(last - (4 - BURST_BYTES / 1_000_000)) < 1e-6, `last slice at ${last} s`);
});

Deno.test("RateLimit.take() lets bytes pass at once while under the burst", async () => {
  const clock = fakeClock();
  const limit = new RateLimit(1_000_000, clock);
  await limit.take(BURST_BYTES);
  assert.deepEqual(clock.slept, [], "a full bucket pays at once");
  await limit.take(1000);
  assert.deepEqual(clock.slept.length, 1, "an empty one waits");
  assert.ok(Math.abs(clock.slept[0] - 1) < 1e-9, `${clock.slept[0]} ms for 1000 bytes at 1 MB/s`);
});

Deno.test("RateLimit.take() rejects with the signal's reason when aborted while it waits", async () => {
  const limit = new RateLimit(1000); // the real clock: 1 MB takes 1000 s
  const controller = new AbortController();
  const reason = new Error("interrupted");
  const taking = limit.take(1_000_000, controller.signal);
  setTimeout(() => controller.abort(reason), 10);
  await assert.rejects(taking, (err) => err === reason);
  await assert.rejects(limit.take(1_000_000, controller.signal), (err) => err === reason);
});
