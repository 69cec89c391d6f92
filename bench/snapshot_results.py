#!/usr/bin/env python3
"""Turns the BENCH lines of bench/snapshot_l1.sh (run by snapshot_compare.sh)
into bench/results/snapshot.{csv,md,png}: vessel against QEMU, means and
vessel/QEMU ratios per guest size."""
import statistics
import sys
from collections import defaultdict

import benchlib

vals = defaultdict(list)
for line in open(sys.argv[1], errors="replace"):
    p = line.split()
    if len(p) == 4 and p[0] == "BENCH":
        vals[(p[1], int(p[2]))].append(float(p[3]))
raw = [(name, size, v) for (name, size), vs in sorted(vals.items()) for v in vs]
sizes = sorted({s for (_, s) in vals if _.startswith("vessel_snapshot")})
mean = lambda k: statistics.mean(vals[k]) if vals.get(k) else float("nan")
rows, groups = [], []
pairs = [("snapshot create (ms)", "vessel_snapshot_create_ms", "qemu_snapshot_create_ms"),
         ("restore to running, API (ms)", "vessel_api_restore_to_running_ms", "qemu_restore_to_running_ms"),
         ("restore to running, CLI (ms)", "vessel_cli_restore_to_running_ms", "qemu_restore_to_running_ms"),
         ("first touch: 1st pass over guest RAM after restore (ms)", "vessel_first_touch_ms", "qemu_first_touch_ms"),
         ("  the next (warm) pass (ms)", "vessel_warm_pass_ms", "qemu_warm_pass_ms")]
panels = []
for title, v, q in pairs:
    if not any(vals.get((v, s)) for s in sizes):
        continue
    vv = [mean((v, s)) for s in sizes]
    qq = [mean((q, s)) for s in sizes]
    for s, a, b in zip(sizes, vv, qq):
        # Two significant digits: a ratio far below 1 must not print as "0.0x";
        # a pass not seen (-1) or not resolved by the poller (0) has no ratio.
        rows.append([title, f"{s} MiB", a, b, f"{b / a:.2g}x" if a > 0 and b > 0 else "-"])
    panels.append({"title": title, "ylabel": "ms", "groups": [f"{s} MiB" for s in sizes],
                   "series": ["vessel", "QEMU"], "values": {"vessel": vv, "QEMU": qq}})
for s in sizes:
    rows.append(["memory file on disk (KiB) / QEMU state file", f"{s} MiB", mean(("vessel_memory_file_allocated_kib", s)),
                 mean(("qemu_state_file_kib", s)), f"apparent {mean(('memory_file_apparent_kib', s)):.0f} KiB"])
if vals.get(("clone_pss_kib_each", 512)):
    rows.append([f"clones of the 512 MiB snapshot running: {mean(('clones_running', 512)):.0f}", "512 MiB",
                 mean(("clone_pss_kib_each", 512)), "-", "PSS KiB per clone VMM"])
    rows.append(["  MemAvailable drop per clone (KiB)", "512 MiB", mean(("clone_memavailable_drop_kib_each", 512)), "-", ""])
# How many runs each mean is of (the BENCH lines per metric), for the note.
counts = sorted({len(v) for v in vals.values()})
runs = "no" if not counts else str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
means = "one run each" if runs == "1" else f"means of {runs} runs"
benchlib.save_results(
    "snapshot", ["metric", "size_mib", "value"], raw,
    ["metric", "guest", "vessel", "QEMU", "QEMU/vessel"], rows,
    "VM snapshots: vessel vs QEMU (tiny PVH guests, 2 vCPUs)", panels,
    note="measured in the VM harness's L1: nested KVM under QEMU TCG (the host has no /dev/kvm); "
         f"{means}")
