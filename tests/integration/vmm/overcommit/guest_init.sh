#!/bin/busybox sh
# /init of the inner guest of the overcommit test (booted by `vessel vm run`
# inside L1). Kernel command line: oc_vsock=1 runs the vsock part.
#   vsock: echoes connections on port 5000 (the host connects through the VMM's
#     socket), waits for the host's "go" connection on port 5001, then connects
#     to the host's port 6000 twenty times and checks the echo.
#   memory: fills oc_fill MiB of tmpfs, frees it, waits (free page reporting gives
#     it back to the host, when the VMM offers it).
#   oc_mode=api: fill and free oc_fill MiB (no reporting: the VMM keeps it),
#     wait for the host's "go" on vsock port 5001 (it inflates and deflates the
#     balloon meanwhile, then leaves oc_oomfill MiB less than it needs), then
#     fill oc_oomfill MiB: deflate_on_oom must give the balloon's pages back.
#   oc_mode=seq: wait for "go" on port 5001, then fill and free oc_fill MiB.
#   oc_mode=idle: print GUEST-READY and wait (the KSM test).
#   oc_mode=bench: echo on vsock port 5000, wait for "go" on 5001, fill and
#     free oc_fill MiB, wait (bench/overcommit_l1.sh).
# Markers on the console: GUEST-MEMTOTAL <kB>, GUEST-READY, GUEST-FILLED,
# GUEST-FREED, "vsock_echo: N ok", GUEST-CHECK <name> PASS|FAIL, GUEST-DONE.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs -o size=90% tmpfs /tmp
check() { if [ "$2" = 0 ]; then echo "GUEST-CHECK $1 PASS"; else echo "GUEST-CHECK $1 FAIL"; fi; }
for m in virtio_ring virtio virtio_mmio virtio_balloon vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do
  insmod /mod/$m.ko 2>/dev/null || echo "insmod $m failed"
done
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p"; }
memtotal() { sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo; }
# A balloon given at boot inflates in steps: wait until MemTotal holds still for 3 s (at most 90 s).
prev=0; same=0; i=0
while [ $i -lt 90 ] && [ $same -lt 3 ]; do
  sleep 1; i=$((i + 1)); m=$(memtotal)
  if [ "$m" = "$prev" ]; then same=$((same + 1)); else same=0; prev=$m; fi
done
echo "GUEST-MEMTOTAL $(memtotal)"
check balloon-driver "$(ls /sys/bus/virtio/drivers/virtio_balloon/ | grep -q virtio; echo $?)"
mode=$(arg oc_mode)
fill() { dd if=/dev/zero of=/tmp/fill bs=1M count=$1 2>/dev/null; }
if [ "$mode" = idle ]; then
  echo GUEST-READY
  while :; do sleep 3600; done
fi
if [ "$mode" = bench ]; then
  vsock_echo listen 5000 &
  echo GUEST-READY
  vsock_echo wait 5001
  fill "$(arg oc_fill)"; echo GUEST-FILLED; rm /tmp/fill; echo GUEST-FREED
  while :; do sleep 3600; done
fi
if [ "$mode" = seq ]; then
  echo GUEST-READY
  vsock_echo wait 5001
  fill "$(arg oc_fill)"; check fill $?
  echo GUEST-FILLED; rm /tmp/fill; echo GUEST-FREED
  sleep 3600
fi
if [ "$mode" = api ]; then
  fill "$(arg oc_fill)"; echo GUEST-FILLED; rm /tmp/fill; echo GUEST-FREED
  vsock_echo wait 5001
  fill "$(arg oc_oomfill)"; rc=$?
  have=$(($(stat -c %s /tmp/fill) >> 20))
  echo "GUEST-OOMFILL $have MiB"
  check deflate-on-oom-fill "$([ $rc = 0 ] && [ "$have" = "$(arg oc_oomfill)" ]; echo $?)"
  rm /tmp/fill; echo GUEST-DONE
  poweroff -f
fi
if [ "$(arg oc_vsock)" = 1 ]; then
  vsock_echo listen 5000 &
  echo GUEST-READY
  vsock_echo wait 5001
  vsock_echo connect 2 6000 20 200000; check vsock-guest-to-host $?
fi
dd if=/dev/zero of=/tmp/fill bs=1M count=$(arg oc_fill) 2>/dev/null
echo GUEST-FILLED; sleep 4
rm /tmp/fill; echo GUEST-FREED
sleep 15   # page reporting runs about 2 s after pages are freed; the host measures meanwhile
echo GUEST-DONE
poweroff -f
