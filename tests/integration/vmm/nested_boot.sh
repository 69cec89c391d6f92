#!/bin/sh
# Boots Debian's cloud kernel with `vessel vm run` inside a QEMU-TCG VM that
# offers nested SVM (the host's /dev/kvm cannot boot Linux). A developer
# tool, not a registered test: it takes 1-5 minutes.
#   tests/integration/vmm/nested_boot.sh [VESSEL_BINARY] [extra vessel flags...]
# Prints the guest console; the inner guest prints INNER_OK and powers off,
# then the outer init prints VESSEL_EXIT=<status of vessel vm run>.
set -eu
VESSEL=${1:-$(dirname "$0")/../../../build/vessel}; [ $# -gt 0 ] && shift
. "$(dirname "$0")/../../vmharness/kernel.sh"
KVER=$HARNESS_KVER
KERNEL=$VESSEL_HARNESS_KERNEL
INNER_KERNEL=${INNER_KERNEL:-$KERNEL}  # e.g. a vmlinux from extract_vmlinux.py: the PVH path
WORK=$(mktemp -d /tmp/vessel-nested-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

mk_root() {  # $1: dir; busybox + /init from stdin
  mkdir -p "$1/bin" "$1/proc" "$1/sys" "$1/dev" "$1/tmp"
  cp /usr/bin/busybox "$1/bin/busybox"
  cat > "$1/init"; chmod +x "$1/init"
}
pack() { (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) > "$2"; }

mk_root "$WORK/inner" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo INNER_OK cpus=$(/bin/busybox grep -c ^processor /proc/cpuinfo)
/bin/busybox poweroff -f
INIT
pack "$WORK/inner" "$WORK/inner.cpio.gz"

mk_root "$WORK/outer" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
insmod /irqbypass.ko; insmod /kvm.ko; insmod /kvm-amd.ko
ls -l /dev/kvm
/vessel vm run --kernel /vmlinuz --initrd /inner.cpio.gz --memory 256M --cpus 2 \
  --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init" $*  </dev/null
echo VESSEL_EXIT=\$?
poweroff -f
INIT
cp "$VESSEL" "$WORK/outer/vessel"
for lib in $(ldd "$VESSEL" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$WORK/outer$(dirname "$lib")"; cp "$lib" "$WORK/outer$lib"
done
cp "$INNER_KERNEL" "$WORK/outer/vmlinuz"; cp "$WORK/inner.cpio.gz" "$WORK/outer/"
for m in virt/lib/irqbypass.ko arch/x86/kvm/kvm.ko arch/x86/kvm/kvm-amd.ko; do
  cp /lib/modules/$KVER/kernel/$m "$WORK/outer/"
done
pack "$WORK/outer" "$WORK/outer.cpio.gz"

timeout 600 qemu-system-x86_64 -accel tcg -cpu max -M microvm -m 1G -smp 1 -nodefaults -no-user-config \
  -nographic -serial stdio -no-reboot -kernel "$KERNEL" -initrd "$WORK/outer.cpio.gz" \
  -append "console=ttyS0 reboot=t panic=-1 rdinit=/init"
