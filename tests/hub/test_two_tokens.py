"""Issue 17: only the hub sees the hub token. The servers of devhub --record-auth record the Authorization header
of every request they receive (what their code, or their owner, sees: field note 43); the tokens recorded must
reach the server and do nothing else, for the user's own server and for one shared with the user."""

import json
import re
import time
from pathlib import Path

import httpx
import pytest
from kernel_client import execute
from test_servers import admin
from test_servers import admin_start
from test_servers import run_in_kernel
from websockets.sync.client import connect as ws_connect


@pytest.fixture(scope="module")
def hub(start_hub):
    hub = start_hub(name="two-tokens", users="alice,bob", sharing=True, record_auth=True)
    admin_start(hub, "alice")
    admin_start(hub, "bob")
    bob = {"Authorization": f"token {hub['users']['bob']['token']}"}
    r = httpx.post(f"{hub['hub_api_internal']}/shares/bob/", json={"user": "alice"}, headers=bob, timeout=30)
    assert r.status_code in (200, 201), r.text
    return hub


def recorded(hub, user: str, since: int = 0) -> set[str]:
    """The tokens `user`'s server received, from the record's line `since` on."""
    lines = Path(hub["users"][user]["auth_record"]).read_text().splitlines()[since:]
    found = {(json.loads(line)["authorization"] or "").partition(" ")[2] for line in lines}
    return found - {""}


def record_length(hub, user: str) -> int:
    file = Path(hub["users"][user]["auth_record"])
    return len(file.read_text().splitlines()) if file.exists() else 0


def can_do_nothing_else(hub, token: str) -> None:
    """The token cannot have the hub make a token, nor start a server (403 for both)."""
    api, auth = hub["hub_api_internal"], {"Authorization": f"token {token}"}
    for user in ("alice", "bob"):
        r = httpx.post(f"{api}/users/{user}/tokens", json={"scopes": ["inherit"]}, headers=auth, timeout=30)
        assert r.status_code == 403, (user, r.status_code, r.text)
        r = httpx.post(f"{api}/users/{user}/servers/taken", headers=auth, timeout=30)
        assert r.status_code == 403, (user, r.status_code, r.text)


def accepted(hub, token: str) -> bool:
    r = httpx.get(f"{hub['hub_api_internal']}/user", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code in (200, 403), r.text
    return r.status_code == 200


@pytest.mark.parametrize("owner", ["alice", "bob"])  # her own server; bob's, shared with her
def test_a_server_receives_only_a_token_that_reaches_it(hub, start_bridge, owner):
    alice_token = hub["users"]["alice"]["token"]  # may do all alice may: make tokens, start servers
    since = record_length(hub, owner)
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": alice_token}, user=owner)
    assert run_in_kernel(bridge, "import os; print(os.environ['JUPYTERHUB_USER'])") == f"{owner}\n"
    sent = recorded(hub, owner, since)
    assert sent and alice_token not in sent, "the hub token went to the server"
    assert len(sent) == 1  # one access token for the whole run
    for token in sent:
        assert accepted(hub, token)
        can_do_nothing_else(hub, token)
    bridge.stop()  # a clean stop revokes it
    assert not any(accepted(hub, token) for token in sent), "the access token outlived the bridge"
    assert "revoked the access token" in bridge.log()


def test_the_access_token_is_renewed_while_a_kernel_websocket_stays_open(hub, start_bridge):
    """A 20 s access token: its successor is due after 16 s; the open kernel goes on, new requests use the
    successor, the old one is revoked."""
    since = record_length(hub, "alice")
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"],
                                    "JUPYTER_ACCESS_TOKEN_LIFETIME": "20"})
    with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=120) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{r.json()['id']}/channels?token={bridge.token}"
        with ws_connect(url, open_timeout=60) as ws:
            assert execute(ws, "x = 6 * 7")[1] == ""
            (first,) = recorded(hub, "alice", since)
            deadline = time.monotonic() + 60
            while len(re.findall("made the access token", bridge.log())) < 2 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert len(re.findall("made the access token", bridge.log())) >= 2, bridge.log()
            assert execute(ws, "print(x)")[0] == "42\n"  # the same WebSocket, after the renewal
        assert c.get("/api/status").status_code == 200
    tokens = recorded(hub, "alice", since)
    assert len(tokens) >= 2 and first in tokens
    assert not accepted(hub, first), "the renewed access token was not revoked"
    for token in tokens:
        can_do_nothing_else(hub, token)


def test_a_hub_token_that_may_not_mint_is_not_sent_to_another_users_server(hub, start_bridge):
    r = admin(hub, "POST", "/users/alice/tokens", json={"scopes": ["access:servers!server=bob/"], "note": "narrow"})
    assert r.status_code == 201, r.text
    since = record_length(hub, "bob")
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": r.json()["token"]}, user="bob", wait=False)
    assert bridge.proc.wait(timeout=60) == 1
    assert re.search(r"error: the hub token of 'alice' may not make tokens .* the server of 'bob', whose code can "
                     r"read it: run ./run.sh login", bridge.log()), bridge.log()
    assert recorded(hub, "bob", since) == set()
