#!/bin/sh
# Runs inside the VM harness's L1 (bench/vm_fullsystem.sh): boots the Debian 12
# full-system image (tests/integration/vmm/fullsystem) to its multi-user marker and
# power-off, alternately with `vessel vm run` and QEMU microvm (-accel kvm), the same
# kernel, initrd, raw disk (/dev/vda), command line, CPUS vCPUs, RUNS times each (the
# order flips every round). Prints one BOOT line per boot, and vessel's vCPU exits by
# reason (VESSEL_STATS=1: vessel runs detached and `vm state --stats` is read at the marker).
FS_BOOT_TIMEOUT=${FS_BOOT_TIMEOUT:-600}   # one boot (lib.sh's default: the whole payload's time)
FS_QUIET=1   # consoles to the log only: L1's slow console must not hold the guests back
. /extra/fullsystem/lib.sh
runs=${RUNS:-5} cpus=${CPUS:-1}
# One unmeasured boot first (QEMU's): in the harness, the first VM that L1 boots starts its
# kernel ~50 s sooner than every later one, under either VMM (L1's memory then has held a
# guest: TCG's cost, not the VMM's), so no measured boot gets that head start.
fs_qemu /tmp/b.log "$cpus" /dev/vda poweroff
echo "WARMUP vmm=qemu rc=$fs_rc marker_ms=$fs_marker_ms exit_ms=$fs_end_ms (not measured)"
i=0
while [ "$i" -lt "$runs" ]; do
  order="vessel qemu"; [ $((i % 2)) = 1 ] && order="qemu vessel"
  for vmm in $order; do
    if [ $vmm = vessel ]; then fs_vessel /tmp/b.log "$cpus" /dev/vda poweroff
    else fs_qemu /tmp/b.log "$cpus" /dev/vda poweroff; fi
    up=$(tr -d '\r' </tmp/b.log | sed -n 's/^FS-MARKER multi-user uptime=//p')
    kern=$(tr -d "\r" </tmp/b.log | sed -n "s/^FS-TIMING kernel_s=\([0-9.]*\).*/\1/p")
    user=$(tr -d "\r" </tmp/b.log | sed -n "s/^FS-TIMING .*userspace_s=\([0-9.]*\).*/\1/p")
    echo "BOOT vmm=$vmm run=$i rc=$fs_rc marker_ms=$fs_marker_ms exit_ms=$fs_end_ms guest_uptime_s=${up:-none} kernel_s=${kern:-none} userspace_s=${user:-none}"
    [ "$up" ] || tr -d '\r' </tmp/b.log | tail -n 20
  done
  i=$((i + 1))
done
