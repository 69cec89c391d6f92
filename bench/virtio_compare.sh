#!/bin/sh
# virtio I/O benchmark, vessel vs QEMU, both nested in the same L1 (QEMU-TCG
# with nested SVM; L2 runs on L1's KVM): the same kernel, guest, images and
# tap; the guest runs bench/virtio_guest_bench.sh (O_DIRECT dd on a scratch
# raw disk, wget over the tap). Prints both columns and vessel/QEMU ratios.
# Numbers are nested-virtualization numbers: compare the ratio, not the MB/s.
#   bench/virtio_compare.sh [VESSEL_BINARY]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
VESSEL=${1:-$HERE/../build/vessel}
X=$(mktemp -d /tmp/vessel-vbench-XXXXXX); trap 'rm -rf "$X"' EXIT
mkdir -p "$X/qemu/lib" "$X/qemu/share"
cp /usr/bin/qemu-system-x86_64 "$X/qemu/"
for lib in $(ldd /usr/bin/qemu-system-x86_64 | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do cp -L "$lib" "$X/qemu/lib/"; done
for f in bios-microvm.bin linuxboot_dma.bin kvmvapic.bin; do [ -f /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f "$X/qemu/share/"; done
L1_EXTRA_DIR=$X L1_EXTRA_SCRIPT=$HERE/virtio_qemu_l1.sh \
  "$HERE/../tests/integration/vmm/virtio/run_nested.sh" "$VESSEL" --bench | tee "$X/log" || true
awk '/BENCH-VMM qemu/ {q=1} /BENCH-VMM vessel/ {q=0}
     /^BENCH / { gsub("\r",""); k=$2; if (!(k in u)) { order[++n]=k; u[k]=$4 }
                 if (q) { qs[k]+=$3; qn[k]++; ql[k]=ql[k] " " $3 } else { vs[k]+=$3; vn[k]++; vl[k]=vl[k] " " $3 } }
     END { printf "%-28s %10s %10s %7s   %s\n", "metric (mean of runs)", "vessel", "qemu", "ratio", "runs: vessel | qemu";
           for (i = 1; i <= n; i++) { k = order[i]; v = vn[k] ? vs[k]/vn[k] : 0; q = qn[k] ? qs[k]/qn[k] : 0;
             printf "%-28s %10.0f %10.0f %7s   %s |%s\n", k " (" u[k] ")", v, q, (q > 0 ? sprintf("%.2f", v/q) : "-"), vl[k], ql[k] } }' "$X/log"
python3 "$HERE/virtio_results.py" "$X/log"
