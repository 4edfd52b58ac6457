import assert from "node:assert/strict";
import { underCI } from "../bed/run.ts";

Deno.test("underCI() is true for any CI value runners set, false when unset or off", () => {
  const saved = Deno.env.get("CI");
  try {
    for (const value of ["true", "True", "TRUE", "1", "yes", " true "]) {
      Deno.env.set("CI", value);
      assert.equal(underCI(), true, `CI=${JSON.stringify(value)}`);
    }
    for (const value of ["", "0", "false", "False", "no", "off"]) {
      Deno.env.set("CI", value);
      assert.equal(underCI(), false, `CI=${JSON.stringify(value)}`);
    }
    Deno.env.delete("CI");
    assert.equal(underCI(), false, "CI unset");
  } finally {
    if (saved === undefined) Deno.env.delete("CI");
    else Deno.env.set("CI", saved);
  }
});
