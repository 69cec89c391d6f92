#!/bin/busybox sh
# /init of the L1 test host booted by harness.sh (runs as PID 1 under busybox sh).
#
# Sets up a pure cgroup v2 host with real (nested SVM) KVM, runs /payload.sh under a
# timeout and reports on the console, one marker per line:
#   VESSEL-HARNESS-KVM=yes|no    /dev/kvm exists after loading the kvm modules
#   VESSEL-HARNESS-RC=<n>        exit code of the payload (124: the payload timed out)
# then powers the machine off. Never exits (PID 1 exiting panics the kernel); every
# step is allowed to fail so the RC marker is always printed.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb VESSEL_HARNESS=1
umask 022

log() { echo "harness-init: $*"; }

# Reads "vessel.<key>=<value>" from the kernel command line (the last one wins, so
# harness.sh --append can override); prints the value or $2.
cmdline_arg() {
  value=$2
  for word in $(cat /proc/cmdline); do
    case "$word" in "vessel.$1="*) value=${word#*=} ;; esac
  done
  echo "$value"
}

mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev 2>/dev/null || log "mount devtmpfs failed"
exec </dev/console >/dev/console 2>&1
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t mqueue mqueue /dev/mqueue 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=755 tmpfs /run
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
# Stock distribution tools (and vessel itself) expect these standard links.
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
[ -e /dev/stdin ] || ln -s /proc/self/fd/0 /dev/stdin
[ -e /dev/stdout ] || ln -s /proc/self/fd/1 /dev/stdout
[ -e /dev/stderr ] || ln -s /proc/self/fd/2 /dev/stderr

# Pure cgroup v2: the kernel is booted with cgroup_no_v1=all, so every controller is
# available in the unified hierarchy; delegate all of them to child cgroups.
mkdir -p /sys/fs/cgroup
if mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup; then
  for c in $(cat /sys/fs/cgroup/cgroup.controllers); do
    echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || log "cannot enable cgroup controller $c"
  done
else
  log "mount cgroup2 failed"
fi

hostname vessel-l1
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up

# KVM: nested SVM, offered by QEMU TCG with -cpu max.
for m in irqbypass kvm kvm-amd; do
  insmod "/harness/modules/$m.ko" || log "insmod $m failed"
done
# harness.sh --disk: the virtio-blk modules (their file names give the order).
for m in /harness/disk-modules/*.ko; do
  [ -f "$m" ] && { insmod "$m" || log "insmod $m failed"; }
done
if [ -c /dev/kvm ]; then
  chmod 666 /dev/kvm
  echo "VESSEL-HARNESS-KVM=yes"
else
  echo "VESSEL-HARNESS-KVM=no"
fi

[ -f /harness/env ] && . /harness/env

timeout=$(cmdline_arg timeout 0)
cd /
if [ "$timeout" -gt 0 ] 2>/dev/null; then
  timeout -s KILL "$timeout" /bin/sh /payload.sh
else
  /bin/sh /payload.sh
fi
rc=$?
# busybox timeout reports a killed payload as 128+9; report it as a timeout.
[ "$rc" -eq 137 ] && [ "$timeout" -gt 0 ] && rc=124
sync
echo "VESSEL-HARNESS-RC=$rc"
poweroff -f
sleep 5
reboot -f
