"""Issue 19 and 30: what the user's network does cannot stop the bridge. The hub's proxy (configurable-http-proxy)
dies while a kernel WebSocket is open through the bridge: the client's WebSocket stays open while the bridge dials
again, and once the hub has restarted its proxy the next cell runs on the same socket, in the same kernel (issue 19
closed the client's socket at once; issue 30 holds it)."""

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kernel_client import V1
from kernel_client import execute
from websockets.sync.client import connect as ws_connect

BACK_WITHIN = 60.0  # seconds for the hub to notice its proxy died (every 5 s) and restart it with its routes


@pytest.fixture(scope="module")
def faults_hub(start_hub):
    """A hub of this module's own: its proxy is killed here."""
    hub = start_hub(name="faults")
    yield hub
    start_hub.stop(hub)
    stop_a_proxy_left_behind(hub)


def stop_a_proxy_left_behind(hub: dict) -> None:
    """JupyterHub 6.1.1 restarts a dead proxy with a second check timer and stops only the newest at shutdown; the
    older one can start another proxy while the hub shuts down, which outlives it. Stop that one (ours: its
    command line names this hub's workdir)."""
    pid_file = Path(hub["workdir"]) / "jupyterhub-proxy.pid"  # removed when the hub stopped its proxy itself
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.exists() or hub["workdir"].encode() not in cmdline.read_bytes():
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while cmdline.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if cmdline.exists():
        os.kill(pid, signal.SIGKILL)


def proxy_pid(hub: dict) -> int:
    """The hub's configurable-http-proxy: the pid in its pid file, checked to be a child of this test's hub."""
    pid = int((Path(hub["workdir"]) / "jupyterhub-proxy.pid").read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    parent = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    assert parent == hub["hub_pid"], f"process {pid} is not the proxy of the hub this test started"
    return pid


def channels(bridge, kernel: str, token: str):
    url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
    return ws_connect(url, subprotocols=[V1], open_timeout=30, max_size=None,
                      additional_headers={"Authorization": f"token {token}"})


def wait_until_the_server_answers(c: httpx.Client) -> None:
    deadline = time.monotonic() + BACK_WITHIN
    while c.get("/api/status").status_code != 200:
        assert time.monotonic() < deadline, f"the server did not answer through the bridge within {BACK_WITHIN} s"
        time.sleep(0.25)


def test_a_restarted_hub_proxy_is_outlived_by_the_kernel_websocket(faults_hub, start_bridge):
    bridge = start_bridge(faults_hub)
    token = faults_hub["users"]["alice"]["token"]
    with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {token}"}, timeout=60) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        with channels(bridge, kernel, token) as ws:
            assert execute(ws, "x = 6 * 7; x")[2] == "42"
            old_proxy = proxy_pid(faults_hub)
            os.kill(old_proxy, signal.SIGKILL)  # its connections to the bridge and the server are reset
            killed_at = time.monotonic()
            wait_until_the_server_answers(c)
            assert proxy_pid(faults_hub) != old_proxy
            assert execute(ws, "x + 1", timeout=BACK_WITHIN)[2] == "43"  # the same socket, the same kernel
            print(f"the next cell ran {time.monotonic() - killed_at:.1f} s after the hub's proxy was killed")
        assert f"kernel {kernel[:8]}: the connection to the server dropped" in bridge.log()
        assert c.delete(f"/api/kernels/{kernel}").status_code == 204
    assert bridge.proc.poll() is None, bridge.log()
