#!/usr/bin/env python3
"""What the API costs: `vessel vm run -d` (a detached VMM with its API socket,
console socket and state directory) against today's foreground `vessel vm run`,
and QEMU microvm, on the same tiny PVH guest printing digits forever.

Per run, interleaved:
  first output  spawn of the command -> first byte the guest writes to COM1
                (all three write COM1 to a FIFO this script reads)
  VMM RSS       VmRSS / VmHWM of the VMM process once the guest printed
                (for -d the detached VMM, not the short-lived client)
Then the VM is stopped (vm kill + vm delete for -d, SIGTERM otherwise).
Not a test: prints numbers and ratios, asserts nothing.
usage: vm_api.py [VESSEL_BINARY] [RUNS]
       vm_api.py --harness [VESSEL_BINARY] [RUNS]
With --harness (a host without a usable /dev/kvm) the same rounds run inside
the VM harness's L1 (QEMU TCG with nested KVM: bench/vm_api_l1.sh, timed by
bench/vm_api_probe.c), and the results go to bench/results/vm_api.{csv,md,png}.
"""
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
GEN = os.path.join(HERE, "..", "tests", "integration", "vmm", "make_tiny_pvh.py")


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def first_byte(fifo, argv):
    """Spawns argv, returns (ms to the first byte on the FIFO, the spawned pid)."""
    null = os.open(os.devnull, os.O_RDWR)
    t0 = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
    os.close(null)
    fd = os.open(fifo, os.O_RDONLY)  # blocks until the VMM opens it for writing
    got = os.read(fd, 1)
    t = (time.perf_counter() - t0) * 1e3
    return (t if got else float("nan")), pid, fd


def drain_close(fd):
    os.set_blocking(fd, False)
    try:
        while os.read(fd, 65536):
            pass
    except BlockingIOError:
        pass
    os.close(fd)


def run_detached(vessel, root, elf, fifo, i):
    name = f"bench{i}"
    t, pid, fd = first_byte(fifo, [vessel, "--root", root, "vm", "run", "-d", "--name", name, "--kernel", elf,
                                   "--serial", "file:" + fifo])
    os.waitpid(pid, 0)  # the client returned once the VM ran
    with open(os.path.join(root, "vm", name, "vmm.json")) as f:
        import json
        vmm = json.load(f)["pid"]
    rss, hwm = status_kib(vmm, "VmRSS"), status_kib(vmm, "VmHWM")
    subprocess.run([vessel, "--root", root, "vm", "delete", "--force", name], check=True)
    drain_close(fd)
    return t, rss, hwm


def run_foreground(argv, fifo):
    t, pid, fd = first_byte(fifo, argv)
    rss, hwm = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    drain_close(fd)
    return t, rss, hwm


def main_harness(vessel, runs):
    """Runs bench/vm_api_l1.sh in the VM harness; parses its BENCH-ROW lines."""
    import shutil
    sys.path.insert(0, HERE)
    import benchlib
    with tempfile.TemporaryDirectory(prefix="vmapi-bench-") as d:
        x = os.path.join(d, "vmapi-bench")
        os.makedirs(os.path.join(x, "qemu", "lib"))
        os.makedirs(os.path.join(x, "qemu", "share"))
        subprocess.check_call([sys.executable, GEN, os.path.join(x, "count.elf"), "count", "x"])
        subprocess.check_call(["gcc", "-static", "-O2", "-o", os.path.join(x, "vm_api_probe"),
                               os.path.join(HERE, "vm_api_probe.c")])
        qemu = shutil.which("qemu-system-x86_64")
        if qemu:
            shutil.copy(qemu, os.path.join(x, "qemu"))
            out = subprocess.run(["ldd", qemu], capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split()
                lib = parts[2] if "=>" in parts and len(parts) > 2 else (parts[0] if "ld-linux" in line else None)
                if lib and lib.startswith("/"):
                    shutil.copy(os.path.realpath(lib), os.path.join(x, "qemu", "lib", os.path.basename(lib)))
            for f in ("bios-microvm.bin", "linuxboot_dma.bin", "kvmvapic.bin"):
                src = os.path.join("/usr/share/qemu", f)
                if os.path.exists(src):
                    shutil.copy(os.path.realpath(src), os.path.join(x, "qemu", "share", f))
        harness = os.path.join(HERE, "..", "tests", "vmharness", "harness.sh")
        argv = [harness, "run", "--vessel", vessel, "--payload", os.path.join(HERE, "vm_api_l1.sh"),
                "--extra", x, "--env", "BENCH_DIR=/extra/vmapi-bench", "--env", f"BENCH_RUNS={runs}",
                "--timeout", str(180 + runs * 90), "--memory", "2048"]
        proc = subprocess.run(argv, capture_output=True, text=True)
    import re
    rows = []  # partial output (a timeout) still gives the finished rounds
    for m in re.finditer(r"BENCH-ROW (run-d|run|qemu) (\d+) (\d+) (\d+) (\d+)", proc.stdout):
        rows.append((m.group(1), int(m.group(2)), int(m.group(3)) / 1000.0, int(m.group(4)), int(m.group(5))))
    if not any(r[1] > 0 for r in rows):
        sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        sys.exit("no BENCH-ROW lines from the harness")
    kinds = [k for k in ("run-d", "run", "qemu") if any(r[0] == k for r in rows)]
    med = {}
    for k in kinds:
        rs = [r for r in rows if r[0] == k and r[1] > 0]  # round 0 is the warm-up
        med[k] = tuple(statistics.median(r[i] for r in rs) for i in (2, 3, 4)) + (len(rs),)
    print(f"in the harness's L1 (QEMU TCG, nested KVM): {runs} interleaved rounds after 1 warm-up (medians)")
    print(f"{'':8s} {'first output ms':>16s} {'VmRSS MiB':>10s} {'VmHWM MiB':>10s}")
    for k in kinds:
        print(f"{k:8s} {med[k][0]:16.2f} {med[k][1] / 1024:10.2f} {med[k][2] / 1024:10.2f}")
    ref = med.get("run-d")
    table = [(k, med[k][3], f"{med[k][0]:.1f}", f"{med[k][1] / 1024:.2f}", f"{med[k][2] / 1024:.2f}",
              f"{med[k][0] / ref[0]:.2f}" if ref else "-", f"{med[k][1] / ref[1]:.2f}" if ref else "-") for k in kinds]
    if "run" in med and ref:
        print(f"API cost (run -d - run): first output {ref[0] - med['run'][0]:+.2f} ms, "
              f"RSS {(ref[1] - med['run'][1]) / 1024:+.2f} MiB")
    note = ("Measured inside the VM harness's L1: QEMU TCG (-cpu max) with nested SVM KVM, so absolute times are "
            "those of an emulated host (much slower than bare metal); the ratios compare the three VMMs on the same L1. "
            "Guest: a tiny PVH guest printing digits (tests/integration/vmm/make_tiny_pvh.py). "
            f"Host load average {os.getloadavg()[0]:.1f} at the end.")
    panels = [{"title": "spawn to the guest's first output", "ylabel": "time (ms)", "groups": ["median"],
               "series": kinds, "values": {k: [med[k][0]] for k in kinds}},
              {"title": "VMM memory once the guest runs", "ylabel": "MiB", "groups": ["VmRSS", "VmHWM"],
               "series": kinds, "values": {k: [med[k][1] / 1024, med[k][2] / 1024] for k in kinds}}]
    benchlib.save_results("vm_api", ["kind", "round", "first_output_ms", "vmrss_kb", "vmhwm_kb"], rows,
                          ["VMM", "runs", "first output ms", "VmRSS MiB", "VmHWM MiB", "time / run -d",
                           "RSS / run -d"], table,
                          "vm run -d (API) vs vm run (foreground) vs QEMU microvm, in the VM harness (TCG + nested KVM)",
                          panels, note)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--harness":
        vessel = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "build", "vessel"))
        main_harness(vessel, int(sys.argv[3]) if len(sys.argv) > 3 else 10)
        return
    vessel = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "build", "vessel"))
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    have_qemu = subprocess.run(["sh", "-c", "command -v qemu-system-x86_64"], stdout=subprocess.DEVNULL).returncode == 0
    with tempfile.TemporaryDirectory(prefix="vmapi-bench-") as d:
        elf = os.path.join(d, "count.elf")
        subprocess.check_call([sys.executable, GEN, elf, "count", "x"])
        fifo = os.path.join(d, "com1")
        os.mkfifo(fifo)
        root = os.path.join(d, "root")
        results = {"run -d": [], "run": [], "qemu": []}
        for i in range(runs + 2):
            rows = [("run -d", run_detached(vessel, root, elf, fifo, i)),
                    ("run", run_foreground([vessel, "vm", "run", "--kernel", elf, "--serial", "file:" + fifo], fifo))]
            if have_qemu:
                rows.append(("qemu", run_foreground(
                    ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-m", "128M", "-nodefaults",
                     "-no-user-config", "-display", "none", "-serial", "file:" + fifo, "-kernel", elf], fifo)))
            if i >= 2:  # warm-up
                for name, row in rows:
                    results[name].append(row)
        print(f"{runs} runs each, interleaved, after 2 warm-up runs (medians)")
        print(f"{'':8s} {'first output ms':>16s} {'VmRSS MiB':>10s} {'VmHWM MiB':>10s}")
        med = {}
        for name, rows in results.items():
            if not rows:
                continue
            m = med[name] = tuple(statistics.median(r[k] for r in rows) for k in range(3))
            print(f"{name:8s} {m[0]:16.2f} {m[1] / 1024:10.2f} {m[2] / 1024:10.2f}")
        if "run" in med and "run -d" in med:
            print(f"API cost (run -d - run): first output {med['run -d'][0] - med['run'][0]:+.2f} ms, "
                  f"RSS {(med['run -d'][1] - med['run'][1]) / 1024:+.2f} MiB")
        if "qemu" in med and "run -d" in med:
            print(f"ratio qemu / run -d: first output {med['qemu'][0] / med['run -d'][0]:.1f}x, "
                  f"RSS {med['qemu'][1] / med['run -d'][1]:.1f}x")


if __name__ == "__main__":
    main()
