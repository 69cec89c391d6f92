#!/bin/sh
# Shared by the boot checks (run inside the harness's L1): boots the Debian kernel
# KERNEL with the harness's busybox guest initramfs under `vessel vm run` and checks
# that the guest came up with CPUS vCPUs and that poweroff ended the VMM with exit 0.
#   boot_check.sh KERNEL CPUS
# BOOT_TIMEOUT (seconds, default 200): many vCPUs under the harness's TCG L1 take longer.
kernel=$1
cpus=$2
out=/tmp/vm-$$.log
s=$(cut -d' ' -f1 /proc/uptime)
timeout "${BOOT_TIMEOUT:-200}" vessel vm run --kernel "$kernel" --initrd /guest/initrd.cpio --cpus "$cpus" --memory 256M \
  --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init quiet" --serial "file:$out" </dev/null
rc=$?
echo "vessel vm run exited $rc after $(awk -v s="$s" -v e="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { print e - s }') s"
tail -n 5 "$out"
grep -q "VESSEL-GUEST-UP cpus=$cpus " "$out" || { echo "guest marker with cpus=$cpus not seen"; exit 1; }
[ "$rc" -eq 0 ] || { echo "expected exit 0 after poweroff"; exit 1; }
