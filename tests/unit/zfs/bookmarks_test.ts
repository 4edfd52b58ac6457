/**
 * Bookmark argv, parsing and planning. Fixture texts: the columns are the ones z3 asks
 * `zfs list -H -p` for, tab-separated as zfs-list(8) states for `-H` (openzfs/zfs
 * man/man8/zfs-list.8 at e73402e0), and a bookmark has guid, createtxg and creation
 * (module/zcommon/zfs_prop.c at 00cb9c5b: `ZFS_TYPE_BOOKMARK` in their registrations); the
 * "no bookmarks" text is zfs-fuse 0.7's, from a run on the test bed (`zfs list -H -t bookmark`).
 */
import assert from "node:assert/strict";
import {
  bookmarkArgv,
  destroyBookmarkArgv,
  listBookmarksArgv,
  parseBookmarkList,
  saysBookmarkFeatureOff,
  saysNoBookmarks,
  sendArgv,
} from "../../../lib/zfs/zfs.ts";
import { bookmarkFor, bookmarkPrefix, withBookmarkedBases } from "../../../lib/zfs/bookmarks.ts";
import { holdTag } from "../../../lib/zfs/holds.ts";
import type { RemoteSnapshot } from "../../../lib/chain/types.ts";

const DS = "tank/my data";

Deno.test("listBookmarksArgv() puts -t before -p, so that zfs-fuse names the type it lacks", () => {
  assert.deepEqual(listBookmarksArgv(DS).slice(1), [
    "list",
    "-H",
    "-t",
    "bookmark",
    "-p",
    "-o",
    "name,guid,createtxg,creation",
    "-d",
    "1",
    DS,
  ]);
});

Deno.test("parseBookmarkList() reads name, guid, createtxg, creation; skips other datasets; refuses junk", () => {
  const text = `${DS}#z3-aa-s1\t12345678901234567890\t42\t1700000000\n` +
    `tank/other#z3-aa-s1\t1\t2\t3\n`;
  assert.deepEqual(parseBookmarkList(DS, text), [
    {
      name: `${DS}#z3-aa-s1`,
      bookmark: "z3-aa-s1",
      guid: "12345678901234567890",
      createtxg: 42,
      creation: 1700000000,
    },
  ]);
  assert.throws(
    () => parseBookmarkList(DS, `${DS}#b\t1.94E\t42\t1700000000\n`),
    /Cannot read the guid/,
  );
  assert.throws(
    () => parseBookmarkList(DS, `${DS}#b\t12345678901234567890\t1700000000\n`),
    /Cannot read the guid, createtxg and creation/,
  );
});

Deno.test("saysNoBookmarks() is zfs-fuse's `invalid type 'bookmark'` line, not any usage text", () => {
  assert.equal(saysNoBookmarks("invalid type 'bookmark'\nusage:\n\tlist [-rH][-d max] ..."), true);
  assert.equal(saysNoBookmarks("invalid option 'p'\nusage:\n\tlist [-rH][-d max] ..."), false);
});

Deno.test("send from a bookmark: -i DS#bm of the same dataset only; bookmark and destroy argv", () => {
  assert.deepEqual(sendArgv(`${DS}@s2`, `${DS}#z3-aa-s1`, ["-L"]).slice(1), [
    "send",
    "-L",
    "-i",
    `${DS}#z3-aa-s1`,
    `${DS}@s2`,
  ]);
  assert.throws(() => sendArgv(`${DS}@s2`, "tank/other#z3-aa-s1"), /of another dataset/);
  assert.throws(() => sendArgv(`${DS}@s2`, `${DS}#-rf x`), /Cannot use bookmark/);
  assert.deepEqual(bookmarkArgv(`${DS}@s1`, `${DS}#z3-aa-s1`).slice(1), [
    "bookmark",
    `${DS}@s1`,
    `${DS}#z3-aa-s1`,
  ]);
  assert.deepEqual(destroyBookmarkArgv(`${DS}#z3-aa-s1`).slice(1), ["destroy", `${DS}#z3-aa-s1`]);
  assert.throws(() => destroyBookmarkArgv(`${DS}@s1`), /Cannot use bookmark/);
  assert.throws(() => destroyBookmarkArgv(DS), /Cannot use bookmark/);
});

Deno.test("bookmarkFor() carries the hold tag's digest, so each bucket+prefix has its own", () => {
  const hex = holdTag("b", "z3-backup/").slice(3);
  assert.equal(bookmarkFor("b", "z3-backup/", `${DS}@s1`), `${DS}#z3-${hex}-s1`);
  assert.notEqual(bookmarkPrefix("b", "z3-backup/"), bookmarkPrefix("b", "other/"));
});

Deno.test("withBookmarkedBases() adds a gone snapshot only from our bookmark with the bucket's GUID", () => {
  const prefix = bookmarkPrefix("b", "z3-backup/");
  const snap = (s: string, guid: string, creation: number) => ({
    name: `${DS}@${s}`,
    snapshot: s,
    guid,
    creation,
    createtxg: creation / 10,
  });
  const remote = new Map<string, RemoteSnapshot>([
    [`${DS}@s1`, {
      name: `${DS}@s1`,
      snapshot: "s1",
      key: "k1",
      isFull: true,
      guid: "11",
      objectSize: 1,
      metadata: {},
    }],
    [`${DS}@s0`, {
      name: `${DS}@s0`,
      snapshot: "s0",
      key: "k0",
      isFull: true,
      guid: "10",
      objectSize: 1,
      metadata: {},
    }],
  ]);
  const local = [snap("s2", "12", 300)];
  const mark = (s: string, guid: string, creation: number, p = prefix) => ({
    name: `${DS}#${p}${s}`,
    bookmark: `${p}${s}`,
    guid,
    createtxg: creation / 10,
    creation,
  });
  const got = withBookmarkedBases(DS, local, remote, [
    mark("s1", "11", 200),
    mark("s0", "99", 100), // another snapshot's GUID: not this base
    mark("s0", "10", 100, bookmarkPrefix("b", "other/")), // another bucket+prefix's
  ], prefix);
  assert.deepEqual(got.local, [snap("s1", "11", 200), snap("s2", "12", 300)]);
  assert.deepEqual([...got.sendFrom], [[`${DS}@s1`, `${DS}#${prefix}s1`]]);
  // A snapshot still there is sent from itself.
  const still = withBookmarkedBases(
    DS,
    [snap("s1", "11", 200)],
    remote,
    [mark("s1", "11", 200)],
    prefix,
  );
  assert.equal(still.sendFrom.size, 0);
});

Deno.test("withBookmarkedBases() places a bookmarked base by createtxg, also within one second", () => {
  // s1 (gone, bookmarked) and s2 were taken in the same second: equal `creation`, and s2 even
  // listed first; only createtxg says s1 is older. Planning must see s2 as the newest.
  const prefix = bookmarkPrefix("b", "z3-backup/");
  const snap = (s: string, guid: string, createtxg: number) => ({
    name: `${DS}@${s}`,
    snapshot: s,
    guid,
    creation: 1700000000,
    createtxg,
  });
  const remote = new Map<string, RemoteSnapshot>([[`${DS}@s1`, {
    name: `${DS}@s1`,
    snapshot: "s1",
    key: "k1",
    isFull: true,
    guid: "11",
    objectSize: 1,
    metadata: {},
  }]]);
  const mark = {
    name: `${DS}#${prefix}s1`,
    bookmark: `${prefix}s1`,
    guid: "11",
    createtxg: 20,
    creation: 1700000000,
  };
  for (const local of [[snap("s2", "12", 21)], [snap("s0", "10", 19), snap("s2", "12", 21)]]) {
    const got = withBookmarkedBases(DS, local, remote, [mark], prefix);
    assert.deepEqual(
      got.local.map((s) => s.snapshot),
      [...local.map((s) => s.snapshot), "s1"].sort(),
    );
  }
});

Deno.test("saysBookmarkFeatureOff() is OpenZFS's ENOTSUP text of zfs bookmark, nothing else", () => {
  // openzfs/zfs cmd/zfs/zfs_main.c at 3fcd6197, zfs_do_bookmark(): "cannot create bookmark '%s'"
  // + ": %s\n" with "bookmark feature not enabled" (ENOTSUP), "bookmark exists" (EEXIST).
  assert.equal(
    saysBookmarkFeatureOff(
      `cannot create bookmark '${DS}#z3-aa-s1': bookmark feature not enabled\n`,
    ),
    true,
  );
  assert.equal(
    saysBookmarkFeatureOff(`cannot create bookmark '${DS}#z3-aa-s1': bookmark exists\n`),
    false,
  );
});
