"""Shared helpers of the bench/ scripts."""
import os
import statistics
import tempfile
import time


def spawn_and_wait(argv):
    """Returns (wall ms, cpu ms of the process tree, exit code, stderr text)."""
    null = os.open(os.devnull, os.O_RDWR)
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
        (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
    _, status, ru = os.wait4(pid, 0)
    wall = (time.perf_counter() - t0) * 1e3
    os.close(null)
    err.seek(0)
    text = err.read().decode(errors="replace").strip()
    err.close()
    return wall, (ru.ru_utime + ru.ru_stime) * 1e3, os.waitstatus_to_exitcode(status), text


def report(runs, warmup, results, failures, first_column, extra=lambda name: ""):
    """Prints the table of interleaved runs (rows of (wall ms, cpu ms) per name) and up to three
    failures per name; returns {name: (wall mean, wall median, cpu mean, cpu median)}."""
    print(f"{runs} runs each, interleaved, after {warmup} warm-up runs; times in ms")
    print(f"{first_column:8s} {'wall mean':>10s} {'wall median':>12s} {'cpu mean':>10s} {'cpu median':>11s}")
    summary = {}
    for name, rows in results.items():
        if not rows:
            print(f"{name:8s} no successful run")
            continue
        walls, cpus = [r[0] for r in rows], [r[1] for r in rows]
        s = summary[name] = (statistics.mean(walls), statistics.median(walls),
                             statistics.mean(cpus), statistics.median(cpus))
        print(f"{name:8s} {s[0]:10.2f} {s[1]:12.2f} {s[2]:10.2f} {s[3]:11.2f}  {extra(name)}({len(rows)} ok)")
    for name, errs in failures.items():
        for e in errs[:3]:
            print(f"{name} failed: {e}")
        if len(errs) > 3:
            print(f"{name}: {len(errs) - 3} more failures")
    return summary
