/**
 * The OpenZFS 2.x (and zfs-fuse) texts z3 reads for send estimates, encryption and holds. Each
 * fixture says where it comes from: a file of openzfs/zfs at the commit of the copy read (the
 * search index names copies by commit; which release tag holds that commit could not be read
 * there), or a run of zfs-fuse 0.7 on the test bed.
 */
import assert from "node:assert/strict";
import { parseSendEstimate, saysInvalidProperty } from "../../../lib/zfs/zfs.ts";
import { holdTag } from "../../../lib/zfs/holds.ts";

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

Deno.test("parseSendEstimate() reads the size line of OpenZFS's send -nvP, full and incremental", () => {
  // openzfs/zfs lib/libzfs/libzfs_sendrecv.c at 97f39af3: estimate_size() prints to stdout for a
  // dry run (`fout = flags->dryrun ? stdout : stderr`), first send_print_verbose()'s parsable
  // line, "full\t%s" or "incremental\t%s\t%s", then "\t%llu" and "\n", then "size\t%llu\n".
  assert.equal(parseSendEstimate("full\ttank/my data@s1\t1843200\nsize\t1843200\n"), 1843200);
  assert.equal(
    parseSendEstimate("incremental\ttank/my data@s1\ttank/my data@s2\t4096\nsize\t4096\n"),
    4096,
  );
  // Older releases wrote the same lines to stderr; z3 reads both.
  assert.equal(parseSendEstimate("", "full\ttank/ds@s1\t7\nsize\t7\n"), 7);
  // The human form (no -P): "full send of %s estimated size is %s", "total estimated size is %s".
  assert.equal(
    parseSendEstimate(
      "full send of tank/ds@s1 estimated size is 1.76M\ntotal estimated size is 1.76M\n",
    ),
    undefined,
  );
  // zfs-fuse 0.7 has no -n (its usage on stderr); a snapshot named "size" is no size line.
  assert.equal(
    parseSendEstimate("", "invalid option 'n'\nusage:\n\tsend [-vR] [-[iI] snapshot] <snapshot>\n"),
    undefined,
  );
  assert.equal(parseSendEstimate("full\tsize\t12\n"), undefined);
});
