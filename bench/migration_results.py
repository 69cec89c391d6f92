#!/usr/bin/env python3
"""Turns the BENCH lines of bench/migration_l1.sh (run by migration_compare.sh)
into bench/results/migration.{csv,md,png}: vessel against QEMU live
migration, means and QEMU/vessel ratios per guest dirty rate."""
import statistics
import sys
from collections import defaultdict

import benchlib

name = sys.argv[2] if len(sys.argv) > 2 else "migration"
postcopy = name.endswith("postcopy")
vals = defaultdict(list)
host = ""
where = "measured in the VM harness's L1: nested KVM under QEMU TCG (the host has no /dev/kvm)"
for line in open(sys.argv[1], errors="replace"):
    p = line.split()
    if p == ["BENCH-WHERE", "tier1"]:
        where = "measured on the host's own /dev/kvm (tier 1)"
    if len(p) == 5 and p[0] == "BENCH-HOST":
        host = f"; L1's transparent huge pages: anonymous {p[2]}, shared memory {p[4]}"
    if len(p) == 4 and p[0] == "BENCH":
        try:
            vals[(p[1], int(p[2]))].append(float(p[3]))
        except ValueError:
            pass
raw = [(name, rate, v) for (name, rate), vs in sorted(vals.items()) for v in vs]
rates = sorted({r for (n, r) in vals if n.startswith(("vessel_downtime", "qemu_downtime"))})
mean = lambda k: statistics.mean(vals[k]) if vals.get(k) else float("nan")
label = lambda r: "idle" if r == 0 else f"{r} MiB/s"
rows, panels = [], []
for title, v, q in [("downtime (ms)", "vessel_downtime_ms", "qemu_downtime_ms"),
                    ("guest-observed downtime (ms)", "vessel_guest_downtime_ms", "qemu_guest_downtime_ms"),
                    ("total migration time (ms)", "vessel_total_ms", "qemu_total_ms")]:
    vv = [mean((v, r)) for r in rates]
    qq = [mean((q, r)) for r in rates]
    for r, a, b in zip(rates, vv, qq):
        rows.append([title, label(r), a, b, f"{b / a:.1f}x" if a > 0 and b == b else "-",
                     f"{len(vals.get((v, r), []))}/{len(vals.get((q, r), []))}"])
    panels.append({"title": title, "ylabel": "ms", "groups": [label(r) for r in rates],
                   "series": ["vessel", "QEMU"], "values": {"vessel": vv, "QEMU": qq}})
if vals.get(("vessel_upgrade_downtime_ms", 0)):
    rows.append(["local vm upgrade downtime (ms)", "idle", mean(("vessel_upgrade_downtime_ms", 0)), "-", "-",
                 f"{len(vals[('vessel_upgrade_downtime_ms', 0)])}/-"])
    rows.append(["local vm upgrade total (ms)", "idle", mean(("vessel_upgrade_total_ms", 0)), "-", "-",
                 f"{len(vals[('vessel_upgrade_total_ms', 0)])}/-"])
# How many runs each mean is of (the BENCH lines per metric), for the note.
counts = sorted({len(v) for v in vals.values()})
runs = "no" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
means = "one run each" if runs == "1" else f"means of {runs} runs"
benchlib.save_results(
    name, ["metric", "dirty_mib_per_s", "value"], raw,
    ["metric", "guest", "vessel", "QEMU", "QEMU/vessel", "runs (vessel/QEMU)"], rows,
    "Live migration over TCP loopback: vessel vs QEMU (512 MiB tiny guest, 1 vCPU)"
    + (", post-copy (vessel --postcopy, QEMU postcopy-ram)" if postcopy else ""), panels,
    note=f"{where}; "
         "downtime: each VMM's own measure (vessel: pause to the destination's RUNNING, its restore included; "
         "QEMU: stop to completion on the source); guest-observed: the source guest's last output line to the "
         "destination's first (the guest prints every 100 ms after summing all its pages, so the destination's "
         f"first touch of its 512 MiB is in it){host}; {means}, whose destination guest verified its pages")
