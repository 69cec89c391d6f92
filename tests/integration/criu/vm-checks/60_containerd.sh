# containerd's runc shim drives vessel's checkpoint and restore: `ctr task checkpoint`
# (runc's --image-path/--work-path/--leave-running), then `ctr containers checkpoint
# --task --rw` into an image and `ctr containers restore --live --rw` from it (the shim's
# `restore --detach --pid-file --bundle ...`): the count resumes.
. /extra/vm-lib/lib.sh
command -v containerd >/dev/null || { echo "containerd was not copied into L1"; exit 77; }
D=/tmp/criu-ctrd
mkdir -p $D/root $D/state
cat >$D/config.toml <<CONF
version = 2
root = "$D/root"
state = "$D/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$D/containerd.sock"
[ttrpc]
  address = "$D/containerd.sock.ttrpc"
CONF
containerd --config $D/config.toml >$D/containerd.log 2>&1 &
C="ctr --address $D/containerd.sock"
n=0
until $C version >/dev/null 2>&1; do
  n=$((n + 1)); [ $n -gt 100 ] && { echo "containerd did not start:"; tail -n 20 $D/containerd.log; exit 1; }
  sleep 0.1
done
cleanup() { kill %1 2>/dev/null; }
trap cleanup EXIT
$C image import --snapshotter native /extra/criu-image/busybox.tar >/dev/null || { echo "image import failed"; exit 1; }
IMG=docker.io/library/criu-busybox:latest
$C run -d --snapshotter native --runc-binary /usr/local/bin/vessel $IMG k1 sh -c "$COUNTER" </dev/null >$D/k1.out 2>&1 ||
  { echo "ctr run failed: $(cat $D/k1.out)"; exit 1; }
task_pid() { $C task ls 2>/dev/null | awk -v id="$1" '$1 == id && $3 == "RUNNING" { print $2 }'; }
kcount() { p=$(task_pid "$1"); read_count /proc/$p/root/count; }
wait_kcount() {
  n=0
  while [ "$(kcount "$1")" -lt "$2" ]; do
    n=$((n + 1)); [ $n -gt 100 ] && { echo "$1: count stuck at $(kcount "$1"), wanted $2"; $C task ls; return 1; }
    sleep 0.1
  done
}
wait_kcount k1 5 || exit 1
# 1. ctr task checkpoint --image-path: the shim runs `vessel checkpoint --image-path ... --leave-running`.
$C task checkpoint --image-path /tmp/ctr-ck1 --work-path /tmp/ctr-ck1-work k1 ||
  { echo "ctr task checkpoint failed"; grep -h Error /tmp/ctr-ck1-work/*.log | tail -n 5; exit 1; }
[ -f /tmp/ctr-ck1/inventory.img ] || { echo "no CRIU image in /tmp/ctr-ck1"; exit 1; }
wait_kcount k1 $(( $(kcount k1) + 3 )) || { echo "k1 stopped after a leave-running checkpoint"; exit 1; }
echo "ctr task checkpoint --image-path: image written, k1 runs on"
# 2. A checkpoint image of the container, its task and its rw layer (the counter's file: a dump
# that catches the shell with /count open records that fd, and a restore onto a fresh rootfs
# without the file then fails, as with runc), the task ended, restored live.
before=$(kcount k1)
$C containers checkpoint --task --rw k1 criu/k1:ckpt >$D/ckpt.out 2>&1 || { echo "ctr containers checkpoint failed: $(cat $D/ckpt.out)"; exit 1; }
$C task kill -s SIGKILL k1 2>/dev/null
n=0; while [ -n "$(task_pid k1)" ] && [ $n -lt 50 ]; do n=$((n + 1)); sleep 0.1; done
$C task rm -f k1 >/dev/null 2>&1
$C containers rm k1 || { echo "ctr containers rm k1 failed"; exit 1; }
$C containers restore --live --rw k1 criu/k1:ckpt >$D/restore.out 2>&1 &
n=0
while [ -z "$(task_pid k1)" ]; do
  n=$((n + 1)); [ $n -gt 150 ] && { echo "ctr containers restore: no running task:"; cat $D/restore.out; tail -n 5 $D/containerd.log; exit 1; }
  sleep 0.1
done
# A restarted counter would write 1, 2, 3...: no value below the one at the checkpoint.
for _ in 1 2 3 4 5; do
  c=$(kcount k1); [ "$c" -gt 0 ] && [ "$c" -lt "$before" ] && { echo "restored k1 counts $c < $before: restarted, not resumed"; exit 1; }
  sleep 0.1
done
wait_kcount k1 $((before + 1)) || exit 1
first=$(kcount k1)
if [ "$first" -le "$before" ] || [ "$first" -gt $((before + 100)) ]; then
  echo "restored k1 counts $first, checkpointed after $before: not resumed"; exit 1
fi
wait_kcount k1 $((first + 3)) || exit 1
echo "ctr containers restore --live: k1 resumed at $first (checkpointed after $before)"
$C task kill -s SIGKILL k1 2>/dev/null
n=0; while [ -n "$(task_pid k1)" ] && [ $n -lt 50 ]; do n=$((n + 1)); sleep 0.1; done
$C task rm -f k1 >/dev/null 2>&1
$C containers rm k1 >/dev/null 2>&1
left=$(vessel --root /run/containerd/runc/default list -q 2>/dev/null)
[ -z "$left" ] || { echo "vessel containers left under the shim's root: $left"; exit 1; }
echo "checkpoint and restore through containerd's shim work"
