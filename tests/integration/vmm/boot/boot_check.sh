#!/bin/sh
# Shared by the boot checks (run inside the harness's L1): boots the Debian kernel
# KERNEL with the harness's busybox guest initramfs under `vessel vm run` and checks
# that the guest came up with CPUS vCPUs and that poweroff ended the VMM with exit 0.
#   boot_check.sh KERNEL CPUS
kernel=$1
cpus=$2
out=/tmp/vm-$$.log
timeout 200 vessel vm run --kernel "$kernel" --initrd /guest/initrd.cpio --cpus "$cpus" --memory 256M \
  --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init quiet" --serial "file:$out" </dev/null
rc=$?
echo "vessel vm run exited $rc"
tail -n 5 "$out"
grep -q "VESSEL-GUEST-UP cpus=$cpus " "$out" || { echo "guest marker with cpus=$cpus not seen"; exit 1; }
[ "$rc" -eq 0 ] || { echo "expected exit 0 after poweroff"; exit 1; }
