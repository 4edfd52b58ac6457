import assert from "node:assert/strict";
import { JsonItems } from "../../../lib/cli/command.ts";

Deno.test("JsonItems is ready once a dataset added its part, even an empty one, and keeps the order", () => {
  const json = new JsonItems();
  assert.equal(json.ready, false);
  json.add([]);
  assert.equal(json.ready, true);
  assert.deepEqual(json.items, []);
  json.add([1, 2]);
  json.add([3]);
  assert.deepEqual(json.items, [1, 2, 3]);
});
