#!/bin/bash
# VM boot, side by side: in the VM harness (nested KVM), Debian's kernel with a
# busybox initramfs booted to its userspace marker and power-off by `vessel vm run`
# and by QEMU microvm (-accel kvm), alternately, RUNS times each.
# Prints medians and the ratios vessel/QEMU for wall time and peak RSS.
#   bench/vm_boot.sh [VESSEL_BINARY] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=${1:-$here/../build/vessel}
runs=${2:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$here/../tests/vmharness/harness.sh" run --vessel "$vessel" --payload "$here/vm_boot/payload.sh" \
  --bin /usr/bin/qemu-system-x86_64 --bin /usr/bin/time \
  --file /usr/share/qemu/bios-microvm.bin:/usr/share/qemu/bios-microvm.bin \
  --env RUNS="$runs" --timeout 900 --log "$out" >/dev/null || true
grep '^BOOT' "$out" || { echo "no BOOT lines; console tail:"; tail -n 30 "$out"; exit 1; }
python3 - "$out" <<'PY'
import re, statistics, sys
rows = [dict(kv.split("=") for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("BOOT")]
def med(vmm, key):
    v = [float(r[key]) for r in rows if r["vmm"] == vmm and r.get("marker") == "yes" and key in r]
    return statistics.median(v) if v else float("nan")
for key, unit in (("seconds", "s"), ("RSS_KB", "KiB")):
    v, q = med("vessel", key), med("qemu", key)
    print(f"{key:8s} vessel {v:10.3f}{unit}  qemu {q:10.3f}{unit}  vessel/qemu {v / q:.2f}")
PY
