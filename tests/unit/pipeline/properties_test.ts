/**
 * Property argv and parsing. The `get` output is zfs-fuse 0.7's on the test bed
 * (`zfs get -H -p -s local -o property,value all DATASET`: `property TAB value` lines).
 */
import assert from "node:assert/strict";
import {
  getLocalPropertiesArgv,
  parseLocalProperties,
  setPropertyArgv,
} from "../../../lib/zfs/zfs.ts";
import {
  chainFull,
  DEFAULT_PROPERTIES,
  namedProperties,
  propertiesKey,
  readProperties,
  selectProperties,
} from "../../../lib/pipeline/properties.ts";
import type { S3Store } from "../../../lib/backend/s3.ts";
import { EXIT, IntegrityError, UsageError } from "../../../lib/base/errors.ts";
import { createHash } from "node:crypto";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const DS = "tank/my data";

Deno.test("getLocalPropertiesArgv() asks for local values only, exact, two columns", () => {
  assert.deepEqual(getLocalPropertiesArgv(DS).slice(1), [
    "get",
    "-H",
    "-p",
    "-s",
    "local",
    "-o",
    "property,value",
    "all",
    DS,
  ]);
});

Deno.test("parseLocalProperties() keeps values with tabs and spaces; refuses a bad name", () => {
  assert.deepEqual(
    parseLocalProperties("compression\ton\nz3test:x\ta b\tc\nmountpoint\t/var/tmp/x y\n"),
    { compression: "on", "z3test:x": "a b\tc", mountpoint: "/var/tmp/x y" },
  );
  assert.throws(() => parseLocalProperties("-o\tx\n"), /Cannot read a local property/);
  assert.throws(() => parseLocalProperties("notabs\n"), /Cannot read a local property/);
});

Deno.test("setPropertyArgv() is one NAME=VALUE argument; an option-like name is refused", () => {
  assert.deepEqual(setPropertyArgv(DS, "z3test:x", "a=b c").slice(1), [
    "set",
    "z3test:x=a=b c",
    DS,
  ]);
  assert.throws(() => setPropertyArgv(DS, "-o", "x"), /Cannot set property/);
  assert.throws(() => setPropertyArgv(DS, "a", "x\ny"), /Cannot set property/);
});

Deno.test("chainFull() walks parents to the full; none for a broken chain or a cycle", () => {
  const r = (name: string, parent?: string): [string, RemoteSnapshot] => [name, {
    name,
    snapshot: name.split("@")[1],
    key: name,
    isFull: parent === undefined,
    parent,
    objectSize: 1,
    metadata: {},
  }];
  const remote = new Map([r("d@a"), r("d@b", "d@a"), r("d@c", "d@b"), r("d@x", "d@gone")]);
  assert.equal(chainFull(remote, "d@c")?.name, "d@a");
  assert.equal(chainFull(remote, "d@a")?.name, "d@a");
  assert.equal(chainFull(remote, "d@x"), undefined);
  const cycle = new Map([r("d@p", "d@q"), r("d@q", "d@p")]);
  assert.equal(chainFull(cycle, "d@p"), undefined);
});

Deno.test("chainFull() finds no full through a link whose parent GUID does not match", () => {
  const snap = (name: string, guid: string, parent?: string, parentGuid?: string) =>
    [name, {
      name,
      snapshot: name.split("@")[1],
      key: name,
      isFull: parent === undefined,
      parent,
      guid,
      parentGuid,
      objectSize: 1,
      metadata: {},
    }] as [string, RemoteSnapshot];
  // d@b was sent from a d@a with GUID 1; the bucket's d@a is another snapshot (GUID 2).
  const remote = new Map([
    snap("d@a", "2"),
    snap("d@b", "3", "d@a", "1"),
    snap("d@c", "4", "d@b", "3"),
  ]);
  assert.equal(chainFull(remote, "d@c"), undefined);
  assert.equal(chainFull(remote, "d@b"), undefined);
  assert.equal(chainFull(remote, "d@a")?.name, "d@a");
});

Deno.test("selectProperties() sets the default list and what is named; leaves out the rest", () => {
  // A forged sidecar: what the issue saw a restore apply.
  const stored = {
    compression: "lz4",
    recordsize: "1048576",
    sharenfs: "rw=@0.0.0.0/0,no_root_squash",
    setuid: "on",
    devices: "on",
    mountpoint: "/etc",
    "com.sun:auto-snapshot": "false",
    "org.znapzend:pre_znap_cmd": "/bin/sh -c id",
    quota: "1M",
  };
  assert.deepEqual(selectProperties(stored), {
    set: [["compression", "lz4"], ["recordsize", "1048576"]],
    leftOut: [
      ["sharenfs", "rw=@0.0.0.0/0,no_root_squash"],
      ["setuid", "on"],
      ["devices", "on"],
      ["mountpoint", "/etc"],
      ["com.sun:auto-snapshot", "false"],
      ["org.znapzend:pre_znap_cmd", "/bin/sh -c id"],
      ["quota", "1M"],
    ],
  });
  const named = namedProperties(["setuid,devices", "com.sun:auto-snapshot"]);
  assert.deepEqual(selectProperties(stored, named).set.map(([n]) => n), [
    "compression",
    "recordsize",
    "setuid",
    "devices",
    "com.sun:auto-snapshot",
  ]);
});

Deno.test("namedProperties() splits commas and refuses what is no property name", () => {
  assert.deepEqual([...namedProperties(["a", "b,c:d"])], ["a", "b", "c:d"]);
  assert.throws(() => namedProperties(["-o"]), UsageError);
  assert.throws(() => namedProperties(["a,"]), /Cannot use --property "": not a property name/);
});

Deno.test("DEFAULT_PROPERTIES holds none of the properties set only when named", () => {
  for (
    const name of [
      "sharenfs",
      "sharesmb",
      "setuid",
      "devices",
      "exec",
      "canmount",
      "mountpoint",
      "keylocation",
      "overlay",
    ]
  ) assert.ok(!DEFAULT_PROPERTIES.has(name), name);
  assert.ok([...DEFAULT_PROPERTIES].every((n) => !n.includes(":")));
});

Deno.test("readProperties() with a signed SHA-256 reads only a sidecar that hashes to it", async () => {
  const key = propertiesKey("z3-backup/", "tank/a@s1");
  const body = new TextEncoder().encode(
    JSON.stringify({ properties: { compression: "lz4" } }) + "\n",
  );
  let gets = 0;
  const store = {
    head: (k: string) =>
      Promise.resolve(k === key ? { key, size: body.length, etag: "e", metadata: {} } : undefined),
    get: () => {
      gets++;
      return Promise.resolve(new Blob([body]).stream());
    },
  } as unknown as S3Store;
  const sha = createHash("sha256").update(body).digest("hex");
  const read = (signed?: { sha256: string | null }) =>
    readProperties(store, "z3-backup/", "tank/a@s1", 1, signed);
  assert.deepEqual(await read(), { compression: "lz4" });
  assert.deepEqual(await read({ sha256: sha }), { compression: "lz4" });
  const before = gets;
  assert.equal(await read({ sha256: null }), undefined, "none signed: none read");
  assert.equal(gets, before);
  await assert.rejects(
    () => read({ sha256: "0".repeat(64) }),
    (e) =>
      e instanceof IntegrityError && e.exitCode === EXIT.integrity &&
      /Cannot trust the properties .*: they hash to SHA-256 [0-9a-f]{64}, the signed record/.test(
        e.message,
      ),
  );
});
