"""Clients and process figures for the benchmark: one keep-alive HTTP(S) client, a kernel WebSocket,
RSS and CPU time of a process from /proc."""

import http.client
import json
import os
import ssl
import time
import uuid
from dataclasses import dataclass

from websockets.sync.client import connect as ws_connect

from devhub.kernel_client import V1
from devhub.kernel_client import execute_request
from devhub.kernel_client import from_v1
from devhub.kernel_client import to_v1
from devhub.tls import NamedHTTPSConnection

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """Where a client sends its requests: straight to the hub (TLS, prefixed paths) or to a proxy."""
    name: str
    host: str
    port: int
    auth: str  # the Authorization header value
    prefix: str = ""  # path prefix the client adds itself (direct only)
    tls: ssl.SSLContext | None = None
    tls_name: str | None = None
    pid: int | None = None  # the proxy's process

    def connection(self, timeout: float = 120) -> http.client.HTTPConnection:
        if self.tls:
            return NamedHTTPSConnection(self.host, self.port, tls_name=self.tls_name, context=self.tls,
                                        timeout=timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, conn, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
        conn.request(method, self.prefix + path, body=body,
                     headers={"Authorization": self.auth, **(headers or {})})
        r = conn.getresponse()
        return r.status, r.read()

    def websocket(self, path: str):
        scheme = "wss" if self.tls else "ws"
        kw = {"ssl": self.tls, "server_hostname": self.tls_name} if self.tls else {}
        return ws_connect(f"{scheme}://{self.host}:{self.port}{self.prefix}{path}", subprotocols=[V1],
                          additional_headers={"Authorization": self.auth}, open_timeout=60, max_size=None,
                          ping_interval=None, **kw)


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                out[name] = int(value.split()[0]) * 1024
    return out


def reset_peak(pid: int) -> None:
    """Start VmHWM again from the current RSS (Linux >= 4.0, own processes)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def percentile(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def start_kernel(t: Target) -> str:
    conn = t.connection()
    code, body = t.request(conn, "POST", "/api/kernels", json.dumps({"name": "python3"}),
                           {"Content-Type": "application/json"})
    conn.close()
    assert code == 201, (code, body[:300])
    return json.loads(body)["id"]


def stop_kernel(t: Target, kernel: str) -> None:
    conn = t.connection()
    t.request(conn, "DELETE", f"/api/kernels/{kernel}")
    conn.close()


def kernel_socket(t: Target, kernel: str):
    return t.websocket(f"/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}")


def run_code(ws, code: str, timeout: float = 600) -> int:
    """Execute code; return the number of stdout characters it printed (counted, not kept)."""
    msg = execute_request(code)
    msg_id = msg["header"]["msg_id"]
    ws.send(to_v1(msg))
    printed, replied, idle = 0, False, False
    deadline = time.monotonic() + timeout
    while not (replied and idle):
        reply = from_v1(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if reply["parent_header"].get("msg_id") != msg_id:
            continue
        kind = reply["msg_type"]
        if kind == "stream":
            printed += len(reply["content"]["text"])
        elif kind == "error":
            raise RuntimeError("\n".join(reply["content"]["traceback"]))
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and reply["content"]["execution_state"] == "idle":
            idle = True
    return printed
