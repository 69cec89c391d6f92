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

# What every process is doing, for a payload that ran out of time: one line a process
# (state, kernel wait channel, CPU ticks), and for vessel's and the tests' own processes
# (and QEMU's) every thread with the top of its kernel stack. Bounded: a line a process,
# 6 stack lines a thread, at most 40 threads a process.
dump_tasks() {
  echo "VESSEL-HARNESS-STUCK: the payload ran for ${timeout}s; what each process was doing:"
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    args=$(tr '\0' ' ' < "$d/cmdline" 2>/dev/null | head -c 160)
    [ -n "$args" ] || continue  # kernel threads
    st=$(cat "$d/stat" 2>/dev/null) || continue
    comm=$(cat "$d/comm" 2>/dev/null)
    echo "  pid $p ($comm) state $(echo "$st" | cut -d' ' -f3) wchan $(cat "$d/wchan" 2>/dev/null)" \
      "ticks $(echo "$st" | cut -d' ' -f14) args: $args"
    case "$comm" in
      vessel*|qemu*|*test*)
        n=0
        for t in "$d"/task/*; do
          n=$((n + 1)); [ $n -gt 40 ] && { echo "    (more threads)"; break; }
          echo "    thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)) state $(cut -d' ' -f3 "$t/stat" 2>/dev/null)" \
            "ticks $(cut -d' ' -f14 "$t/stat" 2>/dev/null) wchan $(cat "$t/wchan" 2>/dev/null)"
          head -n 6 "$t/stack" 2>/dev/null | sed 's/^/      /'
        done ;;
    esac
  done
  echo "VESSEL-HARNESS-STUCK: kernel log tail:"
  dmesg 2>/dev/null | tail -n 15
}

# Heartbeat on COM2: harness.sh watches it to tell an L1 that stopped running its
# processes (wedged) from a payload that is only slow.
if [ -c /dev/ttyS1 ]; then
  ( while cut -d' ' -f1 /proc/uptime >/dev/ttyS1 2>/dev/null; do sleep 5; done ) </dev/null &
fi

timeout=$(cmdline_arg timeout 0)
cd /
if [ "$timeout" -gt 0 ] 2>/dev/null; then
  # The payload keeps the console as its stdin (an asynchronous command would get /dev/null).
  exec 3<&0
  /bin/sh /payload.sh <&3 3<&- &
  payload=$!
  (
    sleep "$timeout"
    kill -0 "$payload" 2>/dev/null || exit 0
    dump_tasks
    kill -KILL "$payload"
  ) 3<&- &
  watchdog=$!
  wait "$payload"
  rc=$?
  kill "$watchdog" 2>/dev/null
  exec 3<&-
  # A payload killed by the watchdog (128+9) timed out.
  [ "$rc" -eq 137 ] && rc=124
else
  /bin/sh /payload.sh
  rc=$?
fi
sync
echo "VESSEL-HARNESS-RC=$rc"
poweroff -f
sleep 5
reboot -f
