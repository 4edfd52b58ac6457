import assert from "node:assert/strict";
import { isThrottling, MAX_DELAY_MS, retryDelay, withRetry } from "../../../lib/backend/retry.ts";

const slowDown = { status: 503, code: "SlowDown", retryable: true };
const reset = { code: "ECONNRESET", retryable: true };

Deno.test("retryDelay() ceilings follow the SDK's standard mode: 500 ms × 2^n throttled, 100 ms × 2^n else, 20 s cap", () => {
  const ceiling = (err: unknown) => [1, 2, 3, 4, 5, 6, 10].map((n) => retryDelay(n, err, () => 1));
  assert.deepEqual(ceiling(slowDown), [1000, 2000, 4000, 8000, 16000, 20000, 20000]);
  assert.deepEqual(ceiling(reset), [200, 400, 800, 1600, 3200, 6400, 20000]);
  assert.deepEqual(retryDelay(40, slowDown, () => 1), MAX_DELAY_MS);
  // Full jitter: a random fraction of the ceiling.
  assert.deepEqual(retryDelay(3, slowDown, () => 0.25), 1000);
  assert.deepEqual(retryDelay(3, slowDown, () => 0), 0);
});

Deno.test("isThrottling() knows 503, 429 and the throttling codes, nothing else", () => {
  for (
    const e of [
      slowDown,
      { status: 503, code: "ServiceUnavailable" },
      { status: 429 },
      { status: 400, code: "Throttling" },
      { status: 400, code: "RequestLimitExceeded" },
      { code: "TooManyRequestsException" },
    ]
  ) assert.ok(isThrottling(e), JSON.stringify(e));
  for (
    const e of [reset, { status: 500, code: "InternalError" }, { status: 403 }, undefined, "x"]
  ) assert.ok(!isThrottling(e), JSON.stringify(e));
});

Deno.test("withRetry() stops at the attempt limit, on a non-retryable error, and when aborted", async () => {
  let calls = 0;
  const failing = (err: unknown) => () => {
    calls++;
    return Promise.reject(err);
  };
  await assert.rejects(withRetry(failing(reset), { attempts: 3 }), (e) => e === reset);
  assert.equal(calls, 3);
  calls = 0;
  const fatal = { status: 403, retryable: false };
  await assert.rejects(withRetry(failing(fatal), { attempts: 5 }), (e) => e === fatal);
  assert.equal(calls, 1);
  calls = 0;
  const controller = new AbortController();
  const delays: number[] = [];
  const started = Date.now();
  const run = withRetry(failing(slowDown), {
    attempts: 5,
    signal: controller.signal,
    onRetry: (_e, _n, ms) => {
      delays.push(ms);
      controller.abort();
    },
  });
  await assert.rejects(run, (e) => e === slowDown);
  assert.equal(calls, 1, "no attempt after the abort");
  assert.equal(delays.length, 1);
  assert.ok(Date.now() - started < 1000 * 10, "the backoff ended with the abort");
});
