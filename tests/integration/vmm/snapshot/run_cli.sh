#!/bin/sh
# ctest vmharness.vmm_snapshot_cli: makes the tiny counting PVH kernel, then
# runs cli_in_l1.sh in the VM harness. Usage: run_cli.sh VESSEL_BINARY [harness options]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
work=$(mktemp -d /tmp/vessel-snapshot-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernel"
python3 "$here/../make_tiny_pvh.py" "$work/kernel/count.elf" count 'start
'
curl=$(command -v curl) || { echo "curl is missing on the host"; exit 77; }
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/cli_in_l1.sh" \
  --extra "$work/kernel" --bin "$curl" "$@"
