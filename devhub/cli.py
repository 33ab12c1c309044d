"""``python -m devhub``: start a local JupyterHub with TLS, users, tokens and running servers."""

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
from devhub.config import HubSettings, render
from devhub.hubapi import HubAPI, HubAPIError
from devhub.procs import descendants, die_with_parent, free_ports, port_is_free, stop_pids
from devhub.tls import NamedHTTPSConnection, client_context, make_certs

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


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devhub", description=__doc__)
    p.add_argument("--workdir", required=True, type=Path, help="state, certificates, logs (created)")
    p.add_argument("--port", type=int, default=0, help="public TLS port on 127.0.0.1 (0: a free one)")
    p.add_argument("--ready-file", type=Path, help="JSON written (atomically) once everything is ready")
    p.add_argument("--users", default="alice", help="comma-separated user names (default: alice)")
    p.add_argument("--iopub-data-rate-limit", type=float, default=None, metavar="BYTES_PER_S",
                   help="ZMQChannelsWebsocketConnection.iopub_data_rate_limit of the servers")
    p.add_argument("--base-url", default="/", help="JupyterHub base_url (default /)")
    p.add_argument("--no-start", action="store_true", help="do not start the users' servers")
    p.add_argument("--spawn-fail", default="", metavar="USERS", help="comma-separated users whose spawns fail")
    p.add_argument("--spawn-delay", default="", metavar="USER=SECONDS,...",
                   help="users whose spawns wait this many seconds first")
    a = p.parse_args(argv)
    a.users = [u.strip() for u in a.users.split(",") if u.strip()]
    a.spawn_fail = [u.strip() for u in a.spawn_fail.split(",") if u.strip()]
    try:
        a.spawn_delay = {u.strip(): float(sec) for u, _, sec in
                         (item.partition("=") for item in a.spawn_delay.split(",") if item.strip())}
    except ValueError:
        p.error("--spawn-delay: USER=SECONDS,...")
    if not a.users:
        p.error("--users: at least one user name")
    base = "/" + a.base_url.strip("/") + "/"
    a.base_url = "/" if base == "//" else base
    return a


def write_json_atomic(path: Path, data: dict) -> None:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)  # tokens inside
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def log_tail(log: Path, n: int = 25) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


class DevHub:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.workdir: Path = args.workdir.resolve()
        self.stop_event = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "hub.log"
        self.ready_file: Path | None = args.ready_file.resolve() if args.ready_file else None

    # --- waiting helpers -------------------------------------------------------------------
    def check(self) -> None:
        if self.stop_event.is_set():
            raise Stopped()
        if self.proc is not None and self.proc.poll() is not None:
            raise Failed(f"jupyterhub exited with status {self.proc.returncode} during start-up; "
                         f"last lines of {self.log_path}:\n{log_tail(self.log_path)}")

    def wait_for(self, what: str, fn, deadline: float, interval: float = 0.2):
        last = None
        while True:
            self.check()
            try:
                result = fn()
                if result:
                    return result
            except (OSError, http.client.HTTPException, HubAPIError, ValueError) as e:
                last = e
            if time.monotonic() > deadline:
                raise Failed(f"timed out waiting for {what} (last error: {last}); "
                             f"see {self.log_path}:\n{log_tail(self.log_path)}")
            self.stop_event.wait(interval)

    # --- start ---------------------------------------------------------------------------
    def start(self) -> dict:
        a = self.args
        t0 = time.monotonic()
        deadline = t0 + START_TIMEOUT
        if not os.access(CHP, os.X_OK):
            raise Failed(f"configurable-http-proxy not found at {CHP}; run: npm ci --prefix devhub")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.ready_file and self.ready_file.exists():
            self.ready_file.unlink()
        certs = make_certs(self.workdir, TLS_NAME)

        if a.port:
            if not port_is_free(a.port):
                raise Failed(f"port {a.port} on 127.0.0.1 is in use")
            hub_port, api_port = [p for p in free_ports(3) if p != a.port][:2]
            port = a.port
        else:
            port, hub_port, api_port = free_ports(3)

        admin_token = secrets.token_hex(32)
        password = "devhub-" + secrets.token_urlsafe(9)
        venv_bin = str(Path(sys.executable).parent)  # not resolved: keep the venv's bin
        singleuser = Path(venv_bin) / "jupyterhub-singleuser"
        if not singleuser.exists():
            raise Failed(f"{singleuser} missing; install requirements-hub.txt into this venv")
        settings = HubSettings(
            workdir=self.workdir, port=port, hub_port=hub_port, proxy_api_port=api_port,
            base_url=a.base_url, chp_command=str(CHP), singleuser_command=str(singleuser),
            venv_bin=venv_bin, cert_file=certs["cert_file"], key_file=certs["key_file"],
            admin_token=admin_token, password=password, users=a.users,
            iopub_data_rate_limit=a.iopub_data_rate_limit, spawn_fail=a.spawn_fail, spawn_delay=a.spawn_delay,
        )
        config_path = self.workdir / "jupyterhub_config.py"
        fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(render(settings))

        env = dict(os.environ)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "/usr/bin:/bin")
        env.pop("JUPYTERHUB_API_TOKEN", None)
        say(f"devhub: starting JupyterHub on https://127.0.0.1:{port}{a.base_url} (log {self.log_path})")
        log = open(self.log_path, "ab", buffering=0)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(config_path)],
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches devhub only; we stop the hub
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()

        api_url = f"http://127.0.0.1:{hub_port}{a.base_url}hub/api"
        api = HubAPI(api_url, admin_token)
        self.wait_for("the hub API", api.info, deadline)
        ctx = client_context(certs["ca_file"])

        def public(path: str, token: str | None = None) -> int:
            conn = NamedHTTPSConnection("127.0.0.1", port, tls_name=TLS_NAME, context=ctx, timeout=10)
            try:
                conn.request("GET", path, headers={"Authorization": f"token {token}"} if token else {})
                resp = conn.getresponse()
                resp.read()
                return resp.status
            finally:
                conn.close()

        self.wait_for("the public TLS proxy", lambda: public(f"{a.base_url}hub/api") == 200, deadline)

        users: dict[str, dict] = {}
        for name in a.users:
            api.ensure_user(name)
            token = api.new_token(name, note="devhub")
            users[name] = {
                "token": token,
                "password": password,
                "server_url": f"https://127.0.0.1:{port}{a.base_url}user/{name}/",
            }
        if not a.no_start:
            for name in a.users:
                try:
                    api.start_server(name)
                except HubAPIError as e:
                    raise Failed(f"starting {name}'s server: {e}") from None
            for name in a.users:
                self.wait_for(f"{name}'s server", lambda n=name: self._server_ready(api, n), deadline,
                              interval=0.25)
                # the route is in the proxy once ready is set; check the whole path once
                self.wait_for(f"{name}'s server through the proxy",
                              lambda n=name: public(f"{a.base_url}user/{n}/api/status",
                                                    users[n]["token"]) == 200, deadline)

        info = {
            "pid": os.getpid(),
            "hub_pid": self.proc.pid,
            "hub_url": f"https://127.0.0.1:{port}",
            "public_url": f"https://127.0.0.1:{port}{a.base_url}",
            "host": "127.0.0.1",
            "port": port,
            "tls_name": TLS_NAME,
            "ca_file": str(certs["ca_file"]),
            "base_url": a.base_url,
            "hub_api_internal": api_url,
            "hub_port": hub_port,
            "proxy_api_port": api_port,
            "admin_service": ADMIN_SERVICE,
            "admin_token": admin_token,
            "users": users,
            "servers_started": not a.no_start,
            "iopub_data_rate_limit": a.iopub_data_rate_limit,
            "workdir": str(self.workdir),
            "log_file": str(self.log_path),
            "start_seconds": round(time.monotonic() - t0, 2),
        }
        if self.ready_file:
            write_json_atomic(self.ready_file, info)
        say(f"devhub ready: {info['hub_url']} (TLS name {TLS_NAME}, CA {info['ca_file']})"
            f" in {info['start_seconds']}s")
        return info

    @staticmethod
    def _server_ready(api: HubAPI, name: str) -> bool:
        server = (api.user(name).get("servers") or {}).get("")
        if server is None:
            # no pending spawn and no server: the spawn failed
            raise Failed(f"{name}'s server is not running (spawn failed?)")
        return bool(server.get("ready"))

    # --- run / stop ----------------------------------------------------------------------
    def run(self) -> int:
        while not self.stop_event.wait(0.5):
            if self.proc.poll() is not None:
                say(f"devhub: jupyterhub exited unexpectedly with status {self.proc.returncode}; "
                    f"see {self.log_path}")
                self.stop()
                return 1
        return 0

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        tree = descendants(proc.pid)  # servers, kernels, CHP: ours, stopped by PID if left over
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the hub stops its servers and CHP itself
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                say(f"devhub: jupyterhub did not stop in {STOP_TIMEOUT:.0f}s; killing it")
                proc.kill()
                proc.wait()
        leftover = stop_pids(tree, grace=5.0)
        if leftover:
            say(f"devhub: killed leftover processes {leftover}")
        if self.ready_file and self.ready_file.exists():
            try:
                self.ready_file.unlink()
            except OSError:
                pass


def main(argv=None) -> int:
    args = parse_args(argv)
    hub = DevHub(args)

    def on_signal(signum, frame):
        hub.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            hub.start()
        except Stopped:
            return 0
        except Failed as e:
            say(f"devhub: {e}")
            return 1
        return hub.run()
    finally:
        if hub.proc is not None:
            hub.stop()
            say("devhub: stopped")
