#!/usr/bin/env python3
"""Container start benchmark: `RUNTIME run` of a busybox bundle running /bin/true,
vessel vs crun vs runc.

Each runtime gets its own --root in a temp dir and the same bundle: config.json
from `vessel spec`, ociVersion 1.0.2 (crun 1.8 knows no later), terminal false, args ["/bin/true"], cgroupsPath /vessel-bench, the spec's default
namespaces for all three. The runs are interleaved (vessel, crun, runc, vessel,
…, the order rotating each round) after a few warm-up runs, so drift of the
shared machine hits all three alike.

Measures per run, from the runtime's own process:
  wall: spawn -> the runtime exits (container created, started, exited, deleted)
  cpu:  user+sys of the runtime and every descendant it reaped (wait4's rusage),
        which includes the container's init and, for runc, `runc init`
Prints mean and median of each and the ratios vessel/crun and vessel/runc.
Not a test: prints numbers, asserts nothing (a run that fails is reported).

Run through container_start.sh, which puts it in a private mount namespace
where crun accepts this host's hybrid cgroups.
usage: container_start.py VESSEL_BINARY [RUNS]
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import report, save_interleaved, spawn_and_wait

WARMUP = 3


def make_bundle(vessel, d):
    bundle = os.path.join(d, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    for sub in ("bin", "dev", "proc", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for applet in ("true", "sh"):
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    subprocess.check_call([vessel, "spec", "--bundle", bundle])
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    # crun 1.8 rejects the 1.2.0 that `vessel spec` writes ("unknown version
    # specified"); nothing in this config needs more than 1.0.
    cfg["ociVersion"] = "1.0.2"
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    # The same cgroup for all three (runs are sequential; each run removes it).
    cfg["linux"]["cgroupsPath"] = "/vessel-bench"
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    ns = [n["type"] for n in cfg.get("linux", {}).get("namespaces", [])]
    print(f"bundle: busybox rootfs, /bin/true, namespaces {ns}, cgroupsPath {cfg['linux'].get('cgroupsPath')!r}")
    return bundle


def main():
    vessel = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/vessel")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    runtimes = {"vessel": vessel, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
    runtimes = {k: v for k, v in runtimes.items() if v}
    if "vessel" not in runtimes or not os.access(vessel, os.X_OK):
        sys.exit(f"{vessel}: not executable")
    d = tempfile.mkdtemp(prefix="vessel-bench-")
    try:
        bundle = make_bundle(vessel, d)
        roots = {name: os.path.join(d, "root-" + name) for name in runtimes}
        results = {name: [] for name in runtimes}
        failures = {name: [] for name in runtimes}
        names = list(runtimes)
        for i in range(WARMUP + runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                cid = f"bench-{name}-{i}"
                argv = [runtimes[name], "--root", roots[name], "run", "--bundle", bundle, cid]
                wall, cpu, code, err = spawn_and_wait(argv)
                if code != 0:
                    failures[name].append(f"run {i}: exit {code}: {err[:300]}")
                    # Leave nothing behind even when run fails halfway.
                    subprocess.run([runtimes[name], "--root", roots[name], "delete", "--force", cid],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                elif i >= WARMUP:
                    results[name].append((wall, cpu))
        def version(name):
            ver = subprocess.run([runtimes[name], "--version"], capture_output=True, text=True).stdout.splitlines()
            return (ver[0] if ver else "?") + " "
        summary = report(runs, WARMUP, results, failures, "runtime", version)
        for peer in ("crun", "runc"):
            if "vessel" in summary and peer in summary:
                v, p = summary["vessel"], summary[peer]
                print(f"vessel/{peer}: wall mean {v[0] / p[0]:.2f}x median {v[1] / p[1]:.2f}x, "
                      f"cpu mean {v[2] / p[2]:.2f}x median {v[3] / p[3]:.2f}x")
        save_interleaved("container_start", "Container start: `run` of a busybox bundle executing /bin/true",
                         results, summary, runs, "runtime", version)
        for name in runtimes:
            for cid in os.listdir(roots[name]) if os.path.isdir(roots[name]) else []:
                subprocess.run([runtimes[name], "--root", roots[name], "delete", "--force", cid],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
