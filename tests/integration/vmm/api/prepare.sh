#!/bin/sh
# Builds, on the host (L0), what the API payload needs inside L1:
#   prepare.sh DIR
# DIR/rootfs.ext4 (ext4 with marker.txt), DIR/data1.img (8 MiB), DIR/data2.img (16 MiB)
# DIR/inner.cpio.gz: the guest's initramfs: busybox init with guest/inittab, the
#                    scripts of guest/, the virtio modules
# DIR/mod/tun.ko: for L1
set -eu
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../../../vmharness/kernel.sh"
KVER=${KVER:-$HARNESS_KVER}
MODS=/lib/modules/$KVER/kernel
mkdir -p "$OUT/mod"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/root"; echo from-the-root-drive > "$T/root/marker.txt"
mkfs.ext4 -q -F -d "$T/root" "$OUT/rootfs.ext4" 16M
truncate -s 8M "$OUT/data1.img"; truncate -s 16M "$OUT/data2.img"
R=$T/inner; mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/etc" "$R/mod" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/mnt"
cp /usr/bin/busybox "$R/bin/busybox"
ln -s bin/busybox "$R/init"
cp "$HERE/guest/inittab" "$R/etc/inittab"
for f in rcS rc.shutdown; do cp "$HERE/guest/$f" "$R/etc/$f"; chmod +x "$R/etc/$f"; done
for f in counter ddtime; do cp "$HERE/guest/$f" "$R/bin/$f"; chmod +x "$R/bin/$f"; done
for m in drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_mmio.ko \
         drivers/block/virtio_blk.ko net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko \
         drivers/char/hw_random/virtio-rng.ko; do cp "$MODS/$m" "$R/mod/"; done
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/inner.cpio.gz"
cp "$MODS/drivers/net/tun.ko" "$OUT/mod/"
