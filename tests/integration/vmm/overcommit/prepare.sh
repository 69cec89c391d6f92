#!/bin/sh
# Builds, on the host (L0), what the overcommit payload needs inside L1:
#   prepare.sh DIR
# DIR/vsock_echo: the static test client (host side, run in L1)
# DIR/inner.cpio.gz: the inner guest's initramfs: busybox, guest_init.sh as /init,
#                    vsock_echo, and the virtio, virtio_balloon and vsock modules
set -eu
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../../../vmharness/kernel.sh"
KVER=${KVER:-$HARNESS_KVER}
MODS=/lib/modules/$KVER/kernel
mkdir -p "$OUT"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
gcc -static -O2 -Wall -o "$OUT/vsock_echo" "$HERE/vsock_echo.c"
R=$T/inner; mkdir -p "$R/bin" "$R/mod" "$R/proc" "$R/sys" "$R/dev" "$R/tmp"
cp /usr/bin/busybox "$R/bin/busybox"
cp "$OUT/vsock_echo" "$R/bin/vsock_echo"
cp "$HERE/guest_init.sh" "$R/init"; chmod +x "$R/init"
for m in drivers/virtio/virtio_ring.ko drivers/virtio/virtio.ko drivers/virtio/virtio_mmio.ko \
         drivers/virtio/virtio_balloon.ko net/vmw_vsock/vsock.ko \
         net/vmw_vsock/vmw_vsock_virtio_transport_common.ko net/vmw_vsock/vmw_vsock_virtio_transport.ko; do
  cp "$MODS/$m" "$R/mod/"
done
(cd "$R" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT/inner.cpio.gz"
