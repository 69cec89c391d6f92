#!/bin/sh
# Memory overcommit and vsock benchmark, vessel vs QEMU, both nested in the same
# L1 (QEMU-TCG with nested SVM; the guests run on L1's KVM): free page
# reporting and balloon inflate speed (MiB/s given back), vsock throughput and
# connection rate (vessel's Firecracker-style unix socket vs QEMU's
# vhost-vsock). Writes bench/results/overcommit.{csv,md,png}. Nested numbers:
# compare the ratio, not the absolute values.
#   bench/overcommit_compare.sh [VESSEL_BINARY]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VESSEL=${1:-$HERE/../build/vessel}
T=$HERE/../tests/integration/vmm/overcommit
. "$(dirname "$0")/../tests/vmharness/kernel.sh"
KVER=${KVER:-$HARNESS_KVER}
X=$(mktemp -d /tmp/vessel-obench-XXXXXX); trap 'rm -rf "$X"' EXIT
"$T/prepare.sh" "$X/overcommit" >/dev/null
mkdir -p "$X/obench/mod" "$X/qemu/lib" "$X/qemu/share"
for m in drivers/vhost/vhost_iotlb.ko drivers/vhost/vhost.ko net/vmw_vsock/vsock.ko net/vmw_vsock/vmw_vsock_virtio_transport_common.ko drivers/vhost/vhost_vsock.ko; do
  cp "/lib/modules/$KVER/kernel/$m" "$X/obench/mod/"
done
cp /usr/bin/qemu-system-x86_64 "$X/qemu/"
for lib in $(ldd /usr/bin/qemu-system-x86_64 | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do cp -L "$lib" "$X/qemu/lib/"; done
for f in bios-microvm.bin linuxboot_dma.bin kvmvapic.bin; do [ -f /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f "$X/qemu/share/"; done
"$HERE/../tests/vmharness/harness.sh" run --vessel "$VESSEL" --payload "$HERE/overcommit_l1.sh" --timeout 1500 \
  --memory 2048 --extra "$X/overcommit" --extra "$X/obench" --extra "$X/qemu" \
  --env OC_DIR=/extra/overcommit > "$X/log" 2>&1 || true
grep -E "^(BENCH|VESSEL)" "$X/log" | tr -d '\r' || true
cd "$HERE" && python3 -c "
from virtio_results import parse, write
write(parse('$X/log'), 'memory overcommit and vsock in a nested guest: vessel vs QEMU microvm',
      'means of 2 alternating runs each of bench/overcommit_compare.sh; nested (L1 under TCG): compare ratios', 'overcommit')"
