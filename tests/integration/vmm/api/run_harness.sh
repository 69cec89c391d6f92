#!/bin/bash
# ctest wrapper: prepares the guest's initramfs and drives on the host, then runs
# payload.sh in the VM harness (/extra/api in L1) with curl and debugfs copied in.
#   run_harness.sh VESSEL_BINARY [harness options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
for tool in curl mkfs.ext4 debugfs cpio; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (apt-get install curl e2fsprogs cpio)"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/prepare.sh" "$tmp/api" >/dev/null
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/payload.sh" \
  --extra "$tmp/api" --env API_DIR=/extra/api \
  --bin "$(command -v curl)" --bin "$(command -v debugfs)" "$@"
