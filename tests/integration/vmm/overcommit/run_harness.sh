#!/bin/bash
# ctest wrapper: builds the overcommit test's guest initramfs and vsock client on the
# host, then runs payload.sh in the VM harness (/extra/overcommit in L1).
#   run_harness.sh VESSEL_BINARY [--density] [harness options...]
# --density runs density.sh (overcommit of a 2 GiB L1, KSM) instead of payload.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
payload=payload.sh
if [[ ${1:-} == --density ]]; then payload=density.sh; shift; fi
command -v gcc >/dev/null || { echo "SKIP: gcc missing (builds the static vsock test client)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/prepare.sh" "$tmp/overcommit" >/dev/null
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/$payload" \
  --extra "$tmp/overcommit" --env OC_DIR=/extra/overcommit "$@"
