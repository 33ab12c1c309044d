"""Issue 19: a laptop that sleeps past the login token's renewal point or its expiry (SIGSTOP/SIGCONT of the
bridge), and two bridges renewing one stored login."""

import os
import signal
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from datetime import timezone

import httpx
import pytest
from kernel_client import V1
from kernel_client import execute
from test_login import accepted
from test_login import log_in
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from addon.core import login_record
from addon import store

EXPIRED = "Your hub token expired on"


def seconds_until(moment: str, offset: float = 0.0) -> float:
    return (login_record.parse_time(moment) - datetime.now(timezone.utc)).total_seconds() + offset


@contextmanager
def suspended(bridge):
    """The bridge and what run.sh started stand still, as on a closed laptop; always resumed."""
    os.killpg(bridge.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(bridge.proc.pid, signal.SIGCONT)


def sleep_until(moment: str, offset: float) -> None:
    """The suspended time itself: nothing to wait on while the bridge cannot run."""
    time.sleep(max(0.0, seconds_until(moment, offset)))


def wait_for_log(bridge, line: str, seconds: float, count: int = 1) -> float:
    """Seconds until the bridge's log holds `line` `count` times (bounded)."""
    start = time.monotonic()
    while bridge.log().count(line) < count:
        assert bridge.proc.poll() is None, f"the bridge exited:\n{bridge.log()}"
        if time.monotonic() - start > seconds:
            pytest.fail(f"no {line!r} (x{count}) in the bridge's log within {seconds} s:\n{bridge.log()}")
        time.sleep(0.1)
    return time.monotonic() - start


def get(bridge, path: str = "/api/kernelspecs") -> httpx.Response:
    return httpx.get(f"{bridge.url}{path}", headers={"Authorization": f"token {bridge.token}"}, timeout=60)


def run_cell(bridge, code: str) -> str:
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=60) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels", additional_headers=auth,
                        subprotocols=[V1], open_timeout=30) as ws:
            out = execute(ws, code)[2]
        c.delete(f"/api/kernels/{kernel}")
    return out


def test_resumed_past_the_renewal_point_it_renews_at_once(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    first = log_in(hub, home, JUPYTER_TOKEN_LIFETIME="40").hub_token  # due 32 s after it was made
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert get(bridge).status_code == 200
    with suspended(bridge):
        sleep_until(first.expires_at, -6)  # 2 s past the renewal point, 6 s before the expiry
    took = wait_for_log(bridge, "renewed the hub token", seconds_until(first.expires_at))
    assert took < 5, f"renewed {took:.1f} s after the resume"
    assert store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token.token != first.token
    assert not accepted(hub, first.token)
    r = get(bridge)
    assert r.status_code == 200, r.text
    assert run_cell(bridge, "6*7") == "42"


def test_resumed_past_the_expiry_it_says_run_login_and_serves_after_one(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    first = log_in(hub, home, JUPYTER_TOKEN_LIFETIME="20").hub_token
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert get(bridge).status_code == 200
    assert "renewed the hub token" not in bridge.log(), "the bridge took too long to start for this test"
    with suspended(bridge):
        sleep_until(first.expires_at, 1)
    for path in ("/api/kernelspecs", "/api/contents", "/api/status"):
        r = get(bridge, path)
        assert r.status_code == 403 and r.json()["message"].startswith(EXPIRED), (path, r.text)
        assert r.json()["message"].endswith("UTC: run ./run.sh login."), r.text
    with pytest.raises(InvalidStatus) as refused:  # an IDE's kernel reconnect gets the same answer
        ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{uuid.uuid4()}/channels",
                   additional_headers={"Authorization": f"token {bridge.token}"}, open_timeout=30)
    assert refused.value.response.status_code == 403
    assert EXPIRED in refused.value.response.body.decode()
    wait_for_log(bridge, EXPIRED, 10)
    assert bridge.log().count(EXPIRED) == 1, bridge.log()  # once, however many requests

    second = log_in(hub, home, JUPYTER_TOKEN_LIFETIME="3600").hub_token  # no restart of the bridge
    wait_for_log(bridge, "now sending the hub token that ./run.sh login keeps", 15)
    r = get(bridge)
    assert r.status_code == 200, r.text
    assert run_cell(bridge, "2+3") == "5"
    assert accepted(hub, second.token) and bridge.proc.poll() is None
    assert first.token not in bridge.log() and second.token not in bridge.log()


# --------------------------------------------------------------------------------------------- two bridges


def admin(hub, method: str, path: str) -> httpx.Response:
    return httpx.request(method, f"{hub['hub_api_internal']}{path}", timeout=60,
                         headers={"Authorization": f"token {hub['admin_token']}"})


def start_named_server(hub, name: str) -> None:
    assert admin(hub, "POST", f"/users/alice/servers/{name}").status_code in (201, 202, 400)
    deadline = time.monotonic() + 90
    while not (admin(hub, "GET", "/users/alice").json()["servers"].get(name) or {}).get("ready"):
        assert time.monotonic() < deadline, f"alice's server {name!r} did not start"
        time.sleep(0.3)


def renewed_login_tokens(hub, lifetime: int) -> list[dict]:
    """alice's live login tokens made by a renewal with this lifetime (other tests' bridges renew theirs)."""
    found = admin(hub, "GET", "/users/alice/tokens").json()["api_tokens"]
    return [t for t in found if (t.get("note") or "").endswith("(renewed)") and t["expires_at"]
            and abs(seconds_between(t["created"], t["expires_at"]) - lifetime) < 1]


def seconds_between(start: str, end: str) -> float:
    return (login_record.parse_time(end) - login_record.parse_time(start)).total_seconds()


def test_two_bridges_on_one_login_renew_it_in_turn(hub, tmp_path, start_bridge):
    server = f"second-{uuid.uuid4().hex[:6]}"
    start_named_server(hub, server)
    home = tmp_path / "home"
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(home)}
    log_in(hub, home, JUPYTER_TOKEN_LIFETIME="12")  # renewed every 9.6 s
    bridges = [start_bridge(env=environ), start_bridge(env={**environ, "JUPYTER_NAMED_SERVER": server})]
    renewals, answers = 4, 0
    deadline = time.monotonic() + 60
    while sum(b.log().count("renewed the hub token") for b in bridges) < renewals:
        assert time.monotonic() < deadline, "\n".join(b.log() for b in bridges)
        for b in bridges:  # serving all along
            r = get(b)
            assert r.status_code == 200, (b.port, r.text)
            answers += 1
        time.sleep(0.2)
    kept = store.load(environ).hub_token
    assert accepted(hub, kept.token)
    for b in bridges:
        assert get(b).status_code == 200
        assert "could not renew" not in b.log() and "revoke the old one" not in b.log(), b.log()
    # Each successor was made once, by one bridge; the other took it from the file: no spare live token.
    assert [t["id"] for t in renewed_login_tokens(hub, 12)] == [kept.id]
    assert sum("now sending the hub token that ./run.sh login keeps" in b.log() for b in bridges) >= 1
    assert answers > 20
