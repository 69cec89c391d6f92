#!/bin/sh
# Shared by the boot checks (run inside the harness's L1): boots the Debian kernel
# KERNEL with the harness's busybox guest initramfs under `vessel vm run` and checks
# that the guest came up with CPUS vCPUs and that poweroff ended the VMM with exit 0.
#   boot_check.sh KERNEL CPUS
# BOOT_TIMEOUT (seconds a boot, default 90; an idle boot takes ~8 s): many vCPUs under
# the harness's TCG L1 take longer.
# Under TCG a nested guest very rarely hangs in early boot (about 1 in 20 boots in a
# loaded CI run, never in 30 idle boots): a boot that timed out before the guest's marker
# is booted once more, without `quiet` so that a second hang shows where it stopped, with
# a note and the first console's tail. Likewise a boot whose vCPU shut down (triple
# fault) before the guest's marker: the L1's nested SVM now and then shuts a running L2
# guest down without any guest exception (tests/vmharness/README.md; the registers are the
# INIT state KVM reset it to). A boot that ended otherwise is judged at once.
kernel=$1
cpus=$2
out=/tmp/vm-$$.log
now() { cut -d' ' -f1 /proc/uptime; }
for attempt in 1 2; do
  quiet=quiet
  [ "$attempt" = 2 ] && quiet=
  s=$(now)
  timeout "${BOOT_TIMEOUT:-90}" vessel vm run --kernel "$kernel" --initrd /guest/initrd.cpio --cpus "$cpus" --memory 256M \
    --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init $quiet" --serial "file:$out" </dev/null 2>"$out.err"
  rc=$?
  cat "$out.err" >&2
  secs=$(awk -v s="$s" -v e="$(now)" 'BEGIN { print e - s }')
  echo "vessel vm run exited $rc after $secs s"
  # busybox timeout's SIGTERM ends vm run cleanly (exit 0): a hang is told by the time.
  hung=$(awk -v t="$secs" -v m="${BOOT_TIMEOUT:-90}" 'BEGIN { print (t >= m - 1) ? 1 : 0 }')
  shut=0
  [ "$rc" != 0 ] && grep -q "triple fault" "$out.err" && shut=1
  [ "$attempt" = 1 ] && { [ "$hung" = 1 ] || [ "$shut" = 1 ]; } && ! grep -q "VESSEL-GUEST-UP" "$out" || break
  what="hung"; [ "$shut" = 1 ] && what="shut down (triple fault)"
  echo "VESSEL-NOTE the guest $what before VESSEL-GUEST-UP (console tail: $(tail -c 400 "$out" | tr '\n' '|')); booting it again"
done
tail -n 5 "$out"
grep -q "VESSEL-GUEST-UP cpus=$cpus " "$out" || { echo "guest marker with cpus=$cpus not seen"; tail -n 30 "$out"; exit 1; }
[ "$rc" -eq 0 ] || { echo "expected exit 0 after poweroff"; exit 1; }
