import assert from "node:assert/strict";
import { datasetsOfKeys, parseDatasetList } from "../../../lib/cli/datasets.ts";
import { listTreeArgv, parseTree } from "../../../lib/zfs/zfs.ts";
import { UsageError } from "../../../lib/base/errors.ts";
import { settingFlags } from "../../../lib/config/flags.ts";

Deno.test("parseDatasetList() splits FILESYSTEM at commas, trims, drops empties and repeats", () => {
  assert.deepEqual(parseDatasetList("tank/a, tank/b,,tank/a,"), ["tank/a", "tank/b"]);
  assert.deepEqual(parseDatasetList("tank/my data"), ["tank/my data"]);
  assert.throws(() => parseDatasetList(undefined), UsageError);
  assert.throws(() => parseDatasetList(" , "), /FILESYSTEM is not set/);
  assert.throws(() => parseDatasetList("tank/a,-x"), /Cannot use dataset "-x"/);
});

Deno.test("settingFlags() joins a repeated --filesystem with commas and makes --recursive true", () => {
  const flags = settingFlags({ filesystem: ["tank/a", "tank/b"], recursive: true, host: "h" });
  assert.equal(flags.filesystem, "tank/a,tank/b");
  assert.equal(flags.recursive, "true");
  assert.equal(flags.host, "h");
  assert.equal(settingFlags({ recursive: false }).recursive, undefined);
});

Deno.test("listTreeArgv() is one zfs list -r of filesystems and volumes for every root", () => {
  assert.deepEqual(listTreeArgv(["tank/a", "tank/my data"]).slice(1), [
    "list",
    "-H",
    "-r",
    "-o",
    "name",
    "-t",
    "filesystem,volume",
    "tank/a",
    "tank/my data",
  ]);
});

Deno.test("parseTree() gives each root with what lies below it, not a sibling with its prefix", () => {
  // $ zfs list -H -r -o name -t filesystem,volume tank/a tank/b   (zfs-fuse 0.7)
  const text = "tank/a\ntank/a/x\ntank/a/x/y\ntank/b\ntank/ab\n";
  const tree = parseTree(["tank/a", "tank/b"], text);
  assert.deepEqual(tree.get("tank/a"), ["tank/a", "tank/a/x", "tank/a/x/y"]);
  assert.deepEqual(tree.get("tank/b"), ["tank/b"]);
});

Deno.test("datasetsOfKeys() names each dataset under the prefix once, skipping stray keys", () => {
  const keys = [
    "z3-backup/tank/b@s1",
    "z3-backup/tank/a@s1",
    "z3-backup/tank/a@s2",
    "z3-backup/tank/a/child@s1",
    "z3-backup/stray",
    "z3-backup/@nodataset",
    "z3-backup/-bad@s1",
    "other/tank/c@s1",
  ];
  assert.deepEqual(datasetsOfKeys("z3-backup", keys), ["tank/a", "tank/a/child", "tank/b"]);
});
