#!/usr/bin/env python3
"""VM start benchmark: `vessel vm run` vs QEMU microvm on the same tiny PVH guest.

Measures, over N runs each:
  first output: process spawn -> first byte the guest writes to COM1 (stdout),
                an upper bound on "time to first guest instruction"
  exit:         process spawn -> process exit after the guest powers off
  peak RSS:     max RSS of the VMM process, from GNU time's %M (a fresh fork:
                a child spawned by Python would inherit Python's RSS high-water
                mark in ru_maxrss across exec); the tiny
                guest touches only a few pages of guest RAM, so this is
                almost all VMM overhead.
QEMU ends through -device isa-debug-exit on the guest's ACPI sleep port 0x600.
Not a test: prints numbers, asserts nothing.
usage: vm_start.py VESSEL_BINARY [RUNS]
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import save_results

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "tests", "integration", "vmm", "make_tiny_pvh.py")


def measure(argv):
    # posix_spawn (vfork-like): the child's peak RSS does not include a copy of this Python process.
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDWR)
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    os.close(w)
    os.close(null)
    first = os.read(r, 1)
    t_first = time.perf_counter()
    while os.read(r, 4096):
        pass
    _, status, ru = os.wait4(pid, 0)
    t_exit = time.perf_counter()
    os.close(r)
    return ((t_first - t0) * 1e3 if first else float("nan"), (t_exit - t0) * 1e3, ru.ru_maxrss,
            os.waitstatus_to_exitcode(status))


def peak_rss_kib(argv):
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, text=True)
    return int(p.stderr.strip().splitlines()[-1])


def series(name, argv, runs):
    rows = [measure(argv) for _ in range(runs)]
    first = statistics.median(r[0] for r in rows)
    exit_ = statistics.median(r[1] for r in rows)
    rss_runs = [peak_rss_kib(argv) for _ in range(3)]
    rss = max(rss_runs)
    codes = sorted(set(r[3] for r in rows))
    print(f"{name:8s} first output {first:7.2f} ms  exit {exit_:7.2f} ms  peak RSS {rss / 1024:6.1f} MiB  "
          f"exit codes {codes}  (median of {runs})")
    return first, exit_, rss, rows, rss_runs


def main():
    vessel = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "vessel")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as d:
        elf = os.path.join(d, "tiny.elf")
        subprocess.check_call([sys.executable, GEN, elf, "poweroff", "x"])
        v = series("vessel", [vessel, "vm", "run", "--kernel", elf, "--memory", "128M", "--serial", "stdio"], runs)
        q = series("qemu", ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-m", "128M", "-nodefaults",
                            "-no-user-config", "-nographic", "-serial", "stdio",
                            "-device", "isa-debug-exit,iobase=0x600,iosize=1", "-kernel", elf], runs)
        if q[1] == q[1] and v[1] > 0:
            print(f"ratio qemu/vessel: first output {q[0] / v[0]:.1f}x, exit {q[1] / v[1]:.1f}x, "
                  f"peak RSS {q[2] / v[2]:.1f}x")
        if all(r[3] == 0 for s in (v, q) for r in s[3]):
            write_results({"vessel": v, "qemu": q}, runs)
        else:
            print("a VMM failed (exit codes above): bench/results/vm_start.* not written")


def write_results(series_by_vmm, runs):
    """bench/results/vm_start.{csv,md,png}: every run, the medians, the plot."""
    raw = []
    for vmm, s in series_by_vmm.items():
        raw += [(vmm, i, "time", round(r[0], 3), round(r[1], 3), "") for i, r in enumerate(s[3])]
        raw += [(vmm, i, "rss", "", "", k) for i, k in enumerate(s[4])]
    v = series_by_vmm["vessel"]
    table = [(vmm, s[0], s[1], s[2] / 1024, f"{s[1] / v[1]:.1f}", f"{s[2] / v[2]:.1f}")
             for vmm, s in series_by_vmm.items()]
    names = list(series_by_vmm)
    note = f"tiny PVH guest, 128 MiB; median of {runs} runs; {os.cpu_count()} CPUs, kernel {os.uname().release}"
    panels = [{"title": "start and stop", "ylabel": "time (ms)", "groups": ["first guest output", "VMM exit"],
               "series": names, "values": {n: [series_by_vmm[n][0], series_by_vmm[n][1]] for n in names}},
              {"title": "VMM memory", "ylabel": "peak RSS (MiB)", "groups": ["peak RSS"], "series": names,
               "values": {n: [series_by_vmm[n][2] / 1024] for n in names}}]
    save_results("vm_start", ["vmm", "run", "kind", "first_output_ms", "exit_ms", "peak_rss_kib"], raw,
                 ["VMM", "first output median (ms)", "exit median (ms)", "peak RSS (MiB)", "exit / vessel",
                  "RSS / vessel"], table, "VM start: vessel vm run vs QEMU microvm (-accel kvm)", panels, note)


if __name__ == "__main__":
    main()
