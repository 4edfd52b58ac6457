#!/usr/bin/env bash
# Prints what the OpenZFS guest's zfs answers in the cases z3 parses (the fixtures of
# tests/unit/zfs_test.ts, openzfs_texts_test.ts and bookmarks_test.ts), as a transcript:
# "$ command", then stdout, stderr ("2> …") and the exit status. Run with a started guest
# (openzfs_vm.sh start); it makes and destroys its own pool, and touches no other.
set -uo pipefail
VM=$(dirname "$(readlink -f "$0")")/openzfs_vm.sh
P=z3texts$RANDOM
D="$P/my data"

show() {
  local out err rc
  out=$(mktemp)
  err=$(mktemp)
  "$VM" "$@" <"${STDIN:-/dev/null}" >"$out" 2>"$err"
  rc=$?
  printf '$'
  printf ' %q' "$@"
  printf '\n'
  sed 's/^/  /' "$out"
  sed 's/^/  2> /' "$err"
  echo "  (exit $rc)"
  rm -f "$out" "$err"
}
quiet() { "$VM" "$@" </dev/null >/dev/null 2>&1; }

"$VM" zfs version | head -n1
quiet run mkdir -p /var/tmp/z3-pools
quiet run truncate -s 256M "/var/tmp/z3-pools/$P.img"
quiet run truncate -s 128M "/var/tmp/z3-pools/${P}old.img"
quiet zpool create "$P" "/var/tmp/z3-pools/$P.img"
# A pool with every feature off (as an old pool): no bookmarks.
quiet zpool create -d "${P}old" "/var/tmp/z3-pools/${P}old.img"
quiet zfs create "$D"
quiet run sh -c 'head -c 1000000 /dev/urandom > "$1"' sh "/$D/f1"
quiet zfs snapshot "$D@s1"
quiet run sh -c 'head -c 1000000 /dev/urandom > "$1"' sh "/$D/f2"
quiet zfs snapshot "$D@s2"

show zfs get -H -p -o value encryption "$P/nope"
show zfs get -H -p -o value encryption "$D"
show zfs send -nvP "$D@s1"
show zfs send -nvP -i "$D@s1" "$D@s2"
show zfs bookmark "$D@s1" "$D#b1"
show zfs bookmark "$D@s1" "$D#b1"
quiet zfs create "${P}old/x"
quiet zfs snapshot "${P}old/x@s1"
show zfs bookmark "${P}old/x@s1" "${P}old/x#b1"
show zfs hold z3:texts "$D@s1"
show zfs holds -H "$D@s1"
show zfs destroy "$D@s1"
show zfs release z3:texts "$D@s1"
show zfs release z3:texts "$D@s1"

# Receives: a full, then an incremental onto a modified target, one from a wrong base, bad bytes.
tmp=$(mktemp -d)
"$VM" zfs send "$D@s1" </dev/null >"$tmp/full"
"$VM" zfs send -i "$D@s1" "$D@s2" </dev/null >"$tmp/incr"
STDIN=$tmp/full show zfs receive "$P/back"
quiet run sh -c 'echo x > "$1"' sh "/$P/back/new"
STDIN=$tmp/incr show zfs receive "$P/back"
quiet zfs destroy -r "$P/back"
STDIN=$tmp/incr show zfs receive "$P/back"
head -c 100000 "$tmp/full" >"$tmp/cut"
STDIN=$tmp/cut show zfs receive "$P/cut"
head -c 100000 /dev/urandom >"$tmp/junk"
STDIN=$tmp/junk show zfs receive "$P/junk"
show zfs destroy "$P/nope"
rm -rf "$tmp"

quiet zpool destroy -f "$P"
quiet zpool destroy -f "${P}old"
quiet run rm -f "/var/tmp/z3-pools/$P.img" "/var/tmp/z3-pools/${P}old.img"
