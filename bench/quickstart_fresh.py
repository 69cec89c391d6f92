"""Helpers of bench/quickstart_fresh.sh.

quickstart_fresh.py sample ROOT [CGROUP]: every second, prints a line: the time, the host's
1-minute load average, the CPU nanoseconds used in CGROUP so far (cpuacct.usage, or
cpu.stat's usage_usec on cgroup v2; 0 without), /proc/stat's cpu counters, '|', then the command lines (first 60
characters, spaces as '_') of every process whose root directory is ROOT.

quickstart_fresh.py summary OUT_DIR RC: reads OUT_DIR/{quickstart.log,time.txt,timeline.txt,dpkg.log} and prints
  - quickstart.sh's own split (its last 'time:' line) and the run's wall and CPU time;
  - the timeline: seconds in which each phase's programs ran, from the once-a-second
    samples of the fresh root's processes (apt-get update, download, dpkg and what its
    maintainer scripts run, the build, the demos);
  - dpkg's time by step (unpack, configure, trigger) and the slowest packages, from
    dpkg.log (one-second resolution: each interval goes to the step logged before it);
  - the host's load: mean 1-minute load average, and the CPU-seconds other work used.
"""
import collections
import datetime
import os
import sys
import time

USER_HZ = os.sysconf("SC_CLK_TCK")

# (label, substrings of a process's command line), first match wins: the most
# specific programs first, so a sample with dpkg and mkinitramfs counts as initramfs.
PHASES = [
    ("apt: update", ["apt-get_update"]),
    ("deps: which are installed", ["dpkg-query"]),
    ("dpkg: initramfs (mkinitramfs)", ["mkinitramfs", "update-initramfs"]),
    ("dpkg: man-db trigger (mandb)", ["mandb"]),
    ("dpkg: depmod", ["depmod"]),
    ("dpkg: other maintainer scripts", ["/var/lib/dpkg/info/", "/usr/share/debconf/frontend"]),
    ("dpkg: unpack/configure", ["dpkg_--status-fd", "/usr/bin/dpkg", "dpkg_--"]),
    ("build: configure (cmake)", ["cmake_-S"]),
    ("build: compile/link", ["cc1plus", "ninja", "/usr/bin/ld", "collect2", "cmake_--build"]),
    # scripts/guest-kernel.sh runs during the build: seen only when the build is done.
    ("guest kernel: extract", ["dpkg-deb"]),
    ("apt: download", ["/usr/lib/apt/methods/"]),
    ("apt: resolve/other", ["apt-get"]),
    ("demo: VM (harness, QEMU)", ["qemu-system", "harness.sh", "guest-initramfs"]),
    ("demo: container", ["vessel", "python3"]),
]


def phase_of(names):
    for label, keys in PHASES:
        if any(k in n for n in names for k in keys):
            return label
    return "other (scripts between phases)" if names else "no process"


def timeline(path):
    """Returns ({phase: [wall s, CPU s]} in order of appearance, mean load, busy CPU-s of the host)."""
    per = collections.OrderedDict()
    loads, first, last = [], None, None
    prev_t = prev_used = None
    with open(path) as f:
        for line in f:
            if line.startswith("start "):
                continue
            head, _, rest = line.rstrip("\n").partition("|")
            fields = head.split()
            if len(fields) < 8 or not fields[0].replace(".", "").isdigit():
                continue  # a command line with a newline (older samples)
            t, load, used = float(fields[0]), float(fields[1]), int(fields[2]) / 1e9
            cpu = [int(x) for x in fields[3:]]
            busy = sum(cpu) - cpu[3] - cpu[4]  # all but idle and iowait
            if first is None:
                first = busy
            last = busy
            loads.append(load)
            if prev_t is not None:
                # The chroot's top shell carries the whole command in its command line.
                label = phase_of([n for n in rest.split() if not n.startswith("/bin/bash_-c_cd_/root/vessel")])
                # The CPU used in an interval goes to the phase sampled at its end.
                acc = per.setdefault(label, [0.0, 0.0])
                acc[0] += t - prev_t
                acc[1] += used - prev_used
            prev_t, prev_used = t, used
    busy_s = (last - first) / USER_HZ if first is not None else 0.0
    return per, (sum(loads) / len(loads) if loads else 0.0), busy_s


def dpkg_steps(path):
    """Returns (seconds per step kind, seconds per (kind, package)) from dpkg.log."""
    events = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 3:
                continue
            t = datetime.datetime.strptime(parts[0] + " " + parts[1], "%Y-%m-%d %H:%M:%S").timestamp()
            what = parts[2]
            if what == "startup":
                state = ("dpkg startup", parts[3] if len(parts) > 3 else "")
            elif what in ("install", "upgrade"):
                state = ("unpack", parts[3])
            elif what == "configure":
                state = ("configure", parts[3])
            elif what == "trigproc":
                state = ("trigger", parts[3])
            elif what == "status" and parts[3] in ("half-installed", "unpacked"):
                state = ("unpack", parts[4])
            elif what == "status" and parts[3] == "half-configured" and events and events[-1][1][0] == "trigger":
                state = events[-1][1]
            elif what == "status" and parts[3] == "half-configured":
                state = ("configure", parts[4])
            else:
                state = events[-1][1] if events else ("other", "")
            events.append((t, state))
    kinds, pkgs = collections.Counter(), collections.Counter()
    for (t, state), (t_next, _) in zip(events, events[1:]):
        kinds[state[0]] += t_next - t
        pkgs[state] += t_next - t
    return kinds, pkgs


def cgroup_ns(cg):
    try:
        with open(os.path.join(cg, "cpuacct.usage")) as f:
            return int(f.read())
    except OSError:
        pass
    try:
        with open(os.path.join(cg, "cpu.stat")) as f:
            for line in f:
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
    except OSError:
        pass
    return 0


def sample(root, cg):
    while True:
        names = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{pid}/root") != root:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read(4096)
            except OSError:
                continue
            text = cmd.replace(b"\0", b" ").decode(errors="replace").strip()[:60]
            names.append("".join("_" if c.isspace() else c for c in text))
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        with open("/proc/stat") as f:
            cpu = f.readline().split()[1:]
        used = cgroup_ns(cg) if cg else 0
        print(f"{time.time():.3f} {load} {used} {' '.join(cpu)}|{' '.join(names)}", flush=True)
        time.sleep(1)


def summary(out, rc):
    lines = open(os.path.join(out, "quickstart.log"), errors="replace").read().splitlines()
    own = [ln for ln in lines if " time: packages" in ln]
    wall, user, sys_ = open(os.path.join(out, "time.txt")).read().split()[-3:]
    print(f"== quickstart.sh in a fresh root: exit {rc}")
    print(f"quickstart.sh says: {own[-1].split(' time: ', 1)[1] if own else '(no time line)'}")
    print(f"whole run: wall {float(wall):.0f} s, CPU {float(user) + float(sys_):.0f} s "
          f"(user {float(user):.0f}, sys {float(sys_):.0f})")
    per, load, busy = timeline(os.path.join(out, "timeline.txt"))
    print("\n== where the time went (the fresh root's programs, sampled every second)")
    print(f"  {'phase':36s} {'wall':>6s} {'CPU':>6s}")
    for label, (w, c) in per.items():
        print(f"  {label:36s} {w:6.0f} {c:6.0f} s")
    ours = float(user) + float(sys_)
    print(f"\n== host: mean 1-min load average {load:.1f} on {os.cpu_count()} CPUs; "
          f"host busy {busy:.0f} CPU-s in {float(wall):.0f} s, of which this run {ours:.0f}, "
          f"other work ~{max(busy - ours, 0):.0f}")
    dpkg_log = os.path.join(out, "dpkg.log")
    if os.path.getsize(dpkg_log) > 0:
        kinds, pkgs = dpkg_steps(dpkg_log)
        print("\n== dpkg (from dpkg.log, 1 s resolution): " +
              ", ".join(f"{k} {v:.0f} s" for k, v in kinds.most_common()))
        print("  slowest steps:")
        for (kind, pkg), s in pkgs.most_common(12):
            if s >= 1:
                print(f"    {kind:10s} {pkg:40s} {s:4.0f} s")
        n = sum(1 for ln in open(dpkg_log) if " status installed " in ln)
        print(f"  packages set up (incl. trigger runs): {n}")


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
    else:
        summary(sys.argv[2], sys.argv[3])
