"""Issue 10: the bridge renews the stored hub token before it expires, without dropping connections."""

import dataclasses
import time
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import httpx
import pytest
from kernel_client import V1
from kernel_client import execute
from test_login import accepted
from test_login import log_in
from websockets.sync.client import connect as ws_connect

from addon.core import login_record
from addon import renew
from addon import store

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("expires_in, lifetime, expected", [
    (timedelta(days=30), 30 * 86400, 24 * 86400.0),  # fresh: due when 6 of 30 days are left
    (timedelta(days=6), 30 * 86400, 0.0),  # a fifth left: now
    (timedelta(days=1), 30 * 86400, 0.0),  # less (the bridge was off for weeks): now
    (timedelta(seconds=-5), 60, 0.0),  # expired: try anyway (the hub says no, and the user is told)
    (timedelta(seconds=60), 60, 48.0),
    (None, 60, None),  # never expires: nothing to renew
    (timedelta(days=1), None, None),  # a pasted token whose lifetime is unknown
])
def test_seconds_to_renewal(expires_in, lifetime, expected):
    expires_at = NOW + expires_in if expires_in is not None else None
    assert renew.seconds_to_renewal(NOW, expires_at, lifetime) == expected


@pytest.mark.parametrize("to_renewal, expected", [
    (48.0, 48.0),
    (24 * 86400.0, renew.LONGEST_SLEEP),  # look again: a login may replace the token, laptops sleep
    (None, renew.LONGEST_SLEEP),  # nothing to renew, but the file may change
    (0.0, renew.LONGEST_SLEEP),  # the renewal failed: not in a tight loop
])
def test_pause(to_renewal, expected):
    assert renew.pause(to_renewal) == expected


def stored(home) -> login_record.HubToken:
    return store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token


def wait_for_new_token(home, old: str, seconds: float) -> login_record.HubToken:
    deadline = time.monotonic() + seconds
    while (token := stored(home)).token == old and time.monotonic() < deadline:
        time.sleep(0.5)
    assert token.token != old, f"not renewed within {seconds} s"
    return token


def test_renewal_swaps_the_token_while_a_kernel_stays_open(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    first = log_in(hub, home, JUPYTER_TOKEN_LIFETIME="20").hub_token  # due when 4 s are left
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=60) as c:
        name = f"renew-{uuid.uuid4().hex[:8]}.ipynb"
        r = c.post("/api/sessions", json={"path": name, "name": name, "type": "notebook",
                                          "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        kernel = r.json()["kernel"]["id"]
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels", additional_headers=auth,
                        subprotocols=[V1], open_timeout=30) as ws:
            assert execute(ws, "1+1")[2] == "2"
            second = wait_for_new_token(home, first.token, 30)
            assert second.scopes == first.scopes and second.lifetime == 20
            assert not accepted(hub, first.token) and accepted(hub, second.token)
            # The next renewal is made with the successor (the first one is revoked): the bridge switched to it.
            third = wait_for_new_token(home, second.token, 30)
            assert not accepted(hub, second.token) and accepted(hub, third.token)
            assert execute(ws, "2+3")[2] == "5"  # the same WebSocket, open all along
        assert c.get("/api/kernelspecs").status_code == 200
        c.delete(f"/api/kernels/{kernel}")
    assert bridge.log().count("renewed the hub token") >= 2
    assert all(t.token not in bridge.log() for t in (first, second, third))


def test_a_token_that_cannot_renew_itself_warns(hub, tmp_path, start_bridge):
    """A token without the tokens scope (pasted from the token page, say) cannot make its successor."""
    home = tmp_path / "home"
    data = log_in(hub, home)
    made = httpx.post(f"{hub['hub_api_internal']}/users/alice/tokens",
                      json={"scopes": ["access:servers!user=alice"], "expires_in": 120},
                      headers={"Authorization": f"token {hub['admin_token']}"}).json()
    data = dataclasses.replace(data, hub_token=dataclasses.replace(
        data.hub_token, token=made["token"], id=made["id"], expires_at=made["expires_at"],
        lifetime=3600))  # 120 s of 3600 left: due at once
    store.save(data, {"JUPYTERHUB_BRIDGE_HOME": str(home)})
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    deadline = time.monotonic() + 20
    while "could not renew the hub token" not in bridge.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    line = next(line for line in bridge.log().splitlines() if "could not renew the hub token" in line)
    assert "expires " in line and "run ./run.sh login" in line, line
    assert stored(home).token == made["token"]  # kept: it still works until it expires
    r = httpx.get(f"{bridge.url}/api/kernelspecs", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 200, r.text


def test_a_new_login_while_the_bridge_runs_is_followed(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    log_in(hub, home, JUPYTER_TOKEN_LIFETIME="20")
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    second = log_in(hub, home, JUPYTER_TOKEN_LIFETIME="20").hub_token  # revokes the one the bridge sends
    # The bridge looks at the file again when the first token would have been due (16 s after it was made),
    # sends the second one, and renews that one in turn: with the second token, so it did switch.
    third = wait_for_new_token(home, second.token, 40)
    assert "now sending the hub token that ./run.sh login keeps" in bridge.log()
    assert accepted(hub, third.token) and not accepted(hub, second.token)
    r = httpx.get(f"{bridge.url}/api/kernelspecs", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 200, r.text
