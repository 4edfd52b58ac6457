import assert from "node:assert/strict";
import { UsageError } from "../../../lib/base/errors.ts";
import {
  openInput,
  parseEstimated,
  parseMaxParts,
  parseMetadata,
} from "../../../lib/cli/upload_flags.ts";

Deno.test("parseMetadata() lower-cases keys, keeps '=' in values, lets a later pair win and refuses a pair without a key", () => {
  assert.deepEqual(parseMetadata(["Owner=Ops", "note=a=b", "owner=dev"]), {
    owner: "dev",
    note: "a=b",
  });
  assert.deepEqual(parseMetadata(["empty="]), { empty: "" });
  for (const bad of ["novalue", "=x"]) {
    assert.throws(() => parseMetadata([bad]), {
      name: UsageError.name,
      message: `Cannot use metadata "${bad}": expected KEY=VALUE`,
    });
  }
});

Deno.test("parseMaxParts() takes 1 to 10000 or nothing", () => {
  assert.equal(parseMaxParts(undefined), undefined);
  assert.equal(parseMaxParts("1"), 1);
  assert.equal(parseMaxParts("10000"), 10_000);
  for (const bad of ["0", "10001", "2.5", "x"]) {
    assert.throws(() => parseMaxParts(bad), {
      message: `Cannot parse --max-parts "${bad}": expected 1 to 10000`,
    });
  }
});

Deno.test("parseEstimated() reads a size, counts one past 5 TiB as none, refuses text that is no size", () => {
  assert.equal(parseEstimated(undefined), undefined);
  assert.equal(parseEstimated("10M"), 10 * 1024 * 1024);
  assert.equal(parseEstimated("6T"), undefined);
  assert.throws(() => parseEstimated("lots"), {
    message: 'Cannot parse --estimated "lots": expected a size like 4096, 10M or 1G',
  });
});

Deno.test("openInput() is standard input without a descriptor and refuses one that is not a number", async () => {
  assert.equal((await openInput(undefined)).label, "standard input");
  await assert.rejects(() => openInput("x"), {
    message: 'Cannot parse --file-descriptor "x": expected a number',
  });
});
