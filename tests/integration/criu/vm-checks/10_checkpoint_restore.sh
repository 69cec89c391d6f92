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
at_dump=$(count)
nothing_left c1 || exit 1
sleep 0.5
[ "$(count)" = "$at_dump" ] || { echo "count moved after the checkpoint: $at_dump -> $(count)"; exit 1; }
t0=$(now_ms)
restore_counter c1 /tmp/ck1 || { criu_log /tmp/ck1; exit 1; }
t1=$(now_ms)
echo "restore took $((t1 - t0)) ms (until state says running)"
criu_slow_steps /tmp/ck1/restore.log
expect_resumed $at_dump || exit 1
[ -n "$(cgroup_of c1)" ] || { echo "restored c1 has no cgroup"; exit 1; }
pid=$($V state c1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
grep -q "$(cgroup_of c1 | sed 's|/sys/fs/cgroup||')" /proc/$pid/cgroup || { echo "restored init $pid not in its cgroup: $(cat /proc/$pid/cgroup)"; exit 1; }
# The restored init is the container's init: kill stops the container, delete removes it.
$V kill c1 KILL || { echo "kill of the restored c1 failed"; exit 1; }
n=0
while ! $V state c1 | grep -q '"stopped"'; do
  n=$((n + 1)); [ $n -gt 50 ] && { echo "restored c1 not stopped 5 s after kill: $($V state c1)"; exit 1; }
  sleep 0.1
done
$V delete c1 || { echo "delete of the stopped c1 failed"; exit 1; }
nothing_left c1 || exit 1
# (a zombie waits for its parent, L1's init, to reap it: not vessel's to do)
[ -d /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null && { echo "restored init $pid still runs after delete"; exit 1; }
grep -q "$B/rootfs" /proc/mounts && { echo "a mount of the rootfs is left: $(grep "$B/rootfs" /proc/mounts)"; exit 1; }
echo "count at checkpoint $at_dump, continued after restore"
