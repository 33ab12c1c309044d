"""Process helpers: free ports, the process tree under a PID, stopping processes by PID."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import time

PR_SET_PDEATHSIG = 1


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """n distinct ports that were free a moment ago (all held open together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the proxy (node) binds: a port whose last connections are in TIME_WAIT is free for a restart
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    """preexec_fn: get SIGTERM when devhub dies (even by SIGKILL), so nothing is left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, starttime) of a live process, None if gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2:].split()
    state, ppid, starttime = rest[0], int(rest[1]), int(rest[19])
    if state == "Z":
        return None
    return ppid, starttime


def descendants(root: int) -> list[tuple[int, int]]:
    """[(pid, starttime)] of every live descendant of ``root`` (children, grandchildren, ...)."""
    children: dict[int, list[tuple[int, int]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _stat(int(name))
        if st:
            children.setdefault(st[0], []).append((int(name), st[1]))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child[0])
    return out


def alive(pid: int, starttime: int | None = None) -> bool:
    st = _stat(pid)
    return st is not None and (starttime is None or st[1] == starttime)


def stop_pids(procs: list[tuple[int, int]], grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL after ``grace`` seconds, the given (pid, starttime) still alive.

    The start time guards against a PID that was reused by an unrelated process.
    Returns the PIDs that had to be killed.
    """
    live = [p for p in procs if alive(*p)]
    for pid, _ in live:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(*p) for p in live):
        time.sleep(0.1)
    killed = []
    for pid, st in live:
        if alive(pid, st):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    return killed
