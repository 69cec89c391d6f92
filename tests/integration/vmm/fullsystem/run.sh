#!/usr/bin/env bash
# ctest vmharness.vmm_fullsystem: builds (or takes from the cache) the Debian 12 image
# (build_image.sh; exit 77 with the reason when it cannot be built, e.g. no apt access)
# and runs payload.sh in the VM harness, the raw and qcow2 images as L1's /dev/vda and
# /dev/vdb, with QEMU for the reference boot.
#   run.sh VESSEL [harness.sh options...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
vessel=$1; shift
KERNEL=${VESSEL_HARNESS_KERNEL:-/boot/vmlinuz-6.1.0-56-cloud-amd64}
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
QEMU=$(command -v qemu-system-x86_64 || true)
[[ -n $QEMU ]] || { echo "SKIP: qemu-system-x86_64 not found (the reference boot needs it)"; exit 77; }
tun=$(find "/lib/modules/$KVER" -name tun.ko -print -quit)
[[ -n $tun ]] || { echo "SKIP: tun.ko of $KVER not found"; exit 77; }
rc=0; img=$("$HERE/build_image.sh" "$KERNEL") || rc=$?
[[ $rc == 0 ]] || exit "$rc"
exec "$ROOT/tests/vmharness/harness.sh" run --vessel "$vessel" --payload "$HERE/payload.sh" \
  --extra "$HERE" --disk "$img/rootfs.raw" --disk "$img/rootfs.qcow2" \
  --file "$img/initrd.cpio.gz:/fs/initrd.cpio.gz" --file "$tun:/fs/tun.ko" \
  --bin "$QEMU" --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin \
  --file /usr/share/qemu/linuxboot_dma.bin:/usr/share/qemu/linuxboot_dma.bin \
  --timeout 1200 "$@"
