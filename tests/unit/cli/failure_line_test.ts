import assert from "node:assert/strict";
import { failureLine } from "../../../lib/cli/run.ts";
import { InterruptedError, S3Error } from "../../../lib/base/errors.ts";

Deno.test("failureLine() names the signal once when the error is the interruption itself", () => {
  const interrupted = new InterruptedError("SIGTERM");
  assert.equal(failureLine("SIGTERM", interrupted), "Interrupted by SIGTERM");
  assert.equal(
    failureLine("SIGTERM", new S3Error('Cannot list bucket "b": Interrupted by SIGTERM')),
    'Interrupted by SIGTERM; Cannot list bucket "b"',
  );
});

Deno.test("failureLine() puts the signal before the error it ended with", () => {
  assert.equal(
    failureLine("SIGINT", new S3Error('Cannot list bucket "b": aborted')),
    'Interrupted by SIGINT; Cannot list bucket "b": aborted',
  );
  assert.equal(failureLine(undefined, new S3Error("Cannot x: y")), "Cannot x: y");
});
