# A container whose process counts in memory is checkpointed (it is gone: no process,
# state or cgroup), then restored under the same ID: the count continues from where it
# was, in a new cgroup; delete removes everything.
. /extra/vm-lib/lib.sh
cleanup_on_exit c1
make_bundle || exit 1
start_counter c1 || exit 1
wait_count 10 || exit 1
t0=$(now_ms)
$V checkpoint --image-path /tmp/ck1 c1 || { criu_log /tmp/ck1; exit 1; }
t1=$(now_ms)
echo "checkpoint took $((t1 - t0)) ms"
criu_slow_steps /tmp/ck1/dump.log
# The rootfs as it was at the dump (the counter may have had /count.new open), for
# 20_restore_new_id: restoring needs the files the process had open, as podman's
# exported rootfs diff gives them back.
mkdir -p /tmp/ck1.files && cp -p $B/rootfs/count* /tmp/ck1.files/ 2>/dev/null
at_dump=$(count)
nothing_left c1 || exit 1
sleep 0.5
[ "$(count)" = "$at_dump" ] || { echo "count moved after the checkpoint: $at_dump -> $(count)"; exit 1; }
t0=$(now_ms)
restore_counter c1 /tmp/ck1 || { criu_log /tmp/ck1; exit 1; }
t1=$(now_ms)
echo "restore took $((t1 - t0)) ms (until state says running)"
criu_slow_steps /tmp/ck1/restore.log
echo $at_dump >/tmp/ck1.count
expect_resumed $at_dump || exit 1
[ -n "$(cgroup_of c1)" ] || { echo "restored c1 has no cgroup"; exit 1; }
pid=$($V state c1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
grep -q "$(cgroup_of c1 | sed 's|/sys/fs/cgroup||')" /proc/$pid/cgroup || { echo "restored init $pid not in its cgroup: $(cat /proc/$pid/cgroup)"; exit 1; }
$V delete --force c1 || exit 1
nothing_left c1 || exit 1
echo "count at checkpoint $at_dump, continued after restore"
