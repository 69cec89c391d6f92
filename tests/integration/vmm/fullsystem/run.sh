#!/usr/bin/env bash
# ctest vmharness.vmm_fullsystem: builds (or takes from the cache) the Debian 12 image
# (build_image.sh; exit 77 with the reason when it cannot be built, e.g. no apt access)
# and runs payload.sh in the VM harness, the raw and qcow2 images as L1's /dev/vda and
# /dev/vdb and the raw image once more as /dev/vdc for QEMU's reference boot (each with
# its own copy-on-write overlay: the three boots run side by side).
#   run.sh VESSEL [harness.sh options...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../../.." && pwd)
vessel=$1; shift
. "$(dirname "$0")/../../../vmharness/kernel.sh"
KERNEL=$VESSEL_HARNESS_KERNEL
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
# A missing prerequisite skips (exit 77), or fails with VESSEL_HARNESS_REQUIRE=1 (CI).
skip() {
  [[ ${VESSEL_HARNESS_REQUIRE:-0} == 1 ]] && { echo "error: $* (VESSEL_HARNESS_REQUIRE=1)"; exit 1; }
  echo "SKIP: $*"; exit 77
}
QEMU=$(command -v qemu-system-x86_64 || true)
[[ -n $QEMU ]] || skip "qemu-system-x86_64 not found (the reference boot needs it)"
tun=$(find "/lib/modules/$KVER" -name tun.ko -print -quit)
[[ -n $tun ]] || skip "tun.ko of $KVER not found"
# Exit 77 when the Debian mirror cannot be reached (the image cannot be built: skipped).
t0=$SECONDS
rc=0; img=$("$HERE/build_image.sh" "$KERNEL") || rc=$?
[[ $rc == 0 ]] || exit "$rc"
echo "fullsystem: image $img ready after $((SECONDS - t0)) s ($(tail -n 1 "$img/info"))"
exec "$ROOT/tests/vmharness/harness.sh" run --vessel "$vessel" --payload "$HERE/payload.sh" \
  --extra "$HERE" --disk "$img/rootfs.raw" --disk "$img/rootfs.qcow2" --disk "$img/rootfs.raw" \
  --file "$img/initrd.cpio.gz:/fs/initrd.cpio.gz" --file "$tun:/fs/tun.ko" \
  --bin "$QEMU" --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin \
  --file /usr/share/qemu/linuxboot_dma.bin:/usr/share/qemu/linuxboot_dma.bin \
  --timeout 900 "$@"
