/**
 * `failureWithin()` clears its timer once the promise settles. The receive path raced a failure
 * against a bare 5 s sleep, whose timer stayed pending after the race was won.
 *
 * @module
 */

import assert from "node:assert/strict";
import { failureWithin } from "../../../lib/base/failure_within.ts";

/** Runs `fn` counting the timers it leaves pending (set, neither fired nor cleared). */
async function pendingTimersAfter(fn: () => Promise<unknown>): Promise<number> {
  const live = new Set<unknown>();
  const { setTimeout: set, clearTimeout: clear } = globalThis;
  globalThis.setTimeout = ((cb: () => void, ms?: number) => {
    const id = set(() => (live.delete(id), cb()), ms);
    live.add(id);
    return id;
  }) as unknown as typeof setTimeout;
  globalThis.clearTimeout = ((id?: number) => (live.delete(id), clear(id))) as typeof clearTimeout;
  try {
    await fn();
  } finally {
    globalThis.setTimeout = set;
    globalThis.clearTimeout = clear;
  }
  for (const id of live) clear(id as number);
  return live.size;
}

Deno.test("failureWithin() gives a rejection and leaves no timer pending", async () => {
  const err = new Error("zfs receive failed");
  let got: unknown;
  const pending = await pendingTimersAfter(async () => {
    got = await failureWithin(Promise.reject(err), 5000);
  });
  assert.equal(got, err);
  assert.equal(pending, 0);
});

Deno.test("failureWithin() gives undefined for a fulfilled promise and leaves no timer pending", async () => {
  let got: unknown = "unset";
  const pending = await pendingTimersAfter(async () => {
    got = await failureWithin(Promise.resolve(7), 5000);
  });
  assert.equal(got, undefined);
  assert.equal(pending, 0);
});

Deno.test("failureWithin() gives undefined once the time is up", async () => {
  assert.equal(await failureWithin(new Promise(() => {}), 10), undefined);
});
