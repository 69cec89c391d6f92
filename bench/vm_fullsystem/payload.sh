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
# L1's counters of huge-page allocation and compaction (/proc/vmstat), as "name=value" words.
vmstat() { awk '$1 ~ /^(compact_stall|thp_fault_alloc|thp_fault_fallback|thp_file_alloc|thp_file_fallback)$/ {printf "%s=%s ", $1, $2}' /proc/vmstat; }
# Each boot's deltas of those counters, appended to its BOOT line.
vmstat_delta() { for kv in $2; do k=${kv%%=*}; b=$(echo " $1" | sed -n "s/.* $k=\([0-9]*\).*/\1/p"); printf '%s=%s ' "$k" $((${kv#*=} - ${b:-0})); done; }
# FS_COMPACT=1 (default): L1 compacts its memory before every boot, so each VMM finds its
# RAM's 2 MiB pages free instead of paying for direct compaction inside its boot (the
# first boot of a run found L1's memory unfragmented and started its kernel up to ~50 s
# sooner). L1 is the bench's own machine; both VMMs get the same.
# FS_DROP_CACHES=1: L1 also writes back and drops its page cache first (the previous
# boot's disk writes), to see whether that is what scatters the time before the guest's clock.
# FS_SCRUB=1 (default): first L1 zeroes nearly all its free memory (scrub.c says why:
# pages that held the previous guest's code are slow to zero under TCG).
compact() {
  if [ "${FS_DROP_CACHES:-0}" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
  if [ "${FS_SCRUB:-1}" = 1 ]; then scrub; fi
  [ "${FS_COMPACT:-1}" = 1 ] && [ -w /proc/sys/vm/compact_memory ] && echo 1 >/proc/sys/vm/compact_memory; return 0
}
i=0
while [ "$i" -lt "$runs" ]; do
  order="vessel qemu"; [ $((i % 2)) = 1 ] && order="qemu vessel"
  for vmm in $order; do
    compact; v0=$(vmstat)
    if [ $vmm = vessel ]; then fs_vessel /tmp/b.log "$cpus" /dev/vda poweroff
    else fs_qemu /tmp/b.log "$cpus" /dev/vda poweroff; fi
    dv=$(vmstat_delta "$v0" "$(vmstat)")
    up=$(tr -d '\r' </tmp/b.log | sed -n 's/^FS-MARKER multi-user uptime=//p')
    kern=$(tr -d "\r" </tmp/b.log | sed -n "s/^FS-TIMING kernel_s=\([0-9.]*\).*/\1/p")
    user=$(tr -d "\r" </tmp/b.log | sed -n "s/^FS-TIMING .*userspace_s=\([0-9.]*\).*/\1/p")
    echo "BOOT vmm=$vmm run=$i rc=$fs_rc marker_ms=$fs_marker_ms exit_ms=$fs_end_ms guest_uptime_s=${up:-none} kernel_s=${kern:-none} userspace_s=${user:-none} $dv"
    [ -s /tmp/b.log.kvm ] && echo "KVMSTATS vmm=$vmm run=$i $(cat /tmp/b.log.kvm)" && rm -f /tmp/b.log.kvm
    { [ "$up" ] && [ "$fs_rc" = 0 ]; } || tr -d '\r' </tmp/b.log | tail -n 20
  done
  i=$((i + 1))
done
