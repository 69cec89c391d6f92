# Bad input: one clear error naming what is wrong, a non-zero exit, and nothing made
# (no state, cgroup or mount); a container that was there is left as it was.
. /extra/vm-lib/lib.sh
cleanup_on_exit c5 c6 r1 r2 r3 r4
make_bundle || exit 1
fail=0
# expect_error WHAT PATTERN -- COMMAND...: the command must fail with PATTERN in its output.
expect_error() {
  what=$1 pat=$2; shift 3
  out=$("$@" 2>&1) && { echo "$what: succeeded: $out"; fail=1; return; }
  echo "$out" | grep -q -- "$pat" || { echo "$what: error does not say \"$pat\": $out"; fail=1; return; }
  echo "$what: $out"
}
expect_error "checkpoint of an unknown container" 'does not exist' -- $V checkpoint --image-path /tmp/ck-x nosuch
[ -e /tmp/ck-x ] && { echo "image dir made for an unknown container"; fail=1; }
expect_error "restore from a missing image path" '--image-path' -- $V restore -b $B --image-path /tmp/nowhere r1
nothing_left r1 || fail=1
mkdir -p /tmp/ck-empty
expect_error "restore from a directory without a checkpoint" 'inventory.img' -- $V restore -b $B --image-path /tmp/ck-empty r2
nothing_left r2 || fail=1
expect_error "bad --manage-cgroups-mode" 'manage-cgroups-mode' -- $V restore -b $B --image-path /tmp/ck1 --manage-cgroups-mode bogus r3
nothing_left r3 || fail=1
expect_error "bad --empty-ns" 'empty-ns' -- $V restore -b $B --image-path /tmp/ck1 --empty-ns ipc r3
nothing_left r3 || fail=1

# A created (not started) container is not running: nothing to checkpoint, it stays.
$V create -b $B c5 </dev/null >/dev/null 2>&1 || { echo "create c5 failed"; exit 1; }
expect_error "checkpoint of a created container" 'not running' -- $V checkpoint --image-path /tmp/ck5 c5
$V state c5 | grep -q '"created"' || { echo "c5 changed by the failed checkpoint"; fail=1; }
$V delete --force c5
nothing_left c5 || fail=1

# A running one: an image path whose parent is missing is refused, the container runs on;
# restoring onto its ID is refused and leaves it alone.
start_counter c6 || exit 1
expect_error "checkpoint to an image path without parent" '--image-path' -- $V checkpoint --image-path /tmp/no/such/dir c6
$V state c6 | grep -q '"running"' || { echo "c6 not running after a failed checkpoint"; fail=1; }
expect_error "restore onto an existing ID" 'exists' -- $V restore -b $B --image-path /tmp/ck1 c6
$V state c6 | grep -q '"running"' || { echo "c6 not running after a refused restore"; fail=1; }
# A restore CRIU itself refuses (the image's pid namespace is in use... here: a dump whose
# files are damaged) fails cleanly too.
mkdir -p /tmp/ck-bad && cp /tmp/ck1/* /tmp/ck-bad/ && rm -f /tmp/ck-bad/pstree.img
expect_error "restore of a damaged image" 'criu failed' -- $V restore -b $B --image-path /tmp/ck-bad r4
nothing_left r4 || fail=1
$V delete --force c6
nothing_left c6 || fail=1
[ $fail = 0 ] || exit 1
echo "every bad input refused, nothing left"
