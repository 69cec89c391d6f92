#!/bin/sh
# Snapshot create / restore-to-running time and first-touch cost against
# QEMU's migrate-to-file / -incoming, the memory file's sparse size and clone
# density, measured side
# by side in one run inside the VM harness's L1 (nested KVM under QEMU TCG:
# this host has no /dev/kvm). Writes bench/results/snapshot.{csv,md,png}.
#   bench/snapshot_compare.sh [VESSEL_BINARY]   (default build/vessel)
# Environment: BENCH_RUNS (default 3), BENCH_CLONES (default 100).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
V=${1:-$HERE/../build/vessel}
X=$(mktemp -d /tmp/vessel-bench-snap.XXXXXX); trap 'rm -rf "$X"' EXIT
D=$X/bench-snap; mkdir -p "$D/qemu/lib" "$D/qemu/share"
python3 "$HERE/../tests/integration/vmm/make_tiny_pvh.py" "$D/count.elf" count 'start
'
for mib in 128 512 2048; do
  python3 "$HERE/../tests/integration/vmm/make_tiny_pvh.py" "$D/touch$mib.elf" "touch$mib" 'start
'
done
gcc -O2 -static -o "$D/snapshot_timer" "$HERE/snapshot_timer.c"
cp /usr/bin/qemu-system-x86_64 "$D/qemu/"
for lib in $(ldd /usr/bin/qemu-system-x86_64 | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do cp -L "$lib" "$D/qemu/lib/"; done
for f in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin; do [ -f /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f "$D/qemu/share/"; done
"$HERE/../tests/vmharness/harness.sh" run --vessel "$V" --payload "$HERE/snapshot_l1.sh" --extra "$D" \
  --bin "$(command -v curl)" --memory 4096 --timeout 2400 \
  --env "BENCH_RUNS=${BENCH_RUNS:-3}" --env "BENCH_CLONES=${BENCH_CLONES:-100}" | tee "$X/out.txt"
python3 "$HERE/snapshot_results.py" "$X/out.txt"
