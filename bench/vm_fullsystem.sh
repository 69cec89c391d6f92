#!/bin/bash
# Full-system boot, side by side: in the VM harness (nested KVM), the Debian 12 image of
# vmharness.vmm_fullsystem (tests/integration/vmm/fullsystem/build_image.sh: systemd,
# root on virtio-blk) booted to its multi-user marker and to power-off by `vessel vm run`
# and by QEMU microvm (-accel kvm), interleaved, RUNS times each, CPUS vCPUs, after one
# unmeasured warm-up boot.
# Prints the medians and the ratios vessel/QEMU; writes bench/results/vm_fullsystem.*
# (csv: every boot; md: medians; png: plot).   Run as root (the image build needs it).
#   bench/vm_fullsystem.sh [VESSEL_BINARY] [RUNS] [CPUS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fs=$here/../tests/integration/vmm/fullsystem
vessel=${1:-$here/../build/vessel}
runs=${2:-5} cpus=${3:-1}
img=$("$fs/build_image.sh")
out=$(mktemp) tools=$(mktemp -d)
trap 'rm -rf "$out" "$tools"' EXIT
gcc -O2 -static -o "$tools/scrub" "$here/vm_fullsystem/scrub.c"
"$here/../tests/vmharness/harness.sh" run --vessel "$vessel" --payload "$here/vm_fullsystem/payload.sh" \
  --extra "$fs" --disk "$img/rootfs.raw" --file "$img/initrd.cpio.gz:/fs/initrd.cpio.gz" \
  --bin /usr/bin/qemu-system-x86_64 --bin "$tools/scrub" --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin \
  --file /usr/share/qemu/linuxboot_dma.bin:/usr/share/qemu/linuxboot_dma.bin \
  --env RUNS="$runs" --env CPUS="$cpus" --env FS_DROP_CACHES="${FS_DROP_CACHES:-0}" --env FS_SCRUB="${FS_SCRUB:-1}" --env FS_KVM_STATS="${FS_KVM_STATS:-}" --timeout $(((runs * 2 + 1) * 400 + 60)) --log "$out" >/dev/null || true
grep '^BOOT' "$out" || { echo "no BOOT lines; console tail:"; tail -n 40 "$out"; exit 1; }
cp "$out" "${VESSEL_BENCH_LOG:-/tmp/vm_fullsystem.log}"
cd "$here" && python3 vm_fullsystem.py "$out" "$runs" "$cpus"
