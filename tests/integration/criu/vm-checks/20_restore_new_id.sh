# The same image restored under a new ID: a second container, its own cgroup and state.
. /extra/vm-lib/lib.sh
cleanup_on_exit c2
make_bundle || exit 1
[ -f /tmp/ck1/inventory.img ] || { echo "no image from 10_checkpoint_restore"; exit 1; }
at_dump=$(cat /tmp/ck1.count)
rm -f $B/rootfs/count*
cp -p /tmp/ck1.files/* $B/rootfs/ 2>/dev/null
restore_counter c2 /tmp/ck1 || { criu_log /tmp/ck1; exit 1; }
expect_resumed $at_dump || exit 1
$V state c1 >/dev/null 2>&1 && { echo "c1 exists again"; exit 1; }
[ -n "$(cgroup_of c2)" ] || { echo "c2 has no cgroup"; exit 1; }
$V list | grep -q '^c2 ' || { echo "list does not show c2"; $V list; exit 1; }
$V delete --force c2 || exit 1
nothing_left c2 || exit 1
echo "restored as c2, count went on from $at_dump"
