#!/bin/bash
# ctest criu.host: `vessel checkpoint` / `vessel restore` on this host's own kernel.
#   host_test.sh VESSEL
# Where CRIU cannot run (CRIU 3.17 on the development host's 6.18 kernel: its kernel
# probe fails on the vDSO), both verbs must fail with one error that says so, leave the
# container running and make nothing (no state, cgroup, image); the test then skips (77)
# with the reason: checkpoint/restore itself is tested in the VM harness (vmharness.criu).
# Where CRIU can run, a sleeping container is checkpointed and restored here.
set -uo pipefail
vessel=${1:?usage: host_test.sh VESSEL}
vessel=$(readlink -f "$vessel")
skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root"
busybox=${BUSYBOX:-/bin/busybox}
[[ -x $busybox ]] || skip "$busybox (busybox-static) is missing"
tmp=$(mktemp -d /tmp/vessel-criu-host.XXXXXX)
root=$tmp/root
V=("$vessel" --root "$root")
cleanup() {
  "${V[@]}" delete --force criu-host1 >/dev/null 2>&1
  "${V[@]}" delete --force criu-host2 >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

mkdir -p "$tmp/b/rootfs/bin"
cp "$busybox" "$tmp/b/rootfs/bin/busybox"
ln -s busybox "$tmp/b/rootfs/bin/sh"
ln -s busybox "$tmp/b/rootfs/bin/sleep"
(cd "$tmp/b" && "$vessel" spec) || fail "vessel spec"
sed -i -e 's/"terminal": true/"terminal": false/' -e 's|^\( *\)"sh"$|\1"sleep", "1000"|' "$tmp/b/config.json"

criu=$(command -v criu || echo /usr/sbin/criu)
if [[ ! -x $criu ]]; then
  out=$("${V[@]}" checkpoint --image-path "$tmp/img" nosuch 2>&1) && fail "checkpoint without criu succeeded"
  skip "criu is not installed (apt-get install criu)"
fi
# Alone, not through vessel: what this kernel lets CRIU do.
criu_out=$("$criu" check 2>&1)
criu_rc=$?
"${V[@]}" run -d -b "$tmp/b" criu-host1 </dev/null >/dev/null 2>&1 || fail "vessel run criu-host1"
pid=$("${V[@]}" state criu-host1 | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
out=$("${V[@]}" checkpoint --image-path "$tmp/img" criu-host1 2>&1)
rc=$?
if [[ $criu_rc != 0 ]]; then
  why=$(grep -m1 Error <<<"$criu_out")
  [[ $rc != 0 ]] || fail "checkpoint succeeded although criu check fails here: $why"
  [[ $out == *"CRIU cannot run on this kernel"* ]] || fail "checkpoint error does not name the cause: $out"
  [[ $(grep -c . <<<"$out") == 1 ]] || fail "checkpoint printed more than one error line: $out"
  "${V[@]}" state criu-host1 | grep -q '"running"' || fail "criu-host1 not running after the refused checkpoint"
  [[ -d /proc/$pid ]] || fail "criu-host1's init $pid is gone after the refused checkpoint"
  [[ ! -e $tmp/img/descriptors.json ]] || fail "a failed checkpoint left descriptors.json (an image that is not one)"
  echo "checkpoint: $out"
  # restore gets as far as CRIU (an image directory with an inventory) and says the same.
  mkdir -p "$tmp/img2" && : >"$tmp/img2/inventory.img"
  out=$("${V[@]}" restore -d -b "$tmp/b" --image-path "$tmp/img2" criu-host2 2>&1 </dev/null)
  [[ $? != 0 ]] || fail "restore succeeded although criu check fails here"
  [[ $out == *"CRIU cannot run on this kernel"* ]] || fail "restore error does not name the cause: $out"
  echo "restore: $out"
  "${V[@]}" state criu-host2 >/dev/null 2>&1 && fail "a failed restore left the state of criu-host2"
  ls -d /sys/fs/cgroup/*/vessel/criu-host2* /sys/fs/cgroup/vessel/criu-host2* 2>/dev/null | grep -q . &&
    fail "a failed restore left a cgroup of criu-host2"
  grep -q "$root" /proc/mounts && fail "a failed restore left a mount under $root"
  "${V[@]}" delete --force criu-host1 || fail "delete criu-host1"
  skip "CRIU cannot run on this host's kernel ($(uname -r): $why); both verbs say so (checked). Checkpoint/restore runs in the VM harness: vmharness.criu"
fi
# CRIU works here: the container is dumped (and gone), then restored, and runs.
[[ $rc == 0 ]] || fail "checkpoint failed: $out"
"${V[@]}" state criu-host1 >/dev/null 2>&1 && fail "criu-host1 still exists after its checkpoint"
out=$("${V[@]}" restore -d -b "$tmp/b" --image-path "$tmp/img" criu-host1 2>&1 </dev/null) || fail "restore failed: $out"
"${V[@]}" state criu-host1 | grep -q '"running"' || fail "restored criu-host1 is not running"
"${V[@]}" delete --force criu-host1 || fail "delete of the restored criu-host1"
echo "PASS: checkpoint and restore on this host"
