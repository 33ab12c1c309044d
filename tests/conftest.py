"""Shared pytest fixtures."""

# ---------------------------------------------------------------------------------------------
# devhub fixtures: a real local JupyterHub (python -m devhub, run by the hub venv's python).
#
# The test process runs in another venv, so this block uses only the standard library, pytest
# and devhub.stop (standard library only): it does not import jupyterhub or the rest of devhub.
#
#   hub        (session) the default hub: user alice with a running server; the parsed ready
#              file: pid, hub_url, host, port, tls_name, ca_file, base_url, hub_api_internal,
#              admin_token, users{name: {token, password (None with authenticator="null"),
#              server_url}}, authenticator, sharing, workdir, log_file, ...
#   start_hub  (session) factory: start_hub(base_url="/jupyter/", iopub_data_rate_limit=1e9,
#              users="alice,bob", no_start=False, port=None, spawn_fail="bob",
#              spawn_delay="carol=30", authenticator="null", sharing=True)
#              -> another hub's ready dict.
#              start_hub.launch(...) / start_hub.wait(handle) start several at once;
#              start_hub.stop(info) stops one early and returns devhub's exit code.
#              Every hub is stopped at the end of the session.
# ---------------------------------------------------------------------------------------------
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

pytest_plugins = ["bridge_process"]  # its start_bridge fixture, for every test module

from devhub.stop import die_with_parent, stop_processes

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HUB_PYTHON = PROJECT_ROOT / ".venv-hub" / "bin" / "python"
HUB_READY_TIMEOUT = 120.0
HUB_STOP_TIMEOUT = 20.0
HUB_TESTS = PROJECT_ROOT / "tests" / "hub"


def pytest_collection_modifyitems(config, items):
    """Every test under tests/hub/ is marked `hub` (it starts real processes): `-m "not hub"` runs the rest."""
    for item in items:
        if HUB_TESTS in item.path.parents:
            item.add_marker(pytest.mark.hub)


def _tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no output)"


class _DevHubHandle:
    def __init__(self, proc, workdir, ready_file, output, started):
        self.proc, self.workdir, self.ready_file, self.output = proc, workdir, ready_file, output
        self.started = started
        self.info = None


class DevHubLauncher:
    """Starts devhub processes and stops them all at close()."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._handles = []

    def launch(self, *, base_url=None, iopub_data_rate_limit=None, users=None, no_start=False,
               port=None, name="devhub", spawn_fail=None, spawn_delay=None, workdir=None,
               authenticator=None, sharing=False):
        if not HUB_PYTHON.exists():
            pytest.fail(f"{HUB_PYTHON} missing: run `python3.12 -m venv .venv-hub && "
                        f".venv-hub/bin/pip install -r requirements-hub.txt && npm ci --prefix devhub` "
                        f"(./run.sh does this)", pytrace=False)
        workdir = Path(workdir) if workdir else self._tmp.mktemp(name)  # a hub's workdir again: restart it
        ready_file = workdir / "ready.json"
        cmd = [str(HUB_PYTHON), "-m", "devhub", "--workdir", str(workdir),
               "--ready-file", str(ready_file)]
        if base_url is not None:
            cmd += ["--base-url", base_url]
        if iopub_data_rate_limit is not None:
            cmd += ["--iopub-data-rate-limit", str(iopub_data_rate_limit)]
        if users is not None:
            cmd += ["--users", users if isinstance(users, str) else ",".join(users)]
        if no_start:
            cmd.append("--no-start")
        if port:
            cmd += ["--port", str(port)]
        if spawn_fail:
            cmd += ["--spawn-fail", spawn_fail]
        if spawn_delay:
            cmd += ["--spawn-delay", spawn_delay]
        if authenticator:
            cmd += ["--authenticator", authenticator]
        if sharing:
            cmd.append("--sharing")
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        output = workdir / "devhub.out"
        with open(output, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT,
                                    preexec_fn=die_with_parent)  # devhub then stops its hub
        handle = _DevHubHandle(proc, workdir, ready_file, output, time.monotonic())
        self._handles.append(handle)
        return handle

    def wait(self, handle, timeout=HUB_READY_TIMEOUT):
        deadline = handle.started + timeout
        while not handle.ready_file.exists():
            if handle.proc.poll() is not None:
                pytest.fail(f"devhub exited with status {handle.proc.returncode} before it was "
                            f"ready; its output ({handle.output}):\n{_tail(handle.output)}\n"
                            f"hub.log:\n{_tail(handle.workdir / 'hub.log')}", pytrace=False)
            if time.monotonic() > deadline:
                self._stop(handle)
                pytest.fail(f"devhub not ready after {timeout:.0f}s; its output:\n"
                            f"{_tail(handle.output)}\nhub.log:\n{_tail(handle.workdir / 'hub.log')}",
                            pytrace=False)
            time.sleep(0.1)
        info = json.loads(handle.ready_file.read_text())  # written atomically by devhub
        info["fixture_start_seconds"] = round(time.monotonic() - handle.started, 2)
        handle.info = info
        return info

    def __call__(self, **kwargs):
        return self.wait(self.launch(**kwargs))

    def stop(self, info):
        """Stop the hub of this ready dict now; returns devhub's exit status."""
        for handle in self._handles:
            if handle.info is not None and handle.info["pid"] == info["pid"]:
                return self._stop(handle)
        raise KeyError(f"no devhub with pid {info['pid']}")

    @staticmethod
    def _stop(handle):
        return stop_processes([handle.proc], HUB_STOP_TIMEOUT)[0]

    def close(self):
        stop_processes([handle.proc for handle in self._handles], HUB_STOP_TIMEOUT)  # in parallel


@pytest.fixture(scope="session", autouse=True)
def no_stored_login(tmp_path_factory):
    """The developer's own `./run.sh login` must not reach the tests' bridges and checks (they take what the
    environment does not give from it): they all look for it in an empty folder."""
    saved = {name: os.environ.get(name) for name in ("XDG_CONFIG_HOME", "JUPYTERHUB_BRIDGE_HOME")}
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    os.environ.pop("JUPYTERHUB_BRIDGE_HOME", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def start_hub(tmp_path_factory):
    launcher = DevHubLauncher(tmp_path_factory)
    try:
        yield launcher
    finally:
        launcher.close()


@pytest.fixture(scope="session")
def hub(start_hub):
    return start_hub(name="hub")

# --------------------------------------- end of devhub fixtures -------------------------------
