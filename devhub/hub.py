"""DevHub: start JupyterHub on a work directory, make users, tokens and servers, write the ready file, stop."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from devhub import ADMIN_SERVICE, TLS_NAME
from devhub.config import auth_record, hub_settings, missing_features, oauth_client, write_config
from devhub.hubapi import HubAPI, HubAPIError
from devhub.ports import free_ports, port_is_free
from devhub.procs import process_tree, stop_leftovers
from devhub.stop import die_with_parent, stop_processes
from devhub.tls import PublicSide, make_certs

PACKAGE_DIR = Path(__file__).resolve().parent
CHP = PACKAGE_DIR / "node_modules" / ".bin" / "configurable-http-proxy"

START_TIMEOUT = 120.0  # hub up + all servers ready
STOP_TIMEOUT = 12.0  # hub's own cleanup after SIGTERM (its servers get 5+3+2 s at most)


class Stopped(Exception):
    """SIGTERM/SIGINT arrived."""


class Failed(Exception):
    """Start-up failed; the message is printed as one line."""


def say(msg: str) -> None:
    print(msg, flush=True)


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)  # 0600: tokens inside
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def log_tail(log: Path, n: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def hub_version() -> str:
    """The version of the JupyterHub in this venv (devhub runs the hub of the venv it runs in)."""
    from importlib.metadata import version
    return version("jupyterhub")


class DevHub:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.workdir: Path = args.workdir.resolve()
        self.stop_event = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "hub.log"
        self.ready_file: Path | None = args.ready_file.resolve() if args.ready_file else None
        self.deadline = 0.0
        self.oauth = oauth_client(args.oauth_client, args.oauth_port, args.oauth_require_pkce)

    # --- waiting helpers -------------------------------------------------------------------
    def check(self) -> None:
        if self.stop_event.is_set():
            raise Stopped()
        if self.proc is not None and self.proc.poll() is not None:
            raise Failed(f"jupyterhub exited with status {self.proc.returncode} during start-up; "
                         f"last lines of {self.log_path}:\n{log_tail(self.log_path)}")

    def wait_for(self, what: str, fn, interval: float = 0.2):
        last = None
        while True:
            self.check()
            try:
                result = fn()
                if result:
                    return result
            except (OSError, http.client.HTTPException, HubAPIError, ValueError) as e:
                last = e
            if time.monotonic() > self.deadline:
                raise Failed(f"timed out waiting for {what} (last error: {last}); "
                             f"see {self.log_path}:\n{log_tail(self.log_path)}")
            self.stop_event.wait(interval)

    # --- start ---------------------------------------------------------------------------
    def start(self) -> dict:
        t0 = time.monotonic()
        self.deadline = t0 + START_TIMEOUT
        self._prepare()
        certs = make_certs(self.workdir, TLS_NAME, send_ca=self.args.send_ca)
        ports = self._ports()
        admin_token = secrets.token_hex(32)
        password = "devhub-" + secrets.token_urlsafe(9) if self.args.authenticator == "password" else None
        say(f"devhub: starting JupyterHub on https://127.0.0.1:{ports['port']}{self.args.base_url}"
            f" (log {self.log_path})")
        self._launch(self._write_config(ports, certs, admin_token, password))
        api = HubAPI(f"http://127.0.0.1:{ports['hub_port']}{self.args.base_url}hub/api", admin_token)
        self.wait_for("the hub API", api.info)
        public = PublicSide(ports["port"], certs["ca_file"])
        self.wait_for("the public TLS proxy", lambda: public.status(f"{self.args.base_url}hub/api") == 200)
        users = self._make_users(api, ports["port"], password)
        if not self.args.no_start:
            self._start_servers(api, public, users)
        info = self._ready_info(ports, certs, api, admin_token, users, round(time.monotonic() - t0, 2))
        if self.ready_file:
            write_json_atomic(self.ready_file, info)
        if self.args.ready_fd is not None:  # after the file: the launcher reads it when the line arrives
            with os.fdopen(self.args.ready_fd, "wb") as pipe:
                pipe.write(b"ready\n")
        say(f"devhub ready: {info['hub_url']} (TLS name {TLS_NAME}, CA {info['ca_file']})"
            f" in {info['start_seconds']}s")
        return info

    def _prepare(self) -> None:
        if not os.access(CHP, os.X_OK):
            raise Failed(f"configurable-http-proxy not found at {CHP}; run: npm ci --prefix devhub")
        if why := missing_features(hub_version(), self.args):
            raise Failed(why)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.workdir.chmod(0o700)  # settings.json, the key and the ready file hold secrets
        if self.ready_file:
            self.ready_file.unlink(missing_ok=True)

    def _ports(self) -> dict[str, int]:
        """The public port (--port or a free one), the hub's and CHP's API ports."""
        port = self.args.port
        if port and not port_is_free(port):
            raise Failed(f"port {port} on 127.0.0.1 is in use")
        free = [p for p in free_ports(3) if p != port]
        return {"port": port or free[2], "hub_port": free[0], "proxy_api_port": free[1]}

    def _write_config(self, ports: dict, certs: dict, admin_token: str, password: str | None) -> Path:
        venv_bin = str(Path(sys.executable).parent)  # not resolved: keep the venv's bin
        singleuser = Path(venv_bin) / "jupyterhub-singleuser"
        if not singleuser.exists():
            raise Failed(f"{singleuser} missing; install requirements-hub.txt into this venv")
        a = self.args
        options = {"authenticator": a.authenticator, "users": a.users, "sharing": a.sharing,
                   "iopub_data_rate_limit": a.iopub_data_rate_limit, "spawn_fail": a.spawn_fail,
                   "spawn_reject": a.spawn_reject,
                   "spawn_delay": a.spawn_delay, "record_auth": a.record_auth, "oauth_client": self.oauth}
        commands = {"chp_command": str(CHP), "singleuser_command": str(singleuser), "venv_bin": venv_bin}
        return write_config(self.workdir, hub_settings(
            workdir=self.workdir, ports=ports, base_url=a.base_url, commands=commands, certs=certs,
            admin_token=admin_token, password=password, options=options))

    def _launch(self, config: Path) -> None:
        env = dict(os.environ)
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.pop("JUPYTERHUB_API_TOKEN", None)
        with open(self.log_path, "ab", buffering=0) as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config)],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches devhub only; we stop the hub
                preexec_fn=die_with_parent,
            )

    def _make_users(self, api: HubAPI, port: int, password: str | None) -> dict[str, dict]:
        users = {}
        for name in self.args.users:
            api.ensure_user(name)
            users[name] = {
                "token": api.new_token(name, note="devhub"),
                "password": password,  # None: the hub's sign-in takes no password (--authenticator null)
                "server_url": f"https://127.0.0.1:{port}{self.args.base_url}user/{name}/",
                "auth_record": str(auth_record(self.workdir, name)) if self.args.record_auth else None,
            }
        return users

    def _start_servers(self, api: HubAPI, public: PublicSide, users: dict[str, dict]) -> None:
        for name in users:
            try:
                api.start_server(name)
            except HubAPIError as e:
                raise Failed(f"starting {name}'s server: {e}") from None
        for name, user in users.items():
            self.wait_for(f"{name}'s server", lambda n=name: self._server_ready(api, n), interval=0.25)
            # the route is in the proxy once ready is set; check the whole path once
            self.wait_for(f"{name}'s server through the proxy", lambda n=name, t=user["token"]: public.status(
                f"{self.args.base_url}user/{n}/api/status", t) == 200)

    @staticmethod
    def _server_ready(api: HubAPI, name: str) -> bool:
        server = (api.user(name).get("servers") or {}).get("")
        if server is None:
            # no pending spawn and no server: the spawn failed
            raise Failed(f"{name}'s server is not running (spawn failed?)")
        return bool(server.get("ready"))

    def _ready_info(self, ports: dict, certs: dict, api: HubAPI, admin_token: str, users: dict,
                    seconds: float) -> dict:
        a, port = self.args, ports["port"]
        return {
            "pid": os.getpid(), "hub_pid": self.proc.pid,
            "hub_url": f"https://127.0.0.1:{port}", "public_url": f"https://127.0.0.1:{port}{a.base_url}",
            "host": "127.0.0.1", "port": port, "tls_name": TLS_NAME, "ca_file": str(certs["ca_file"]),
            "base_url": a.base_url, "hub_version": hub_version(), "hub_api_internal": api.api_url, "hub_port": ports["hub_port"],
            "proxy_api_port": ports["proxy_api_port"], "admin_service": ADMIN_SERVICE,
            "admin_token": admin_token, "authenticator": a.authenticator, "sharing": a.sharing,
            "users": users, "servers_started": not a.no_start, "iopub_data_rate_limit": a.iopub_data_rate_limit,
            "record_auth": a.record_auth, "oauth_client": self.oauth,
            "workdir": str(self.workdir), "log_file": str(self.log_path), "start_seconds": seconds,
        }

    # --- run / stop ----------------------------------------------------------------------
    def run(self) -> int:
        while not self.stop_event.wait(0.5):
            if self.proc.poll() is not None:
                say(f"devhub: jupyterhub exited unexpectedly with status {self.proc.returncode}; "
                    f"see {self.log_path}")
                return 1
        return 0

    def stop(self) -> None:
        """SIGTERM the hub (it stops its servers and CHP itself); then stop whatever of its tree is left."""
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid)
        if stop_processes([self.proc], STOP_TIMEOUT) == [-signal.SIGKILL]:
            say(f"devhub: jupyterhub did not stop in {STOP_TIMEOUT:.0f}s; killed it")
        leftover = stop_leftovers(tree, grace=5.0)
        if leftover:
            say(f"devhub: killed leftover processes {leftover}")
        if self.ready_file:
            self.ready_file.unlink(missing_ok=True)
