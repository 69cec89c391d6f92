#!/bin/sh
# Runs payload.sh in L1 (QEMU-TCG with nested SVM), like ../nested_boot.sh,
# until the shared harness (tests/vmharness/harness.sh) is available:
#   tests/integration/vmm/virtio/run_nested.sh [VESSEL_BINARY] [--bench]
# Exit status 0 when every VESSEL-CHECK passed. Takes 2-8 minutes.
# tsc_early_khz: under load the TCG guest fails its PIT calibration of the TSC
# and then hangs calibrating the delay loop; a preset rate avoids that.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VESSEL=${1:-$HERE/../../../../build/vessel}; BENCH=${2:-}
. "$(dirname "$0")/../../../vmharness/kernel.sh"
KVER=$HARNESS_KVER
KERNEL=$VESSEL_HARNESS_KERNEL
WORK=$(mktemp -d /tmp/vessel-virtio-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
R=$WORK/l1
mkdir -p "$R/bin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp"
cp /usr/bin/busybox "$R/bin/busybox"
"$HERE/prepare.sh" "$R/virtio" $BENCH
cp "$HERE/payload.sh" "$R/payload.sh"
envs=; [ "$BENCH" = --bench ] && envs="VT_BENCH=1"
[ -n "${L1_EXTRA_SCRIPT:-}" ] && cp "$L1_EXTRA_SCRIPT" "$R/extra.sh"
cat > "$R/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
insmod /irqbypass.ko; insmod /kvm.ko; insmod /kvm-amd.ko
ip link set lo up
[ -n "$envs" ] && echo "BENCH-VMM vessel"
$envs sh /payload.sh
[ -f /extra.sh ] && sh /extra.sh
echo L1-DONE
poweroff -f
INIT
chmod +x "$R/init"
strip --strip-debug -o "$R/vessel" "$VESSEL"  # smaller initramfs: faster to unpack under TCG
for lib in $(ldd "$VESSEL" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$R$(dirname "$lib")"; cp "$lib" "$R$lib"
done
cp "$KERNEL" "$R/vmlinuz"
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
  cp /lib/modules/$KVER/kernel/$m "$R/"
done
[ -n "${L1_EXTRA_DIR:-}" ] && cp -a "$L1_EXTRA_DIR"/. "$R/"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$WORK/l1.cpio.gz"
timeout ${NESTED_TIMEOUT:-900} qemu-system-x86_64 -accel tcg -cpu max -M microvm -m 1G -smp 1 -nodefaults \
  -no-user-config -nographic -serial stdio -no-reboot -kernel "$KERNEL" -initrd "$WORK/l1.cpio.gz" \
  -append "console=ttyS0 reboot=t panic=-1 rdinit=/init tsc_early_khz=${TSC_KHZ:-2596138}" | tee "$WORK/console.log"
grep '^VESSEL-CHECK' "$WORK/console.log" | tr -d '\r' > "$WORK/checks" || true
echo "== $(grep -c PASS "$WORK/checks") passed, $(grep -c FAIL "$WORK/checks") failed"
grep -q . "$WORK/checks" && ! grep -q FAIL "$WORK/checks"
