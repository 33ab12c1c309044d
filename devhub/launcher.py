"""Start devhub as a child process, wait until it is ready, stop it: the one start-up of the tests, the
benchmark and the demo.

Standard library only: the tests and the benchmark run in .venv-test and the demo in .venv, while devhub runs in
.venv-hub (.venv-hub5, .venv-hub4: the older hubs). ``DevHubProcess.launch(workdir, users="alice,bob", sharing=True,
hub_version="6.1")`` starts ``.venv-hub/bin/python -m devhub`` with the keyword arguments as its options (``--users alice,bob --sharing``;
True: the flag, None/False: left out, a list: comma-separated); ``wait_ready()`` returns the parsed ready file.
devhub tells its readiness through a pipe (``--ready-fd``): a line when the ready file is written, end-of-file
when it exits, so the wait is one ``select`` bounded by the time left.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path

from devhub.stop import die_with_parent, stop_processes

ROOT = Path(__file__).resolve().parent.parent
# The hubs ./run.sh test sets up, by version (major.minor), each in a venv of its own (requirements-hub*.txt).
HUB_VENVS = {"6.1": ".venv-hub", "5.5": ".venv-hub5", "4.1": ".venv-hub4"}
DEFAULT_HUB = "6.1"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0  # devhub gives its hub 12 s, then 5 s to what is left of the hub's processes

# devhub's options (python -m devhub --help) that the keyword arguments may name.
OPTIONS = frozenset({
    "port", "users", "authenticator", "sharing", "iopub_data_rate_limit", "base_url", "no_start", "spawn_fail",
    "spawn_reject", "spawn_delay", "record_auth", "oauth_client", "oauth_port", "oauth_require_pkce", "send_ca",
})


class DevHubFailed(RuntimeError):
    """devhub exited or timed out before it was ready; the message has the ends of its output and of hub.log."""


def arguments(**options) -> list[str]:
    """The command-line options of devhub for keyword arguments."""
    args = []
    for name, value in options.items():
        if name not in OPTIONS:
            raise TypeError(f"devhub has no option {name!r} (one of {', '.join(sorted(OPTIONS))})")
        flag = "--" + name.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, ",".join(value) if isinstance(value, (list, tuple)) else str(value)]
    return args


def hub_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment without the caller's venv and Jupyter settings: the hub is the same from every caller."""
    return {k: v for k, v in environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("JUPYTER")}


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(none)"


class DevHubProcess:
    """One devhub child process; ``info`` is its ready dict once ``wait_ready`` returned."""

    def __init__(self, proc: subprocess.Popen, workdir: Path, ready_file: Path, output: Path, ready_pipe: int):
        self.proc, self.workdir, self.ready_file, self.output = proc, workdir, ready_file, output
        self.ready_pipe: int | None = ready_pipe
        self.started = time.monotonic()
        self.info: dict | None = None

    @classmethod
    def launch(cls, workdir: Path, *, output: Path | None = None, ready_file: Path | None = None,
               hub_version: str = DEFAULT_HUB, **options) -> DevHubProcess:
        """Start devhub on ``workdir`` (created; output to ``output``, default workdir/devhub.out) with the
        JupyterHub of ``hub_version`` (a key of HUB_VENVS)."""
        if hub_version not in HUB_VENVS:
            raise TypeError(f"no hub venv for JupyterHub {hub_version!r} (one of {', '.join(HUB_VENVS)})")
        python = ROOT / HUB_VENVS[hub_version] / "bin" / "python"
        if not Path(python).exists():
            raise DevHubFailed(f"{python} missing: run `./run.sh test` or `./run.sh demo` once to build it")
        workdir = Path(workdir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        ready_file = Path(ready_file or workdir / "ready.json")
        output = Path(output or workdir / "devhub.out")
        read_end, write_end = os.pipe()
        cmd = [str(python), "-m", "devhub", "--workdir", str(workdir), "--ready-file", str(ready_file),
               "--ready-fd", str(write_end), *arguments(**options)]
        try:
            with open(output, "wb") as out:
                proc = subprocess.Popen(cmd, cwd=ROOT, env=hub_environment(dict(os.environ)),
                                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        pass_fds=(write_end,),
                                        start_new_session=True,  # a terminal's Ctrl-C: we stop it, once
                                        preexec_fn=die_with_parent)  # and devhub stops its hub
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        return cls(proc, workdir, ready_file, output, read_end)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict:
        """The ready dict, once devhub has written it; DevHubFailed when devhub exits first or after ``timeout``
        seconds from the launch (then it is stopped)."""
        if self.info is not None:
            return self.info
        remaining = max(0.0, self.started + timeout - time.monotonic())
        readable, _, _ = select.select([self.ready_pipe], [], [], remaining)
        said = os.read(self.ready_pipe, 64) if readable else b""
        os.close(self.ready_pipe)
        self.ready_pipe = None
        if not said:
            why = (f"exited with status {self.proc.wait()}" if readable
                   else f"was not ready after {timeout:.0f} s (stopped: status {self.stop()})")
            raise DevHubFailed(f"devhub {why}; its output ({self.output}):\n{tail(self.output)}\n"
                               f"hub.log:\n{tail(self.workdir / 'hub.log')}")
        self.info = json.loads(self.ready_file.read_text())  # written (atomically) before the line
        self.info["launcher_start_seconds"] = round(time.monotonic() - self.started, 2)
        return self.info

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM devhub (it stops its hub, servers and proxy), SIGKILL after ``timeout``; its exit status."""
        return stop_all([self], timeout)[0]


def stop_all(hubs: list[DevHubProcess], timeout: float = STOP_TIMEOUT) -> list[int]:
    """Stop several in parallel; their exit statuses."""
    for hub in hubs:
        if hub.ready_pipe is not None:
            os.close(hub.ready_pipe)
            hub.ready_pipe = None
    return stop_processes([hub.proc for hub in hubs], timeout, sig=signal.SIGTERM)


def start(workdir: Path, *, timeout: float = READY_TIMEOUT, **kwargs) -> DevHubProcess:
    """Launch and wait until ready (``.info``)."""
    hub = DevHubProcess.launch(workdir, **kwargs)
    hub.wait_ready(timeout)
    return hub
