#!/bin/bash
# COM1 output cost, before/after: in the VM harness (nested KVM), Debian's kernel with
# its whole log on the serial console (ignore_loglevel, ~25 KB) booted to power-off by a
# baseline vessel (one write(2) per byte) and by this one (one per line), alternately,
# RUNS times each. Prints medians and the ratio new/base.
#   bench/vm_serial.sh BASE_VESSEL [VESSEL_BINARY] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
base=${1:?usage: vm_serial.sh BASE_VESSEL [VESSEL_BINARY] [RUNS]}
vessel=${2:-$here/../build/vessel}
runs=${3:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$here/../tests/vmharness/harness.sh" run --vessel "$vessel" --payload "$here/vm_serial/payload.sh" \
  --file "$base:/usr/local/bin/vessel-base" --bin /usr/bin/time --env RUNS="$runs" --timeout 1500 --log "$out" >/dev/null || true
grep '^SERIAL' "$out" || { echo "no SERIAL lines; console tail:"; tail -n 30 "$out"; exit 1; }
python3 - "$out" <<'PY'
import statistics, sys
rows = [dict(kv.split("=") for kv in l.split()[1:]) for l in open(sys.argv[1]) if l.startswith("SERIAL")]
def med(v, key):
    s = [float(r[key]) for r in rows if r["vmm"] == v and r["marker"] == "yes" and key in r]
    return statistics.median(s) if s else float("nan")
for key in ("seconds", "user", "sys"):
    b, n = med("base", key), med("new", key)
    print(f"{key:8s} median: base {b:.2f}s  new {n:.2f}s  new/base {n / b:.2f}")
PY
