#!/bin/bash
# ctest wrapper: builds the overcommit test's guest initramfs and vsock client on the
# host, then runs payload.sh in the VM harness (/extra/overcommit in L1).
#   run_harness.sh VESSEL_BINARY [--density|--density-full] [harness options...]
# --density runs density.sh (overcommit of a 2 GiB L1, KSM: the ctest vmharness.vmm_density)
# instead of payload.sh; --density-full also runs its run B (no reporting: L1 runs out of
# memory; measured, not asserted; by hand only, ~15 min). Both allow guests lost to a
# spurious shutdown of the L1's nested SVM in early boot (started once more, up to three guests
# a run: one run lost two of its eleven boots so; see density.sh); payload.sh runs a run
# whose guest was lost so once more (one such loss allowed; see payload.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
payload=payload.sh full=(--env OC_SPURIOUS_SHUTDOWNS=1)
case ${1:-} in
  --density) payload=density.sh full=(--env DENSITY_SPURIOUS_SHUTDOWNS=3); shift ;;
  --density-full) payload=density.sh full=(--env DENSITY_FULL=1 --env DENSITY_SPURIOUS_SHUTDOWNS=3); shift ;;
esac
command -v gcc >/dev/null || { echo "SKIP: gcc missing (builds the static vsock test client)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/prepare.sh" "$tmp/overcommit" >/dev/null
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/$payload" \
  --extra "$tmp/overcommit" --env OC_DIR=/extra/overcommit "${full[@]}" "$@"
