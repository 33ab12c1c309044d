"""A hostile hub for the tests: a small TLS server on 127.0.0.1 that answers like a hub, except for the crafted
answers a test sets (`Answers`), the `hostile` fixture that runs it (a pytest plugin, conftest.py), and `run_sh`, a
subcommand run against it with its peak RSS."""

import json
import os
import signal
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from bridge_process import ROOT
from bridge_process import hub_env

TLS_NAME = "hostile-hub"
USER = {"name": "alice", "kind": "user", "token_id": "a1",
        "scopes": ["access:servers!user=alice", "start:servers!user=alice", "read:servers!user=alice"]}
STOPPED = {"name": "alice", "servers": {"": {"name": "", "ready": False, "pending": None, "stopped": True}}}
SHARED_BY_BOB = {"server": {"name": "", "user": {"name": "bob"}, "ready": True, "url": "/user/bob/"}}
MB = 2**20
RUN_TIMEOUT = 60  # the old client ran until its start timeout (30 s here); the bounded one ends within seconds
PROMPT = 15.0
MAX_RSS_KB = 200 * 1024
# 50 000 nested arrays in UTF-16-LE, each after a string whose U+2200 is the bytes 00 22: a byte-reading depth
# check sees the brackets inside strings; json.loads(bytes) takes UTF-16 and raises RecursionError
DEEP_UTF16 = ('["\u2200",' + '["\u2200\u2200",' * 50_000 + "[]" + "]" * 50_001).encode("utf-16-le")
FLOOD = 200_000  # small valid progress events in one start


class Answers(BaseHTTPRequestHandler):
    """A hub's REST API, crafted where `server.crafted` says so."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        crafted, path = self.server.crafted, self.path.split("?")[0].rstrip("/")
        if path == "/hub/api" and crafted == "deep":
            self.send(b"[" * 200_000)
        elif path.startswith("/hub/api") and crafted == "deep-utf16":
            self.send(DEEP_UTF16)
        elif path == "/hub/api/users/alice/server/progress" and crafted == "progress-flood":
            self.send_flood()
        elif path == "/hub/api/users/alice" and crafted == "huge":
            self.stream(b'{"name": "alice", "servers": {}, "pad": "', 300 * MB, b'"}')
        elif path == "/hub/api/users/alice/server/progress" and crafted == "long-line":
            self.stream(b"data: ", 30 * MB, b"", content_type="text/event-stream")
        elif path.startswith("/user/alice/") and crafted == "huge-header":  # the server's answer, through the bridge
            self.raw(b"HTTP/1.1 200 OK\r\nX-Pad: ", 100 * MB, b"\r\nContent-Length: 0\r\n\r\n")
        elif path.startswith("/user/alice/") and crafted == "long-status-line":
            self.raw(b"HTTP/1.1 200 ", 200 * MB, b"\r\n\r\n")
        elif path == "/hub/api" and crafted == "sharing-bug":  # a version with the sharing bug 5.5.1 fixed
            self.send(json.dumps({"version": "5.4.0"}).encode())
        elif path == "/hub/api/users/alice/shared" and crafted == "sharing-bug":
            self.send(json.dumps({"items": [SHARED_BY_BOB]}).encode())
        else:
            found = {"/hub/api": {"version": "6.1.1"}, "/hub/api/user": USER, "/hub/api/users/alice": STOPPED,
                     "/hub/api/users/alice/shared": {"items": []}}.get(path)
            self.send(json.dumps(found or {"message": "Not Found"}).encode(), 200 if found else 404)

    def do_POST(self) -> None:
        self.send(b"", 202)  # a start under way

    def send_flood(self) -> None:
        """FLOOD progress events, each another line (its percentage), then ready."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        events = b"".join(b'data: {"progress": %d, "message": "x"}\n\n' % (i % 100) for i in range(FLOOD))
        try:
            self.wfile.write(events + b'data: {"progress": 100, "ready": true, "message": "ready"}\n\n')
        except OSError:
            pass
        self.close_connection = True

    def send(self, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def stream(self, head: bytes, size: int, tail: bytes, content_type: str = "application/json") -> None:
        """`head`, `size` bytes of 'x' and `tail`, written a MiB at a time (never built in memory)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(head) + size + len(tail)))
        self.end_headers()
        self.raw(head, size, tail)

    def raw(self, head: bytes, size: int, tail: bytes) -> None:
        """An answer's bytes as they are: `head`, `size` bytes of 'x' (a MiB at a time) and `tail`."""
        try:
            self.wfile.write(head)
            for _ in range(size // MB):
                self.wfile.write(b"x" * MB)
            self.wfile.write(tail)
        except OSError:
            pass  # the client hung up: what a bounded client does
        self.close_connection = True


class HostileHub(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext) -> None:
        super().__init__(("127.0.0.1", 0), Answers)
        self.tls, self.crafted = tls, ""

    def finish_request(self, request, client_address) -> None:
        # The handshake in the request's own thread: `check` also connects without TLS, and hangs up.
        try:
            request = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            return
        super().finish_request(request, client_address)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    ca = trustme.CA()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(TLS_NAME).configure_cert(tls)
    ca_file = tmp_path_factory.mktemp("hostile") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = HostileHub(tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, {"host": "127.0.0.1", "port": server.server_address[1], "tls_name": TLS_NAME,
                   "ca_file": str(ca_file), "base_url": "/"}
    server.shutdown()
    server.server_close()
    thread.join(10)


class PeakRss(threading.Thread):
    """The peak resident memory (KiB) of the Python that run.sh execs into, sampled from /proc every 10 ms. Not the
    child's rusage: that also counts this test process's memory at the fork, which the hostile hub (and, under
    pytest-xdist, the worker's earlier tests) make large."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.kib, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            try:
                if b"addon.commands" in Path(f"/proc/{self.pid}/cmdline").read_bytes():
                    status = Path(f"/proc/{self.pid}/status").read_text()
                    self.kib = max(self.kib, int(status.split("VmHWM:", 1)[1].split()[0]))
            except (OSError, IndexError, ValueError):  # not yet exec'd, or gone
                pass


def run_sh(hub: dict, tmp_path, *args: str, stdin: bytes = b"") -> tuple[int, str, float, int]:
    """./run.sh ARGS against the hub, `stdin` on its standard input: (exit status, stdout + stderr, seconds taken,
    peak RSS in KiB of the command's Python). Killed after RUN_TIMEOUT."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    env.update(hub_env(hub), JUPYTERHUB_API_TOKEN="t" * 32, JUPYTER_START_TIMEOUT="30",
               JUPYTER_PROXY_IP_OR_NAME="127.0.0.1", JUPYTER_PROXY_PORT="8123",
               JUPYTERHUB_BRIDGE_HOME=str(tmp_path / "bridge-home"))
    out = tmp_path / f"{args[0]}.out"
    t0 = time.monotonic()
    with open(out, "wb") as sink:
        proc = subprocess.Popen([str(ROOT / "run.sh"), *args], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.PIPE, start_new_session=True)
    proc.stdin.write(stdin)  # a token's worth: within the pipe's buffer
    proc.stdin.close()
    peak = PeakRss(proc.pid)
    peak.start()
    try:
        proc.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        peak.done.set()
        peak.join()
    assert peak.kib > 0, "the command's Python was never seen running"
    return proc.returncode, out.read_text(errors="replace"), time.monotonic() - t0, peak.kib


def assert_refused(hub: dict, result: tuple[int, str, float, int], what: str) -> list[str]:
    status, output, took, rss = result
    assert "Traceback" not in output and "RecursionError" not in output, output[-3000:]
    assert rss < MAX_RSS_KB, f"peak RSS {rss // 1024} MiB"
    assert took < PROMPT, f"took {took:.1f} s: {output[-3000:]}"
    assert status not in (0, -signal.SIGKILL), (status, output[-3000:])
    named = [line for line in output.splitlines() if f"127.0.0.1:{hub['port']}" in line and what in line]
    assert len(named) == 1, output[-3000:]
    return output.splitlines()
