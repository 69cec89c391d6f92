#!/bin/bash
# ctest vmharness.vmm_migration: builds the L2 guest's initramfs (busybox +
# guest_payload.sh), then runs payload.sh in the VM harness.
#   run_harness.sh VESSEL_BINARY [harness options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
tmp=$(mktemp -d /tmp/vessel-migration.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/migration"
# The guest's virtio-blk (the --copy-disks check): the harness kernel's modules.
. "$here/../../../vmharness/kernel.sh"
mods=()
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_mmio drivers/block/virtio_blk; do
  f=/lib/modules/$HARNESS_KVER/kernel/$m.ko
  [[ -f $f ]] && mods+=(--add "$f:/mod/${m##*/}.ko")
done
"$here/../../../vmharness/guest-initramfs.sh" --add "$here/guest_payload.sh:/guest-payload.sh" "${mods[@]}" \
  "$tmp/migration/guest.cpio" >/dev/null || exit 77
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/payload.sh" \
  --extra "$tmp/migration" "$@"
