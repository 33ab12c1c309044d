"""`./run.sh demo` on this machine: a real hub and the bridge, a kernel that runs code, a clean Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import time
import uuid

import httpx
from bridge_process import ROOT
from bridge_process import free_port
from kernel_client import V1
from kernel_client import execute
from websockets.sync.client import connect as ws_connect


def wait_for(pattern, log, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if m := re.search(pattern, log.read_text()):
            return m
        assert proc.poll() is None, log.read_text()
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} within {timeout} s:\n{log.read_text()}")


def test_demo_serves_a_kernel_and_stops_cleanly(tmp_path):
    port = free_port()
    log = tmp_path / "demo.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")} | {"JUPYTER_PROXY_PORT": str(port)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(ROOT / "run.sh"), "demo"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        url = wait_for(rf"paste into PyCharm: (http://127\.0\.0\.1:{port}/\?token=\S+)", log, proc).group(1)
        devhub_pid = json.loads((ROOT / ".demo" / "ready.json").read_text())["pid"]
        token = url.rsplit("=", 1)[1]
        wait_for("listening at", log, proc, timeout=30)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"token {token}"},
                          timeout=60) as c:
            r = c.post("/api/sessions", json={"path": "demo.ipynb", "type": "notebook", "name": "demo.ipynb",
                                              "kernel": {"name": "python3"}})
            assert r.status_code == 201, r.text
            kernel = r.json()["kernel"]["id"]
            with ws_connect(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
                            f"&token={token}", subprotocols=[V1], open_timeout=30) as ws:
                assert execute(ws, "print(sum(range(10)))")[0] == "45\n"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        proc.wait(60)
    assert "demo stopped." in log.read_text()
    time.sleep(0.5)
    assert not os.path.exists(f"/proc/{devhub_pid}"), "the demo hub is still running"
