#!/usr/bin/env python3
"""Plots of the recorded results of the slow benchmarks, without re-running them:
reads the tables of bench/image_results.md (image start, density: minutes of
work each) and bench/virtio_results.md (a nested QEMU-TCG run: ~10 minutes), and
writes bench/results/{image_start,image_density,virtio}.{csv,md,png} through
benchlib. The scripts themselves write the same files when they are re-run
(image_start.py, image_density.sh, virtio_compare.sh).
usage: plot_recorded.py
"""
import os
import re

from benchlib import save_results
import virtio_results

HERE = os.path.dirname(os.path.abspath(__file__))


def table_rows(path, first_cell):
    """The rows (lists of cells) of the markdown table whose header starts with first_cell."""
    rows, inside = [], False
    for line in open(path):
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not inside and cells[0] == first_cell:
                inside = True
                continue
            if inside and not set(cells[0]) <= set("-: "):
                rows.append(cells)
        elif inside:
            break
    return rows


def num(s):
    return float(re.sub(r"[^0-9.+-]", "", s.split("(")[0].split("→")[-1].strip()))


def image_start():
    rows = table_rows(os.path.join(HERE, "image_results.md"), "image layers")
    raw, table, groups = [], [], []
    wall = {"bundle": [], "image": []}
    cpu = {"bundle": [], "image": []}
    for r in rows:
        layers = r[0]
        groups.append(f"{layers} layer(s)")
        iw, bw, ic, bc = num(r[2]), num(r[3]), num(r[5]), num(r[6])
        wall["image"].append(iw), wall["bundle"].append(bw), cpu["image"].append(ic), cpu["bundle"].append(bc)
        raw += [(layers, r[1], "image", iw, ic), (layers, r[1], "bundle", bw, bc)]
        table.append((layers, r[1], bw, iw, f"{iw - bw:+.2f}", bc, ic, f"{ic - bc:+.2f}"))
    note = "medians recorded in bench/image_results.md (2 vCPUs, load ~1); plotted from the table, not re-run"
    save_results("image_start", ["layers", "runs", "start", "wall_median_ms", "cpu_median_ms"], raw,
                 ["layers", "runs", "bundle wall (ms)", "image wall (ms)", "difference", "bundle cpu (ms)",
                  "image cpu (ms)", "difference"], table,
                 "Container start: from an image vs from a bundle directory (/bin/true)",
                 [{"title": "wall time, median", "ylabel": "time (ms)", "groups": groups,
                   "series": ["bundle", "image"], "values": wall},
                  {"title": "CPU time, median", "ylabel": "CPU time (ms)", "groups": groups,
                   "series": ["bundle", "image"], "values": cpu}], note)


def image_density():
    rows = table_rows(os.path.join(HERE, "image_results.md"), "")
    runs = ["run 3 (load ~1)", "run 1 (load ~1.4)", "run 2 (load ~3)"]
    by_label = {r[0]: r[1:] for r in rows}
    kib = {"MemAvailable per container": "MemAvailable", "Committed_AS per container": "Committed",
           "Slab per container (unreclaimable)": "Slab", "memory cgroup usage per container": "memcg",
           "upper+work per container (du)": "disk"}
    raw, mem_groups, mem = [], [], {r: [] for r in runs}
    for label, short in kib.items():
        cells = by_label[label]
        mem_groups.append(short)
        for run, c in zip(runs, cells):
            v = abs(num(c)) if c not in ("same",) else mem[run][-1]
            mem[run].append(v)
            raw.append((run, short, "KiB", v))
    times = {r: [] for r in runs}
    for label in ("time to start all", "delete all"):
        for run, c in zip(runs, by_label[label]):
            times[run].append(num(c))
            raw.append((run, label, "s", num(c)))
    table = [(short, *[mem[r][i] for r in runs]) for i, short in enumerate(mem_groups)]
    table += [(label + " (s)", *[times[r][i] for r in runs]) for i, label in enumerate(("start 1000", "delete 1000"))]
    note = "1000 busybox containers of one image; recorded in bench/image_results.md, plotted from the table, not re-run"
    save_results("image_density", ["run", "metric", "unit", "value"], raw, ["per container", *runs], table,
                 "Density: what one container of an image costs (1000 running)",
                 [{"title": "per container", "ylabel": "size (KiB)", "groups": mem_groups, "series": runs,
                   "values": mem},
                  {"title": "1000 containers", "ylabel": "time (s)", "groups": ["start all", "delete all"],
                   "series": runs, "values": times}], note)


def virtio():
    rows = table_rows(os.path.join(HERE, "virtio_results.md"), "metric")
    names = {"sequential write": "seq-write", "sequential read": "seq-read", "4k read, QD1": "4k-read-qd1",
             "4k write, QD1": "4k-write-qd1", "4k random read": "4k-randread-dd-per-io", "network": "net-rx"}
    samples = []
    for r in rows:
        metric = next(v for k, v in names.items() if r[0].startswith(k))
        unit = re.search(r"\(([^()]*)\)\s*$", r[0]).group(1)
        for run in r[1:4]:
            v, q = (float(x) for x in run.split("/"))
            samples += [("vessel", metric, unit, v), ("qemu", metric, unit, q)]
    virtio_results.write(samples, "virtio I/O in a nested guest: vessel vs QEMU microvm",
                         "means of runs A, B, C recorded in bench/virtio_results.md (2026-11-24); "
                         "plotted from the table, not re-run")


if __name__ == "__main__":
    image_start()
    image_density()
    virtio()
