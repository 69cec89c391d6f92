# lib.sh: sourced (busybox sh, in L1) by payload.sh and bench/vm_fullsystem/payload.sh.
# Boots the full-system guest (build_image.sh) under `vessel vm run` or QEMU/KVM with
# the same kernel (/guest/vmlinuz), initrd (/fs/initrd.cpio.gz), disk and command line.
# The disks come from harness.sh --disk: /dev/vda the raw image, /dev/vdb the qcow2 one
# (vmharness.vmm_fullsystem adds /dev/vdc, the raw image once more, for QEMU's boot).
# Boots may run side by side (in the background, each with its own LOG and disk): every
# result is in LOG (the console, then FS-VMM-RC) and LOG.t, read back by fs_result.
FS_INITRD=/fs/initrd.cpio.gz
FS_CMDLINE="console=ttyS0 root=/dev/vda rw quiet panic=-1 pci=off"
FS_MEM=384
# Seconds a boot may take until the VMM exits: by default what the harness gives the
# payload (vessel.timeout= on L1's command line) less 60 s to report, else 600.
fs_default_timeout() {
  for w in $(cat /proc/cmdline); do
    case $w in vessel.timeout=*) t=${w#*=}; [ "$t" -gt 120 ] 2>/dev/null && { echo $((t - 60)); return; } ;; esac
  done
  echo 600
}
FS_BOOT_TIMEOUT=${FS_BOOT_TIMEOUT:-$(fs_default_timeout)}

# Milliseconds since L1's boot (/proc/uptime has 10 ms steps).
fs_now() { read -r u _ </proc/uptime; echo $(( ${u%.*} * 1000 + (1${u#*.} - 100) * 10 )); }

# fs_watch LOG: copies stdin to LOG (and to stdout as "L2| line" unless FS_QUIET is set:
# L1's console is slow, ~1 KB/s; then only "LOG: marker after N ms") and writes the time
# of the first FS-MARKER and the end of the output to LOG.t (marker_ms end_ms, relative
# to $fs_t0).
fs_watch() {
  mark=-1
  while IFS= read -r l; do
    # The guest's lines start with FS-, but the serial getty's login prompt (no newline)
    # may stand before one: keep the FS- line only.
    case $l in ?*FS-[A-Z]*) l="FS-${l#*FS-}" ;; esac
    echo "$l" >>"$1"
    [ -n "${FS_QUIET:-}" ] || echo "L2| $l"
    case $l in *FS-MARKER*)
      if [ "$mark" = -1 ]; then
        mark=$(( $(fs_now) - fs_t0 ))
        [ -z "${FS_QUIET:-}" ] || echo "${1##*/}: marker after $mark ms"
        [ -z "${FS_KVM_STATS:-}" ] || fs_kvm_stats >"$1.kvm"
      fi ;;
    esac
  done
  echo "$mark $(( $(fs_now) - fs_t0 ))" >"$1.t"
}

# fs_kvm_stats: L1's KVM counters of the one VM running now (debugfs: exits, io_exits,
# mmio_exits, halt_exits, irq_injections, ...; the VM's directory sums its vCPUs), as
# "name=value" words. FS_KVM_STATS=1 takes them at the marker into LOG.kvm: they are
# the kernel's, so they count the same for vessel and QEMU.
fs_kvm_stats() {
  for f in /sys/kernel/debug/kvm/*-*/*; do
    [ -f "$f" ] && read -r v <"$f" 2>/dev/null && printf '%s=%s ' "${f##*/}" "$v"
  done
  echo
}

# fs_vessel LOG CPUS DISK MODE [vessel vm run options...]: boots the guest under vessel
# (MODE poweroff or reboot), console to LOG; sets fs_rc (vessel's exit code), fs_marker_ms,
# fs_end_ms (from the start of the VMM to the marker and to its exit).
fs_vessel() {
  log=$1 cpus=$2 disk=$3 mode=$4; shift 4
  : >"$log"
  fs_t0=$(fs_now)
  { timeout -s KILL "$FS_BOOT_TIMEOUT" vessel vm run --kernel /guest/vmlinuz --initrd $FS_INITRD \
      --memory ${FS_MEM}M --cpus "$cpus" --disk "$disk" "$@" \
      --cmdline "$FS_CMDLINE vessel.fs=$mode" </dev/null 2>&1; echo "FS-VMM-RC $?"; } | fs_watch "$log"
  fs_result "$log"
}

# fs_qemu LOG CPUS DISK MODE: the same under QEMU microvm with KVM (-no-reboot: a reboot
# ends QEMU with exit 0).
fs_qemu() {
  log=$1 cpus=$2 disk=$3 mode=$4
  : >"$log"
  fs_t0=$(fs_now)
  { timeout -s KILL "$FS_BOOT_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host \
      -M microvm,rtc=on,auto-kernel-cmdline=off -m $FS_MEM -smp "$cpus" \
      -nodefaults -no-user-config -nographic -serial stdio -monitor none -no-reboot \
      -bios /usr/share/qemu/bios-microvm.bin -kernel /guest/vmlinuz -initrd $FS_INITRD \
      -drive "file=$disk,if=none,id=d0,format=raw" -device virtio-blk-device,drive=d0 \
      -append "$FS_CMDLINE vessel.fs=$mode" </dev/null 2>&1; echo "FS-VMM-RC $?"; } | fs_watch "$log"
  fs_result "$log"
}

# fs_result LOG: sets fs_rc, fs_marker_ms and fs_end_ms of the boot that wrote LOG.
fs_result() {
  fs_rc=$(tr -d '\r' <"$1" | sed -n 's/^FS-VMM-RC //p' | tail -n 1)
  fs_marker_ms=-1 fs_end_ms=-1
  [ -f "$1.t" ] && read -r fs_marker_ms fs_end_ms <"$1.t"
  return 0
}
