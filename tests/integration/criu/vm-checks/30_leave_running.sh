# --leave-running: the container runs on after the checkpoint; its image restores too,
# under a new ID (a container of its own: cgroup, state, list).
. /extra/vm-lib/lib.sh
cleanup_on_exit c3 c3b
make_bundle || exit 1
start_counter c3 || exit 1
wait_count 5 || exit 1
before=$(count)
$V checkpoint --leave-running --image-path /tmp/ck3 --work-path /tmp/ck3-work c3 || { criu_log /tmp/ck3-work; exit 1; }
[ -f /tmp/ck3-work/dump.log ] || { echo "--work-path: no dump.log in it"; exit 1; }
at_dump=$(count)
$V state c3 | grep -q '"running"' || { echo "c3 not running after --leave-running"; exit 1; }
wait_count $((at_dump + 5)) || { echo "c3 stopped counting after --leave-running"; exit 1; }
$V delete --force c3 || exit 1
nothing_left c3 || exit 1
restore_counter c3b /tmp/ck3 || { criu_log /tmp/ck3; exit 1; }
expect_resumed $before || exit 1
[ -n "$(cgroup_of c3b)" ] || { echo "c3b has no cgroup"; exit 1; }
$V list | grep -q '^c3b ' || { echo "list does not show c3b"; $V list; exit 1; }
$V state c3 >/dev/null 2>&1 && { echo "c3 exists again"; exit 1; }
$V delete --force c3b || exit 1
nothing_left c3b || exit 1
echo "ran on after the checkpoint and restored from it as c3b"
