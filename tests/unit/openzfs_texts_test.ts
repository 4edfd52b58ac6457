/**
 * The OpenZFS 2.x (and zfs-fuse) texts z3 reads for encryption and holds. Each fixture says where
 * it comes from: openzfs/zfs source as stored by the search index (the exact release tag of that
 * copy could not be read there), or a run of zfs-fuse 0.7 on the test bed.
 */
import assert from "node:assert/strict";
import { saysInvalidProperty } from "../../lib/zfs.ts";
import { holdTag } from "../../lib/holds.ts";

Deno.test("saysInvalidProperty() reads libzfs's and zfs-fuse's 'bad property list' line", () => {
  // lib/libzfs/libzfs_util.c, zprop_get_list(): zfs_error_aux("invalid property '%s'") under
  // zfs_error(EZFS_BADPROP, "bad property list"), printed "%s: %s\n".
  // $ zfs get -H -p -o value encryption pool/ds    (zfs-fuse 0.7, test bed; then its usage)
  const stderr = "bad property list: invalid property 'encryption'\nusage:\n\tget [-rHp] ...\n";
  assert.equal(saysInvalidProperty(stderr, "encryption"), true);
  assert.equal(saysInvalidProperty(stderr, "userrefs"), false);
  // $ zfs get -H -p -o value encryption 'pool/nope'  (any zfs: the dataset is the problem)
  assert.equal(
    saysInvalidProperty("cannot open 'pool/nope': dataset does not exist\n", "encryption"),
    false,
  );
});

Deno.test("holdTag() is one short tag per bucket and prefix, the prefix normalized", () => {
  const a = holdTag("bucket", "z3-backup/");
  assert.match(a, /^z3:[0-9a-f]{12}$/);
  assert.equal(holdTag("bucket", "z3-backup"), a, "same prefix with or without its slash");
  assert.notEqual(holdTag("bucket", "other/"), a);
  assert.notEqual(holdTag("bucket2", "z3-backup/"), a);
  // A bucket/prefix split must not collide: "ab"+"c/" vs "a"+"bc/".
  assert.notEqual(holdTag("ab", "c/"), holdTag("a", "bc/"));
});
