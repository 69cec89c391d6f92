#!/usr/bin/env python3
"""Results of bench/vm_fullsystem.sh: reads the console log of the harness run (one
"BOOT vmm=... run=... rc=... marker_ms=... exit_ms=... guest_uptime_s=..." line per
boot) and writes bench/results/vm_fullsystem.{csv,md,png}: every boot, the medians
and the vessel/QEMU ratios.
usage: vm_fullsystem.py LOG RUNS CPUS
"""
import statistics
import sys

from benchlib import save_results

METRICS = [("marker_ms", "to multi-user marker (s)"), ("exit_ms", "to VMM exit after poweroff (s)"),
           ("guest_uptime_s", "guest uptime at the marker (s)"), ("kernel_s", "kernel phase, systemd-analyze (s)"),
           ("userspace_s", "userspace phase, systemd-analyze (s)"),
           ("preclock_s", "VMM start to the guest's clock (s)")]


def num(v, key):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x / 1000 if key.endswith("_ms") else x


def main(path, runs, cpus):
    boots = [dict(kv.split("=", 1) for kv in line.replace("\r", "").split()[1:])
             for line in open(path, errors="replace") if line.startswith("BOOT ")]
    for b in boots:  # marker minus uptime: loading, decompression and early setup, before the guest's clock runs
        m, u = num(b.get("marker_ms"), "marker_ms"), num(b.get("guest_uptime_s"), "guest_uptime_s")
        if m is not None and u is not None and m > 0:
            b["preclock_s"] = f"{m - u:.2f}"
    scrubbed = any(line.startswith("scrub: ") for line in open(path, errors="replace"))
    ok = [b for b in boots if b.get("rc") == "0" and (num(b.get("marker_ms"), "marker_ms") or -1) > 0]
    vmms = ["vessel", "qemu"]
    raw = [(b["vmm"], b["run"], b.get("rc"), *[b.get(k, "") for k, _ in METRICS]) for b in boots]
    med = {}
    for v in vmms:
        for k, _ in METRICS:
            xs = [num(b.get(k), k) for b in ok if b["vmm"] == v]
            xs = [x for x in xs if x is not None and x >= 0]
            med[(v, k)] = statistics.median(xs) if xs else float("nan")
    n = {v: sum(1 for b in ok if b["vmm"] == v) for v in vmms}
    # Only what was measured (older logs lack the guest's own timings).
    measured = [(k, label) for k, label in METRICS if med[("vessel", k)] == med[("vessel", k)]]
    table = [[label, med[("vessel", k)], med[("qemu", k)], f"{med[('vessel', k)] / med[('qemu', k)]:.2f}"]
             for k, label in measured]
    for row in table:
        print(f"{row[0]:40s} vessel {row[1]:8.2f}  qemu {row[2]:8.2f}  vessel/qemu {row[3]}")
    print(f"successful boots: vessel {n['vessel']}, qemu {n['qemu']} of {runs} each; failed: "
          f"{[(b['vmm'], b['run'], b.get('rc')) for b in boots if b not in ok]}")
    shown = [m for m in measured if m[0] in ("marker_ms", "exit_ms", "guest_uptime_s")]
    panels = [{"title": f"Debian 12 boot, {cpus} vCPU(s), medians", "ylabel": "time (s)",
               "groups": [label.replace(" (s)", "") for _, label in shown], "series": vmms,
               "values": {v: [med[(v, k)] for k, _ in shown] for v in vmms}}]
    note = (f"medians of {n['vessel']}+{n['qemu']} interleaved boots after one unmeasured warm-up boot; "
            "nested KVM, shared 2-core host" + ("; L1's free memory zeroed before every boot (scrub)" if scrubbed else ""))
    save_results("vm_fullsystem", ["vmm", "run", "rc", *[k for k, _ in METRICS]], raw,
                 ["metric (median)", "vessel", "QEMU microvm", "vessel / QEMU"], table,
                 "Full-system boot (Debian 12, systemd, virtio-blk root): vessel vs QEMU microvm", panels, note)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
