#!/bin/sh
# Builds, on the host (L0), the directory the virtio payload needs inside L1:
#   prepare.sh DIR [--bench]
# DIR/img: raw.img (ext4), base.raw (ext4 with base.txt) + overlay.qcow2
#          (qemu-img create -b base.raw -F raw), ro.img, and their md5s;
#          limit.img (rate-limited disk)
# DIR/www/blob: 2 MiB of random data for the TCP transfer (md5 in DIR/blob.md5)
# DIR/inner.cpio.gz: the inner guest's initramfs (busybox, guest_init.sh, virtio modules)
# DIR/mod/tun.ko: for L1
# DIR/tools: debugfs and qemu-img with their libraries, run through the bundled loader
set -eu
OUT=$1; BENCH=${2:-}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../../../vmharness/kernel.sh"
KVER=${KVER:-$HARNESS_KVER}
MODS=/lib/modules/$KVER/kernel
mkdir -p "$OUT/img" "$OUT/www" "$OUT/mod" "$OUT/tools/bin" "$OUT/tools/lib"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

mkdir -p "$T/rawroot" "$T/baseroot" "$T/roroot"
echo from-raw-image > "$T/rawroot/raw.txt"
echo from-base-image > "$T/baseroot/base.txt"
echo read-only-image > "$T/roroot/ro.txt"
mkfs.ext4 -q -F -d "$T/rawroot" "$OUT/img/raw.img" 32M
mkfs.ext4 -q -F -d "$T/baseroot" "$OUT/img/base.raw" 32M
mkfs.ext4 -q -F -d "$T/roroot" "$OUT/img/ro.img" 16M
truncate -s 8M "$OUT/img/limit.img"
rm -f "$OUT/img/overlay.qcow2"
(cd "$OUT/img" && qemu-img create -q -f qcow2 -b base.raw -F raw overlay.qcow2)
(cd "$OUT/img" && md5sum base.raw ro.img > ../images.md5)
head -c 2097152 /dev/urandom > "$OUT/www/blob"
md5sum < "$OUT/www/blob" | cut -d' ' -f1 > "$OUT/blob.md5"

# Inner guest initramfs.
R=$T/inner; mkdir -p "$R/bin" "$R/mod" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/mnt"
cp /usr/bin/busybox "$R/bin/busybox"
cp "$HERE/guest_init.sh" "$R/init"; chmod +x "$R/init"
for m in drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_mmio.ko \
         drivers/block/virtio_blk.ko net/core/failover.ko drivers/net/net_failover.ko drivers/net/virtio_net.ko \
         drivers/char/hw_random/virtio-rng.ko; do cp "$MODS/$m" "$R/mod/"; done
if [ "$BENCH" = --bench ]; then
  cp "$HERE/../../../../bench/virtio_guest_bench.sh" "$R/bench.sh"; chmod +x "$R/bench.sh"
  truncate -s 48M "$OUT/img/bench.img"
  head -c 16777216 /dev/urandom > "$OUT/www/big"; echo 16 > "$OUT/www/big.size"
fi
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/inner.cpio.gz"
cp "$MODS/drivers/net/tun.ko" "$OUT/mod/"
# The same virtio modules for an L1 that runs QEMU itself (bench).
cp "$R"/mod/*.ko "$OUT/mod/"

# Host tools, with their libraries and the loader (relocatable).
for b in /usr/sbin/debugfs /usr/bin/qemu-img; do
  cp "$b" "$OUT/tools/bin/"
  for lib in $(ldd "$b" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do cp -L "$lib" "$OUT/tools/lib/"; done
done
