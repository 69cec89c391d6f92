#!/bin/sh
# ctest vmharness.vmm_snapshot_cli: makes the tiny counting PVH kernel and,
# with prepare_linux.sh, the Linux guest (generic Debian kernel, initramfs,
# ext4 disk), then runs cli_in_l1.sh (which sources linux_in_l1.sh) in the VM
# harness. Usage: run_cli.sh VESSEL_BINARY [harness options]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
vessel=$1; shift
work=$(mktemp -d /tmp/vessel-snapshot-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/kernel" "$work/snapshot-linux"
python3 "$here/../make_tiny_pvh.py" "$work/kernel/count.elf" count 'start
'
curl=$(command -v curl) || { echo "curl is missing on the host"; exit 77; }
for tool in mkfs.ext4 e2fsck qemu-img modprobe depmod; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool missing (apt-get install e2fsprogs qemu-utils kmod)"; exit 77; }
done
linux="--extra $work/linux"
rc=0; "$here/prepare_linux.sh" "$work/linux" || rc=$?
if [ $rc = 77 ]; then echo "NOTE: the Linux guest part is skipped (see above)"; linux=; elif [ $rc != 0 ]; then exit $rc; fi
cp "$here/linux_in_l1.sh" "$work/snapshot-linux/"
# tun.ko of the L1 kernel (the harness's default, Debian's cloud kernel).
. "$(dirname "$0")/../../../vmharness/kernel.sh"
l1kver=$HARNESS_KVER
cp "/lib/modules/$l1kver/kernel/drivers/net/tun.ko" "$work/snapshot-linux/" 2>/dev/null || true
# shellcheck disable=SC2086
exec "$here/../../../vmharness/harness.sh" run --vessel "$vessel" --payload "$here/cli_in_l1.sh" \
  --extra "$work/kernel" $linux --extra "$work/snapshot-linux" \
  --bin "$curl" --bin "$(command -v e2fsck)" --bin "$(command -v qemu-img)" "$@"
