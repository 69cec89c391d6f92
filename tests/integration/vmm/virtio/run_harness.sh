#!/bin/bash
# ctest wrapper: prepares the disk images, guest initramfs and tools on the host,
# then runs payload.sh in the VM harness (the prepared directory is /extra/virtio in L1).
#   run_harness.sh VESSEL_BINARY [harness options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
for tool in qemu-img mkfs.ext4 debugfs; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (apt-get install qemu-utils e2fsprogs)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/prepare.sh" "$tmp/virtio" >/dev/null
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/payload.sh" \
  --extra "$tmp/virtio" --env VT_DIR=/extra/virtio "$@"
