"""Issue 28, Low: what stays after a stop. SIGHUP (a closed terminal, a dropped SSH session) stops the bridge as
SIGTERM does, revoking its access token; a bridge killed outright leaves its access token, which the next start
revokes (found by its note: this machine, a process that is gone); `logout` while a bridge runs revokes the
bridge's access token and the bridge stops serving, saying what to do, and closes the kernel sockets it holds. The
hub's API says which tokens it still has."""

import os
import signal
import subprocess
import time

import httpx
import pytest
from test_login import log_in
from test_login import run
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

LOGGED_OUT = "You logged out (./run.sh logout removed the login): the bridge serves no more. Run ./run.sh login, " \
             "then start the bridge again."


def access_tokens(hub, pid: int) -> set[str]:
    """The ids of alice's access tokens that the bridge process `pid` made, as the hub has them."""
    answer = httpx.get(f"{hub['hub_api_internal']}/users/alice/tokens",
                       headers={"Authorization": f"token {hub['admin_token']}"}, timeout=30)
    return {t["id"] for t in answer.json()["api_tokens"] if f"(pid {pid}, by token " in (t["note"] or "")}


def served(bridge) -> httpx.Response:
    return httpx.get(f"{bridge.url}/api/kernelspecs", headers={"Authorization": f"token {bridge.token}"},
                     timeout=60)


def until(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.2)
    return condition()


@pytest.fixture
def running(hub, tmp_path, start_bridge):
    """A bridge on a stored login that has served a request (its access token made)."""
    home = tmp_path / "home"
    log_in(hub, home)
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert served(bridge).status_code == 200
    made = access_tokens(hub, bridge.proc.pid)
    assert len(made) == 1, made
    return home, bridge, made


def test_sighup_revokes_the_access_token(hub, running):
    _, bridge, made = running
    os.kill(bridge.proc.pid, signal.SIGHUP)
    try:
        bridge.proc.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the bridge did not stop on SIGHUP:\n{bridge.log()}", pytrace=False)
    assert "revoked the access token" in bridge.log(), bridge.log()
    assert access_tokens(hub, bridge.proc.pid) & made == set()


def test_a_killed_bridges_access_token_is_revoked_at_the_next_start(hub, running, start_bridge):
    home, bridge, made = running
    os.kill(bridge.proc.pid, signal.SIGKILL)  # no done hook: its access token stays valid
    bridge.proc.wait(30)
    assert access_tokens(hub, bridge.proc.pid) == made
    again = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert served(again).status_code == 200
    assert until(lambda: not access_tokens(hub, bridge.proc.pid)), again.log()
    assert "revoked 1 access token(s) that earlier bridges on this machine left valid" in again.log()
    assert len(access_tokens(hub, again.proc.pid)) == 1  # its own stays


def test_logout_while_a_bridge_runs_stops_it_serving(hub, running):
    home, bridge, made = running
    p = run(["logout"], home)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "revoked the hub token and 1 access token(s) of bridges on this machine" in p.stdout, p.stdout
    assert access_tokens(hub, bridge.proc.pid) & made == set()
    answer = until(lambda: (r := served(bridge)).status_code == 503 and r)
    assert answer and answer.json()["message"] == LOGGED_OUT, (answer and answer.text, bridge.log())
    assert LOGGED_OUT in bridge.log()


def test_logout_while_a_bridge_runs_closes_its_held_kernel_sockets(hub, running):
    """A kernel WebSocket the bridge holds (its relay re-dials with the access token) ends too, with a close code
    and a reason the IDE's log shows, not with a dead kernel later."""
    home, bridge, _ = running
    headers = {"Authorization": f"token {bridge.token}"}
    kernel = httpx.post(f"{bridge.url}/api/kernels", json={"name": "python3"}, headers=headers, timeout=120).json()
    url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel['id']}/channels?token={bridge.token}"
    with ws_connect(url, open_timeout=60) as ws:
        assert run(["logout"], home).returncode == 0
        deadline = time.monotonic() + 60
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() < deadline:  # the server's own status messages first, then the close
                ws.recv(timeout=deadline - time.monotonic())
    assert closed.value.rcvd.code == 4401, closed.value
    assert closed.value.rcvd.reason == "jupyterhub-bridge: you logged out: run ./run.sh login, then start the bridge again"
