#!/bin/sh
# Builds, on the host, what the Linux-guest part of vmharness.vmm_snapshot_cli
# needs in L1 (/extra/linux): Debian's generic amd64 kernel (the cloud
# kernel has no vmgenid driver: CONFIG_VIRT_DRIVERS is off), an initramfs
# (busybox, linux_guest_init.sh, the virtio, vsock and ext4 modules of that
# kernel, the vsock test client) and an ext4 disk image; OUT_DIR/vsock_echo is
# that client for L1.   prepare_linux.sh OUT_DIR
# The kernel comes from /boot (a generic vmlinuz-*-amd64 with its modules) or
# from `apt-get download linux-image-<version>-amd64-unsigned`, kept in
# ${VESSEL_TEST_CACHE:-/var/tmp/vessel-test-cache}. Exit 77 when neither works.
set -eu
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../vmharness/kernel.sh"
KVER=${KVER:-$HARNESS_GENERIC_KVER}
CACHE=${VESSEL_TEST_CACHE:-/var/tmp/vessel-test-cache}
mkdir -p "$OUT"
if [ -f "/boot/vmlinuz-$KVER" ] && [ -d "/lib/modules/$KVER" ]; then
  ROOT=/
else
  ROOT=$CACHE/linux-image-$KVER
  if [ ! -f "$ROOT/boot/vmlinuz-$KVER" ]; then
    mkdir -p "$CACHE"; T=$(mktemp -d "$CACHE/dl.XXXXXX")
    if ! (cd "$T" && apt-get download "linux-image-$KVER-unsigned" >/dev/null 2>&1); then
      rm -rf "$T"; echo "SKIP: Debian's generic kernel $KVER is not in /boot and apt-get download failed"; exit 77
    fi
    dpkg-deb -x "$T"/*.deb "$T/x" && rm -rf "$ROOT" && mv "$T/x" "$ROOT" && rm -rf "$T"
  fi
fi
[ -f "$ROOT/lib/modules/$KVER/modules.dep" ] || depmod -b "$ROOT" "$KVER"
grep -q "^CONFIG_VMGENID=y" "$ROOT/boot/config-$KVER" || { echo "SKIP: $KVER has no vmgenid driver"; exit 77; }
cp "$ROOT/boot/vmlinuz-$KVER" "$OUT/vmlinuz"

T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
R=$T/root; mkdir -p "$R/bin" "$R/mod" "$R/proc" "$R/sys" "$R/dev" "$R/mnt" "$R/tmp"
cp /usr/bin/busybox "$R/bin/busybox"
gcc -static -O2 -Wall -o "$OUT/vsock_echo" "$HERE/../overcommit/vsock_echo.c"
cp "$OUT/vsock_echo" "$R/bin/vsock_echo"
cp "$HERE/linux_guest_init.sh" "$R/init"; chmod +x "$R/init"
: > "$R/mod/order"
for m in virtio_mmio virtio_blk virtio_net vmw_vsock_virtio_transport ext4; do
  modprobe -d "$ROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r f; do
    n=$(basename "$f" .ko); n=${n%.ko.xz}
    grep -qx "$n" "$R/mod/order" && continue
    case "$f" in *.xz) xz -dc "$f" > "$R/mod/$n.ko" ;; *) cp "$f" "$R/mod/$n.ko" ;; esac
    echo "$n" >> "$R/mod/order"
  done
done
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/inner.cpio.gz"
mkfs.ext4 -q -F "$OUT/disk.img" 32M
