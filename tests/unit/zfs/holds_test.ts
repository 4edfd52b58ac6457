import assert from "node:assert/strict";
import { describeHolds } from "../../../lib/zfs/holds.ts";
import { parseUserRefs, userRefsArgv } from "../../../lib/zfs/zfs.ts";

const DS = "pool/my data";
const TAG = "z3:0123456789ab";

// $ zfs get -H -p -r -d 1 -o name,value userrefs "pool/my data"   (zfs-fuse 0.7; a held twice)
const USERREFS = `${DS}\t-\n${DS}@a\t2\n${DS}@b\t0\n`;

Deno.test("userRefsArgv() reads userrefs of the dataset's own snapshots in one call", () => {
  assert.deepEqual(userRefsArgv(DS).slice(1), [
    "get",
    "-H",
    "-p",
    "-r",
    "-d",
    "1",
    "-o",
    "name,value",
    "userrefs",
    DS,
  ]);
});

Deno.test("parseUserRefs() skips the dataset's own line and reads each snapshot's count", () => {
  assert.deepEqual([...parseUserRefs(DS, USERREFS)], [[`${DS}@a`, 2], [`${DS}@b`, 0]]);
  assert.throws(() => parseUserRefs(DS, `${DS}@a\tx\n`), /Cannot read the userrefs/);
});

Deno.test("describeHolds() names the base alone when it is the only held snapshot", () => {
  const held = new Map([[`${DS}@b`, 1]]);
  assert.equal(
    describeHolds({ tag: TAG, hold: true, base: `${DS}@b`, held }),
    `hold: ${DS}@b (tag ${TAG}; userrefs 1)`,
  );
});

Deno.test("describeHolds() names every other held snapshot, not just the base", () => {
  const held = new Map([[`${DS}@a`, 1], [`${DS}@c`, 2], [`${DS}@d`, 1]]);
  const line = describeHolds({ tag: TAG, hold: true, base: `${DS}@d`, held });
  assert.match(line, new RegExp(`^hold: ${DS}@d \\(tag ${TAG}; userrefs 1\\); also held: `));
  assert.match(line, new RegExp(`also held: ${DS}@a \\(userrefs 1\\), ${DS}@c \\(userrefs 2\\):`));
  assert.match(line, new RegExp(`zfs release ${TAG} SNAPSHOT`));
});

Deno.test("describeHolds() with HOLD=false names every held snapshot, the base included", () => {
  const held = new Map([[`${DS}@a`, 1]]);
  const line = describeHolds({ tag: TAG, hold: false, base: `${DS}@a`, held });
  assert.match(line, new RegExp(`^hold: off \\(HOLD=false; tag ${TAG}\\); also held: ${DS}@a`));
});

Deno.test("describeHolds() says the base is not held yet, and names the held ones", () => {
  const held = new Map([[`${DS}@a`, 1]]);
  const line = describeHolds({ tag: TAG, hold: true, base: `${DS}@b`, held });
  assert.match(line, /^hold: none on pool\/my data@b, the newest snapshot in the bucket/);
  assert.match(line, /also held: pool\/my data@a \(userrefs 1\)/);
});
