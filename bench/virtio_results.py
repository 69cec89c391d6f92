#!/usr/bin/env python3
"""Results of bench/virtio_compare.sh: reads the console log of the nested run (lines
"BENCH-VMM vessel|qemu" then "BENCH metric value unit") and writes
bench/results/virtio.{csv,md,png}: every sample, the means with the vessel/QEMU
ratio, and a plot with both VMMs side by side (MB/s and IOPS panels).
usage: virtio_results.py LOG
"""
import statistics
import sys

from benchlib import save_results


def parse(path):
    samples, vmm = [], "vessel"
    for line in open(path, errors="replace"):
        f = line.replace("\r", "").split()
        if len(f) >= 2 and f[0] == "BENCH-VMM":
            vmm = f[1]
        elif len(f) >= 4 and f[0] == "BENCH":
            samples.append((vmm, f[1], f[3], float(f[2])))
    return samples


def write(samples, title, note, stem="virtio"):
    metrics = list(dict.fromkeys((m, u) for _, m, u, _ in samples))
    vmms = [v for v in ("vessel", "qemu") if any(s[0] == v for s in samples)]
    mean = {(v, m): statistics.mean(x for vv, mm, _, x in samples if vv == v and mm == m)
            for v in vmms for m, _ in metrics if any(s[0] == v and s[1] == m for s in samples)}
    table = []
    for m, u in metrics:
        row = [f"{m} ({u})"] + [mean.get((v, m), float("nan")) for v in vmms]
        if len(vmms) == 2:  # a metric one VMM has no sample of: no ratio (a "-" keeps the row's columns)
            ok = mean.get(("qemu", m)) and ("vessel", m) in mean
            row.append(f"{mean[('vessel', m)] / mean[('qemu', m)]:.2f}" if ok else "-")
        table.append(row)
    panels = []
    for unit in dict.fromkeys(u for _, u in metrics):
        groups = [m for m, u in metrics if u == unit]
        panels.append({"title": unit, "ylabel": f"{'throughput' if '/s' in unit and unit != 'IOPS' else 'rate'} ({unit})",
                       "groups": groups, "series": vmms,
                       "values": {v: [mean.get((v, g), 0.0) for g in groups] for v in vmms}})
    save_results(stem, ["vmm", "metric", "unit", "value"], samples,
                 ["metric", *vmms] + (["vessel / qemu"] if len(vmms) == 2 else []), table, title, panels, note)


if __name__ == "__main__":
    write(parse(sys.argv[1]), "virtio I/O in a nested guest: vessel vs QEMU microvm",
          "means of the samples of one run of bench/virtio_compare.sh; compare ratios, not absolute numbers")
