#!/usr/bin/env python3
"""Container start through the engines, vessel vs its peers: Docker's
`docker run --rm --network none --runtime bench-NAME IMG true` and containerd's
`ctr run --rm --runc-binary PATH IMG ID true`, both through containerd's runc
shim (io.containerd.runc.v2). Run by engine_start.sh, which starts the daemons.

The runs are interleaved (vessel, runc, crun, vessel, ..., the order rotating
each round) after warm-up runs, so drift of the shared machine hits all alike.
wall: the client command from spawn to exit (the container created, started,
exited, reaped and deleted by the engine). cpu: the client's own CPU only
(docker CLI or ctr), the same work whatever the runtime; the runtime's share is
in the daemons and shims, so wall is the number to compare.
Prints mean and median and the ratios vessel/peer. Not a test: asserts nothing.
usage: engine_start.py --docker-sock S --ctrd-sock S --runc-root D [--runs N] NAME=PATH...
"""
import argparse
import subprocess

from benchlib import report, spawn_and_wait

WARMUP = 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--docker-sock", required=True)
    ap.add_argument("--ctrd-sock", required=True)
    ap.add_argument("--runc-root", required=True)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("runtimes", nargs="+", help="NAME=PATH, vessel first")
    a = ap.parse_args()
    runtimes = dict(r.split("=", 1) for r in a.runtimes)
    docker = ["/usr/bin/docker", "-H", "unix://" + a.docker_sock]
    ctr = ["/usr/bin/ctr", "--address", a.ctrd_sock, "--namespace", "vessel-bench"]

    def docker_argv(name, i):
        return docker + ["run", "--rm", "--network", "none", "--runtime", "bench-" + name,
                         "vessel-bench:latest", "true"]

    def ctr_argv(name, i):
        return ctr + ["run", "--rm", "--runc-binary", runtimes[name], "--runc-root", a.runc_root,
                      "--cgroup", f"/vessel-bench/{name}-{i}",
                      "docker.io/library/vessel-bench:latest", f"bench-{name}-{i}", "true"]

    names = list(runtimes)
    summaries = {}
    for engine, make in (("docker", docker_argv), ("ctr", ctr_argv)):
        results = {name: [] for name in names}
        failures = {name: [] for name in names}
        for i in range(WARMUP + a.runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                wall, cpu, code, err = spawn_and_wait(make(name, i))
                if code != 0:
                    failures[name].append(f"run {i}: exit {code}: {err[:300]}")
                elif i >= WARMUP:
                    results[name].append((wall, cpu))
        print(f"--- {engine} run --rm ... true")
        summaries[engine] = report(a.runs, WARMUP, results, failures, "runtime")
    for engine, summary in summaries.items():
        for peer in names[1:]:
            if names[0] in summary and peer in summary:
                v, p = summary[names[0]], summary[peer]
                print(f"{engine}: {names[0]}/{peer} wall mean {v[0] / p[0]:.2f}x median {v[1] / p[1]:.2f}x")
    ver = subprocess.run(["/usr/bin/docker", "-H", "unix://" + a.docker_sock, "version", "--format",
                          "{{.Server.Version}}"], capture_output=True, text=True).stdout.strip()
    print(f"dockerd {ver}; " + "; ".join(
        f"{n}: " + (subprocess.run([p, "--version"], capture_output=True, text=True).stdout.splitlines() or ["?"])[0]
        for n, p in runtimes.items()))


if __name__ == "__main__":
    main()
