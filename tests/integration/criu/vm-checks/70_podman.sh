# podman drives vessel's checkpoint and restore: `podman container checkpoint` (the
# container stops, podman keeps its image), then `podman container restore` (conmon runs
# `vessel restore --detach --pid-file ...` with the saved bundle): the count resumes,
# state is running, and `podman rm -f` leaves nothing in vessel's root. Then
# `checkpoint --leave-running`: the container counts on. A token drawn when the counter
# starts proves the restored process is the checkpointed one (a podman call takes
# seconds in L1, so the first count read after restore is well past the dump).
. /extra/vm-lib/lib.sh
command -v podman >/dev/null || { echo "podman was not copied into L1"; exit 77; }
command -v conmon >/dev/null || { echo "conmon was not copied into L1"; exit 77; }
P=/tmp/criu-podman
# podman's locks are POSIX shared memory, its image copy reads the signature policy.
grep -q ' /dev/shm ' /proc/mounts || { mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 shm /dev/shm; } ||
  { echo "cannot mount /dev/shm for podman's locks"; exit 1; }
[ -f /etc/containers/policy.json ] || { echo "/etc/containers/policy.json was not copied into L1"; exit 1; }
mkdir -p $P/tmp $P/bin $P/vessel-root $P/img/bin $P/img/etc $P/img/proc $P/img/sys $P/img/dev $P/img/tmp
# vessel with its own --root, logging podman's and conmon's calls (shown on failure).
cat >$P/bin/vessel <<SHIM
#!/bin/sh
echo "vessel \$*" >>$P/argv.log
exec /usr/local/bin/vessel --root $P/vessel-root "\$@"
SHIM
chmod +x $P/bin/vessel
cat >$P/containers.conf <<CONF
[containers]
netns = "none"
default_ulimits = ["nofile=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_path = ["$(command -v conmon)"]
runtime_supports_json = ["vessel"]
CONF
pm() {
  TMPDIR=$P/tmp CONTAINERS_CONF=$P/containers.conf podman --root $P/storage --runroot $P/run --tmpdir $P/libpod \
    --storage-driver vfs --runtime $P/bin/vessel "$@"
}
fail() { echo "$1"; echo "--- runtime calls:"; tail -n 8 $P/argv.log 2>/dev/null; exit 1; }
trap 'pm rm -f --time 0 p1 >/dev/null 2>&1' EXIT
cp /bin/busybox $P/img/bin/busybox
/bin/busybox --install -s $P/img/bin
echo 'root:x:0:0:root:/:/bin/sh' >$P/img/etc/passwd
echo 'root:x:0:' >$P/img/etc/group
tar -C $P/img -cf $P/img.tar . || fail "tar of the image failed"
pm import $P/img.tar localhost/criu-busybox >/dev/null 2>$P/err || fail "podman import failed: $(cat $P/err)"
# The counter, plus a token drawn when it starts: a restarted process draws another.
TOKEN_COUNTER='t=$RANDOM$RANDOM; echo $t >/token; '"$COUNTER"
pm run -d --name p1 localhost/criu-busybox sh -c "$TOKEN_COUNTER" >/dev/null 2>$P/err || fail "podman run failed: $(cat $P/err)"
ppid() { pm inspect --format '{{.State.Pid}}' p1 2>/dev/null; }
# The count, read through the init's root (its pid asked of podman once per container
# run: a podman call takes seconds in L1).
pcount() { read_count /proc/$PID/root/count; }
wait_pcount() {
  n=0
  while [ "$(pcount)" -lt "$1" ]; do
    n=$((n + 1)); [ $n -gt 100 ] && fail "p1: count stuck at $(pcount), wanted $1"
    sleep 0.1
  done
}
PID=$(ppid)
wait_pcount 5
pm container checkpoint p1 >/dev/null 2>$P/err || fail "podman container checkpoint failed: $(cat $P/err)"
grep -q '^vessel .*checkpoint ' $P/argv.log || fail "podman did not call vessel checkpoint"
st=$(pm inspect --format '{{.State.Status}}' p1)
[ "$st" = exited ] || fail "after checkpoint podman says $st, not exited"
[ -z "$(vessel --root $P/vessel-root list -q)" ] || fail "the checkpointed container is still in vessel's root"
at_dump=$(cat $P/storage/vfs/dir/*/count 2>/dev/null | sort -n | tail -n 1)
token=$(cat $P/storage/vfs/dir/*/token 2>/dev/null)
[ -n "$token" ] || fail "no /token in p1's rootfs"
for f in $P/storage/vfs/dir/*/count; do echo 0 >"$f"; done  # 0 until the restored counter writes
pm container restore p1 >/dev/null 2>$P/err || fail "podman container restore failed: $(cat $P/err)"
grep -q '^vessel .*restore ' $P/argv.log || fail "podman did not call vessel restore"
st=$(pm inspect --format '{{.State.Status}}' p1)
[ "$st" = running ] || fail "after restore podman says $st, not running"
PID=$(ppid)
vessel --root $P/vessel-root state "$(pm inspect --format '{{.Id}}' p1)" | grep -q '"running"' ||
  fail "vessel's state of the restored container is not running"
wait_pcount 1
first=$(pcount)
if [ "$first" -le "${at_dump:-0}" ] || [ "$first" -gt $((${at_dump:-0} + 600)) ]; then
  fail "restored p1 counts $first, the dump was at $at_dump: not resumed"
fi
wait_pcount $((first + 3))
[ "$(cat /proc/$PID/root/token)" = "$token" ] || fail "p1's token changed across restore: a new process, not the checkpointed one"
echo "podman checkpoint/restore: p1 resumed at $first (dump at $at_dump), same token $token"
pm container checkpoint --leave-running p1 >/dev/null 2>$P/err || fail "podman checkpoint --leave-running failed: $(cat $P/err)"
[ "$(pm inspect --format '{{.State.Status}}' p1)" = running ] || fail "p1 not running after --leave-running"
wait_pcount $(( $(pcount) + 3 ))
echo "podman checkpoint --leave-running: p1 counts on"
pid=$PID
pm rm -f --time 0 p1 >/dev/null 2>$P/err || fail "podman rm -f failed: $(cat $P/err)"
[ -z "$(vessel --root $P/vessel-root list -q)" ] || fail "podman rm left a container in vessel's root"
[ -d /proc/$pid ] && fail "the restored init $pid still runs after podman rm"
echo "checkpoint and restore through podman work"
