#!/bin/bash
# ctest wrapper: builds the overcommit test's guest initramfs and vsock client on the
# host, then runs payload.sh in the VM harness (/extra/overcommit in L1).
#   run_harness.sh VESSEL_BINARY [harness options...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
command -v gcc >/dev/null || { echo "SKIP: gcc missing (builds the static vsock test client)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/prepare.sh" "$tmp/overcommit" >/dev/null
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/payload.sh" \
  --extra "$tmp/overcommit" --env OC_DIR=/extra/overcommit "$@"
