#!/bin/sh
# L1 side of bench/overcommit_compare.sh (runs as the harness payload): the same
# inner guest (Debian kernel, tests/integration/vmm/overcommit initramfs in
# oc_mode=bench) under vessel and under QEMU microvm, alternating
# vessel, QEMU, vessel, QEMU, each 512 MiB with a virtio-balloon (free page
# reporting on) and virtio-vsock (vessel's Firecracker-style unix socket;
# QEMU's vhost-vsock). Per run it prints "BENCH <metric> <value> <unit>":
#   vsock-throughput   64 MiB echoed through one connection (MiB/s, both ways)
#   vsock-connect      1000 connections, 1 byte echoed each (connections/s)
#   reporting-return   MiB/s the VMM's RSS falls after the guest frees 400 MiB
#                      (from the guest's "freed" to 300 MiB returned; Linux
#                      reports free pages after a 2 s delay, counted in)
#   inflate            MiB/s while the balloon goes from 0 to 256 MiB
D=${OC_DIR:-/extra/overcommit}
K=$( [ -f /guest/vmlinuz ] && echo /guest/vmlinuz || echo /vmlinuz )
E=$D/vsock_echo
W=/tmp/ob; mkdir -p $W
for m in vhost_iotlb vhost vsock vmw_vsock_virtio_transport_common vhost_vsock; do
  insmod /extra/obench/mod/$m.ko || echo "BENCH-ERROR insmod $m failed"
done
[ -e /dev/vhost-vsock ] || echo "BENCH-ERROR no /dev/vhost-vsock in L1 (vhost_vsock did not load)"
CMD="console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4 oc_mode=bench oc_fill=400"
ms() { awk '{print int($1 * 1000)}' /proc/uptime; }
rss_kb() { awk '/^VmRSS:/ {print $2}' /proc/$1/status 2>/dev/null; }
wait_for() { _w=0; while [ $_w -lt $(($2 * 10)) ]; do grep -q "$1" "$3" 2>/dev/null && return 0; sleep 0.1; _w=$((_w + 1)); done; return 1; }  # _w: sh has no locals
rate() { [ "$2" -gt 0 ] && echo "BENCH $1 $(($3 * 1000 / $2)) $4"; }

# connect N BYTES: N connections into the guest's port 5000 (vmm-specific).
v_connect() { "$E" uds-connect $W/v.sock 5000 "$1" "$2" >/dev/null; }
q_connect() { "$E" connect 3 5000 "$1" "$2" >/dev/null; }
v_go() { "$E" uds-connect $W/v.sock 5001 1 0 >/dev/null 2>&1; }
q_go() { "$E" connect 3 5001 1 0 >/dev/null 2>&1; }
v_actual_mib() { vessel --root $W/root vm balloon ob | sed -n 's/.*"actual_mib": \([0-9]*\).*/\1/p' | head -n 1; }
q_actual_mib() { echo $((512 - $("$E" qmp $W/qmp.sock '{"execute":"qmp_capabilities"}' '{"execute":"query-balloon"}' | sed -n 's/.*"actual": \([0-9]*\).*/\1/p' | tail -n 1) / 1048576)); }
v_inflate() { vessel --root $W/root vm balloon ob --target 256M; }
q_inflate() { "$E" qmp $W/qmp.sock '{"execute":"qmp_capabilities"}' "{\"execute\":\"balloon\",\"arguments\":{\"value\":$((256 << 20))}}" >/dev/null; }

run() {  # run vessel|qemu
  vmm=$1; p=$(echo $1 | cut -c1); rm -f $W/*.sock $W/log
  echo "BENCH-VMM $vmm"
  if [ $vmm = vessel ]; then
    vessel --root $W/root vm run -d --name ob --kernel $K --initrd $D/inner.cpio.gz --memory 512M --cpus 1 \
      --serial file:$W/log --balloon 0,reporting,stats=1 --vsock cid=3,uds=$W/v.sock --cmdline "$CMD" || return
    pid=$(vessel --root $W/root vm state ob | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
  else
    /extra/qemu/lib/ld-linux-x86-64.so.2 --library-path /extra/qemu/lib /extra/qemu/qemu-system-x86_64 -L /extra/qemu/share \
      -accel kvm -cpu host -M microvm -m 512M -smp 1 -nodefaults -no-user-config -nographic -no-reboot \
      -serial file:$W/log -qmp unix:$W/qmp.sock,server=on,wait=off -kernel $K -initrd $D/inner.cpio.gz -append "$CMD" \
      -device virtio-balloon-device,free-page-reporting=on -device vhost-vsock-device,guest-cid=3 </dev/null &
    pid=$!
  fi
  wait_for GUEST-READY 300 $W/log || { echo "BENCH-ERROR $vmm guest not ready"; tail -5 $W/log; }
  # The guest prints GUEST-READY as it starts its listener: wait until a connection
  # is echoed (at most 10 tries) before timing anything.
  n=0; until ${p}_connect 1 1 2>/dev/null || [ $n -ge 10 ]; do sleep 1; n=$((n + 1)); done
  # A rate is printed only for a step that succeeded.
  t0=$(ms); if ${p}_connect 1 67108864; then rate vsock-throughput $(($(ms) - t0)) 64 MiB/s; else echo "BENCH-ERROR $vmm vsock 64 MiB"; fi
  t0=$(ms); if ${p}_connect 1000 1; then rate vsock-connect $(($(ms) - t0)) 1000 conn/s; else echo "BENCH-ERROR $vmm vsock connections"; fi
  ${p}_go; wait_for GUEST-FILLED 300 $W/log; sleep 2; filled=$(rss_kb $pid)
  wait_for GUEST-FREED 60 $W/log; t0=$(ms); t=-1
  while [ $(($(ms) - t0)) -lt 30000 ]; do
    r=$(rss_kb $pid); [ -n "$r" ] && [ $((filled - r)) -ge $((300 << 10)) ] && { t=$(($(ms) - t0)); break; }; sleep 0.05
  done
  [ $t -gt 0 ] && rate reporting-return $t 300 MiB/s || echo "BENCH-ERROR $vmm RSS did not fall by 300 MiB (filled $filled kB, now $(rss_kb $pid) kB)"
  t0=$(ms); ${p}_inflate; t=-1
  while [ $(($(ms) - t0)) -lt 120000 ]; do [ "$(${p}_actual_mib)" = 256 ] && { t=$(($(ms) - t0)); break; }; sleep 0.05; done
  [ $t -gt 0 ] && rate inflate $t 256 MiB/s || echo "BENCH-ERROR $vmm balloon did not reach 256 MiB"
  if [ $vmm = vessel ]; then vessel --root $W/root vm delete --force ob; else kill $pid; wait $pid 2>/dev/null; fi
}
for round in 1 2; do run vessel; run qemu; done
