"""The bridge as a user runs it: `./run.sh [web] ...` in a subprocess, in front of a devhub hub."""

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from devhub.stop import stop_processes

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hub_env(hub: dict, user: str = "alice") -> dict[str, str]:
    """The settings that point the bridge at a devhub hub, as its README tells a user to set them."""
    return {
        "JUPYTER_SERVER_IP_OR_NAME": hub["host"], "JUPYTER_SERVER_PORT": str(hub["port"]),
        "JUPYTER_SERVER_NAME": hub["tls_name"], "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
        "JUPYTER_USERNAME": user, "JUPYTERHUB_BASE_URL": hub["base_url"],
    }


class Bridge:
    def __init__(self, workdir: Path, env: dict[str, str], args: list[str], subcommand: list[str],
                 port: int | None = None):
        """`port`: the one the bridge's settings give it (a profile's stored port); else a free one, set."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / f"bridge-{self.port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
        full_env["JUPYTER_PROXY_IP_OR_NAME"] = "127.0.0.1"
        if not port:
            full_env["JUPYTER_PROXY_PORT"] = str(self.port)
        full_env.update(env)
        full_env["PYTHONUNBUFFERED"] = "1"  # mitmproxy's log reaches the file as it is written
        self.env = full_env
        self.web = subcommand == ["web"]
        if self.web and not any("web_port=" in a for a in args):
            args = [*args, "--set", f"web_port={free_port()}"]
        with open(self.log_file, "wb") as log:
            self.proc = subprocess.Popen([str(ROOT / "run.sh"), *subcommand, *args], env=full_env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_listening(self, timeout: float = 30) -> "Bridge":
        # mitmproxy accepts connections before its start-up has ended, and exits when a request then meets its
        # unfinished TLS set-up: wait for the lines it logs when it is done.
        started = ["reverse proxy to", "Web server listening at"] if self.web else ["reverse proxy to"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the bridge exited with {self.proc.returncode}:\n{self.log()}", pytrace=False)
            if all(line in self.log() for line in started):
                socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
                return self
            time.sleep(0.1)
        pytest.fail(f"the bridge did not listen within {timeout} s:\n{self.log()}", pytrace=False)

    @property
    def token(self) -> str:
        """The local secret, as the banner prints it in the connect URL."""
        for line in self.log().splitlines():
            if "paste into PyCharm:" in line and "?token=" in line:
                return line.rsplit("?token=", 1)[1].strip()
        raise AssertionError(f"no connect URL with a token in the banner:\n{self.log()}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> int:
        return stop_processes([self.proc], 20, group=True)[0]  # run.sh and what it started


@pytest.fixture(scope="session")
def start_bridge(tmp_path_factory):
    """start_bridge(hub, env={...}, args=[...], web=False, wait=True, port=None) -> a running Bridge, stopped at the
    end."""
    workdir = tmp_path_factory.mktemp("bridge")
    started = []

    def start(hub=None, env=None, args=(), web=False, wait=True, user="alice", port=None):
        b = Bridge(workdir, {**(hub_env(hub, user) if hub else {}), **(env or {})}, list(args),
                   ["web"] if web else [], port)
        started.append(b)
        return b.wait_listening() if wait else b

    yield start
    for b in started:
        b.stop()
