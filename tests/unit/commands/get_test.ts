/** `z3 get KEY`: which object a name means, against a store that answers HEAD from a table. */
import assert from "node:assert/strict";
import { findObject, get } from "../../../lib/commands/restore.ts";
import { resolveConfig } from "../../../lib/config/config.ts";
import { UsageError } from "../../../lib/base/errors.ts";
import type { ObjectInfo, S3Store } from "../../../lib/backend/s3.ts";

function fakeStore(keys: string[]): S3Store {
  return {
    bucket: "b",
    head(key: string): Promise<Partial<ObjectInfo> | undefined> {
      if (!keys.includes(key)) return Promise.resolve(undefined);
      return Promise.resolve({ key, size: 1, etag: "e", metadata: {}, encryption: {} });
    },
    get(): Promise<never> {
      return Promise.reject(new Error("get() must not be reached"));
    },
  } as unknown as S3Store;
}

const config = resolveConfig({ env: { S3_PREFIX: "z3-backup/" } });

Deno.test("get() refuses a name that is a key both under S3_PREFIX and outside it", async () => {
  const store = fakeStore(["tank/data@s1", "z3-backup/tank/data@s1"]);
  await assert.rejects(
    get(config, store, "tank/data@s1", { err: () => {} }),
    (e) =>
      e instanceof UsageError &&
      e.message ===
        'Cannot download "tank/data@s1": it names two objects in bucket "b", ' +
          '"z3-backup/tank/data@s1" (under S3_PREFIX) and "tank/data@s1"; move or delete the ' +
          "one outside S3_PREFIX",
  );
});

Deno.test("findObject() takes the key under S3_PREFIX first, else the key as given", async () => {
  const under = await findObject(config, fakeStore(["z3-backup/tank/data@s1"]), "tank/data@s1");
  assert.equal(under?.key, "z3-backup/tank/data@s1");
  const full = await findObject(
    config,
    fakeStore(["z3-backup/tank/data@s1"]),
    "z3-backup/tank/data@s1",
  );
  assert.equal(full?.key, "z3-backup/tank/data@s1");
  const other = await findObject(config, fakeStore(["notes.txt"]), "notes.txt");
  assert.equal(other?.key, "notes.txt");
  assert.equal(await findObject(config, fakeStore([]), "tank/data@s1"), undefined);
});
