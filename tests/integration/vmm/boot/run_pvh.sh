#!/bin/bash
# ctest wrapper: extracts the ELF vmlinux from the Debian bzImage, then runs the
# PVH boot check in the VM harness with it at /guest/vmlinux.
#   run_pvh.sh VESSEL_BINARY [harness options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
. "$(dirname "$0")/../../../vmharness/kernel.sh"
kernel=$VESSEL_HARNESS_KERNEL
[ -r "$kernel" ] || { echo "SKIP: no kernel at $kernel (apt-get install linux-image-cloud-amd64)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$here/../extract_vmlinux.py" "$kernel" "$tmp/vmlinux"
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/pvh" \
  --extra "$here" --file "$tmp/vmlinux:/guest/vmlinux" "$@"
