import assert from "node:assert/strict";
import { UsageError } from "../../../lib/base/errors.ts";
import { formatAge, parseDuration } from "../../../lib/cli/durations.ts";

Deno.test("parseDuration() reads 30m, 12h, 1d, 1d12h and 0; formatAge() writes them back", () => {
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("30m"), 30 * 60_000);
  assert.equal(parseDuration("12h"), 12 * 3_600_000);
  assert.equal(parseDuration("1d"), 86_400_000);
  assert.equal(parseDuration("1D12H"), 36 * 3_600_000);
  assert.equal(parseDuration(" 45s "), 45_000);
  for (const bad of ["", "1", "1x", "-1d", "1.5h", "d"]) {
    assert.throws(() => parseDuration(bad), UsageError, bad);
  }
  assert.equal(formatAge(0), "0s");
  assert.equal(formatAge(42_400), "42s");
  assert.equal(formatAge(90_000), "1m30s");
  assert.equal(formatAge(36 * 3_600_000 + 60_000), "1d12h");
  assert.equal(formatAge(86_400_000), "1d");
});
