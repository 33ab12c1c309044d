"""Starting and stopping child processes, for devhub, the tests and the benchmark alike.

Standard library only: the tests and the benchmark run in .venv-test, which has neither psutil nor jupyterhub.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """preexec_fn: get SIGTERM when the parent dies (even by SIGKILL), so nothing is left behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


def _send(proc: subprocess.Popen, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def stop_processes(procs: list[subprocess.Popen], timeout: float, *, group: bool = False,
                   sig: int = signal.SIGTERM) -> list[int]:
    """Send ``sig`` to every process still running (to its whole process group with ``group``: one started
    with start_new_session=True), give them ``timeout`` seconds together, then SIGKILL what is left.

    All are signalled first, so that several stop in parallel. Returns their exit statuses.
    """
    running = [p for p in procs if p.poll() is None]
    for p in running:
        _send(p, sig, group)
    deadline = time.monotonic() + timeout
    for p in running:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _send(p, signal.SIGKILL, group)
            p.wait()
    return [p.returncode for p in procs]
