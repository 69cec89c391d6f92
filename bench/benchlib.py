"""Shared helpers of the bench/ scripts."""
import os
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
