"""The hub's process tree, with psutil (the hub venv has it; the tests and the benchmark use devhub.stop)."""

from __future__ import annotations

import psutil


def process_tree(pid: int) -> list[psutil.Process]:
    """Every live descendant of ``pid``: the servers and kernels run in sessions of their own."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_leftovers(procs: list[psutil.Process], grace: float) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds, those of ``procs`` still running (psutil will not signal a
    PID that now belongs to another process). Returns the PIDs that had to be killed."""
    running = [p for p in procs if p.is_running()]
    for p in running:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(running, timeout=grace)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return [p.pid for p in alive]
