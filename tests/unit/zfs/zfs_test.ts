/**
 * How z3 reads zfs's output and error messages. Each fixture says where its text comes from:
 * OpenZFS source (file and the commit of the copy read) or a run of zfs-fuse 0.7 on the test
 * bed.
 */
import assert from "node:assert/strict";
import {
  getSnapshotsArgv,
  listSnapshotsArgv,
  parseSnapshotList,
  parseSnapshotProps,
  receiveArgv,
  receiveHint,
  saysBadStream,
  saysBusy,
  saysInvalidOption,
  saysNoSuchDataset,
} from "../../../lib/zfs/zfs.ts";

const DS = "tank/does not exist";

Deno.test("receiveArgv() adds -F for force and -u for noMount, before the target", () => {
  assert.deepEqual(receiveArgv(DS).slice(1), ["receive", DS]);
  assert.deepEqual(receiveArgv(DS, { force: true }).slice(1), ["receive", "-F", DS]);
  assert.deepEqual(receiveArgv(DS, { noMount: true }).slice(1), ["receive", "-u", DS]);
  assert.deepEqual(
    receiveArgv(DS, { force: true, noMount: true }).slice(1),
    ["receive", "-F", "-u", DS],
  );
});

Deno.test("listSnapshotsArgv() is the one list call, with exact numbers", () => {
  assert.deepEqual(listSnapshotsArgv(DS).slice(1), [
    "list",
    "-H",
    "-p",
    "-o",
    "name,guid,createtxg,creation",
    "-t",
    "snapshot",
    "-d",
    "1",
    DS,
  ]);
  assert.deepEqual(getSnapshotsArgv(DS).slice(1), [
    "get",
    "-H",
    "-p",
    "-r",
    "-d",
    "1",
    "-o",
    "name,property,value",
    "guid,createtxg,creation",
    DS,
  ]);
});

Deno.test("parseSnapshotList() reads list -Hp rows in createtxg order, other datasets ignored", () => {
  // Shape of `zfs list -H -p -o name,guid,createtxg,creation -t snapshot -d 1` as OpenZFS's
  // zfs-list(8) states it (openzfs/zfs man/man8/zfs-list.8 at e73402e0, .Dd February 8, 2024):
  // "-H Used for scripting mode. Do not print headers and separate fields by a single tab
  // instead of arbitrary white space."; "-p Display numbers in parsable (exact) values." Not run on OpenZFS here; the values are the zfs-fuse run's in the next test but one.
  const text = [
    `${DS}@b\t7119323571069140646\t16\t1796121486`,
    `${DS}@a\t13534705441754508859\t11\t1796121486`,
    `${DS}/child@x\t1\t12\t1796121486`,
    "",
  ].join("\n");
  assert.deepEqual(parseSnapshotList(DS, text), [
    {
      name: `${DS}@a`,
      snapshot: "a",
      guid: "13534705441754508859",
      creation: 1796121486,
      createtxg: 11,
    },
    {
      name: `${DS}@b`,
      snapshot: "b",
      guid: "7119323571069140646",
      creation: 1796121486,
      createtxg: 16,
    },
  ]);
});

Deno.test("parseSnapshotList() refuses a rounded GUID (zfs list without -p)", () => {
  // zfs-fuse 0.7, real run: `zfs list -H -o name,guid,createtxg,creation -t snapshot -d 1`
  const text = `${DS}@a\t11.7E\t11\tTue Dec  1 10:38 2026\n`;
  assert.throws(() => parseSnapshotList(DS, text), /Cannot read the guid, createtxg and creation/);
});

Deno.test("parseSnapshotProps() reads zfs-fuse's one get -Hp call, the dataset itself skipped", () => {
  // zfs-fuse 0.7, real run of getSnapshotsArgv() on the test bed (dataset renamed).
  const text = [
    `${DS}\tguid\t8102285305313364326`,
    `${DS}\tcreatetxg\t6`,
    `${DS}\tcreation\t1796121486`,
    `${DS}@a\tguid\t13534705441754508859`,
    `${DS}@a\tcreatetxg\t11`,
    `${DS}@a\tcreation\t1796121486`,
    `${DS}@b\tguid\t7119323571069140646`,
    `${DS}@b\tcreatetxg\t16`,
    `${DS}@b\tcreation\t1796121486`,
  ].join("\n");
  assert.deepEqual(parseSnapshotProps(DS, text).map((s) => [s.snapshot, s.guid]), [
    ["a", "13534705441754508859"],
    ["b", "7119323571069140646"],
  ]);
});

Deno.test("saysInvalidOption() knows zfs-fuse's refusal of list -p", () => {
  // zfs-fuse 0.7, real run of `zfs list -H -p -o name,guid`; the same text in
  // openzfs/zfs cmd/zfs/zfs_main.c: `gettext("invalid option '%c'\n"), optopt`.
  assert.equal(saysInvalidOption("invalid option 'p'\nusage:\n\tlist [-rH][-d max] ", "p"), true);
  assert.equal(saysInvalidOption("invalid option 't'\nusage:", "p"), false);
  assert.equal(saysInvalidOption(`cannot open '${DS} invalid option 'p''`, "p"), false);
});

Deno.test("saysNoSuchDataset() matches zfs's own message for that dataset only", () => {
  // openzfs/zfs lib/libzfs/libzfs_dataset.c (9530eb64), zfs_open():
  //   `dgettext(TEXT_DOMAIN, "cannot open '%s'"), path` then zfs_standard_error();
  // openzfs/zfs lib/libzfs/libzfs_util.c (013e3d39), zfs_standard_error(), ENOENT:
  //   "dataset does not exist", printed by zfs_verror() as "%s: %s\n".
  // zfs-fuse 0.7, real run: `cannot open 'z3vprobe/nope': dataset does not exist`.
  assert.equal(saysNoSuchDataset(`cannot open '${DS}': dataset does not exist`, DS), true);
  // The same dataset name, another failure: not "absent".
  // openzfs/zfs lib/libzfs/libzfs_util.c (013e3d39), EAGAIN: "pool I/O is currently suspended".
  assert.equal(
    saysNoSuchDataset(`cannot open '${DS}': pool I/O is currently suspended`, DS),
    false,
  );
  // openzfs/zfs lib/libzfs/libzfs_util.c (013e3d39), EPERM/EACCES: "permission denied".
  assert.equal(saysNoSuchDataset(`cannot open '${DS}': permission denied`, DS), false);
  // Another dataset is absent (a parent), not this one.
  assert.equal(
    saysNoSuchDataset("cannot open 'tank/does not exist/x': dataset does not exist", DS),
    false,
  );
});

Deno.test("saysBusy() matches zfs's EBUSY text, not a dataset named busy", () => {
  // openzfs/zfs lib/libzfs/libzfs_util.c (013e3d39), zfs_standard_error(), EBUSY: "dataset is busy".
  assert.equal(saysBusy("cannot destroy 'tank/z3-verify-1': dataset is busy"), true);
  assert.equal(saysBusy("cannot destroy 'tank/busy': permission denied"), false);
});

Deno.test("receiveHint() matches the two-line 'has been modified' text, raw and joined", () => {
  // openzfs/zfs lib/libzfs/libzfs_sendrecv.c (00a38210), zfs_receive_one(), ETXTBSY:
  //   "destination %s has been modified\n" "since most recent snapshot", after the errbuf
  //   "cannot receive incremental stream".
  const raw = "cannot receive incremental stream: destination tank/back has been modified\n" +
    "since most recent snapshot";
  const hint = receiveHint(raw);
  assert.match(hint ?? "", /^"tank\/back" changed since its latest snapshot: .*--force/);
  // z3 joins stderr lines with "; " in messages (process.ts).
  assert.equal(receiveHint(raw.replace("\n", "; ")), hint);
  // openzfs/zfs lib/libzfs/libzfs_sendrecv.c (00a38210), ENODEV: another reason.
  assert.equal(
    receiveHint(
      "cannot receive incremental stream: most recent snapshot of tank/back does not\n" +
        "match incremental source",
    ),
    undefined,
  );
});

Deno.test("saysBadStream() knows a refused stream from other receive failures", () => {
  // openzfs/zfs lib/libzfs/libzfs_sendrecv.c (00a38210): recv_ecksum_set_aux() sets
  // "checksum mismatch or incomplete stream"; EZFS_BADSTREAM reads "invalid backup stream"
  // (lib/libzfs/libzfs_util.c, 013e3d39).
  assert.equal(
    saysBadStream(
      "cannot receive new filesystem stream: checksum mismatch or incomplete stream",
    ),
    true,
  );
  // zfs-fuse 0.7, real runs: a flipped byte, and a stream cut short.
  assert.equal(
    saysBadStream("cannot receive new filesystem stream: invalid stream (checksum mismatch)"),
    true,
  );
  assert.equal(saysBadStream("cannot receive new filesystem stream: invalid backup stream"), true);
  // zfs-fuse 0.7, real run (verify --zfs of an object that is no ZFS stream).
  assert.equal(saysBadStream("cannot receive: invalid stream (bad magic number)"), true);
  // openzfs/zfs lib/libzfs/libzfs_sendrecv.c (00a38210), EDQUOT: a local problem.
  assert.equal(
    saysBadStream("cannot receive new filesystem stream: destination tank/x space quota exceeded."),
    false,
  );
});
