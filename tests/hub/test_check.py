"""Issue 4: `./run.sh check`, the preflight, against the devhub hub: healthy, and broken one way at a time."""

import os
import subprocess
import time
import uuid

import httpx
import pytest
import trustme
from bridge_process import ROOT
from bridge_process import free_port
from bridge_process import hub_env
from expired_tls import expired_hub


def check(hub, **env) -> tuple[int, list[str]]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    full.update({**hub_env(hub), "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1", "JUPYTER_PROXY_PORT": "8123", **env})
    p = subprocess.run([str(ROOT / "run.sh"), "check"], env=full, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout.splitlines()


def failed(lines: list[str]) -> tuple[str, str]:
    """The ✗ line and its fix, which end the checklist."""
    assert lines[-1].startswith("    fix: "), lines
    crosses = [line for line in lines if line.startswith("✗ ")]
    assert len(crosses) == 1, lines
    return crosses[0], lines[-1].removeprefix("    fix: ")


@pytest.fixture(scope="module")
def token(hub):
    return hub["users"]["alice"]["token"]


def test_healthy(hub, token):
    rc, lines = check(hub, JUPYTERHUB_API_TOKEN=token, JUPYTER_PROXY_TOKEN="local-secret")
    assert rc == 0, lines
    assert [line[0] for line in lines[:-1]] == ["✓"] * 7, lines
    assert "JupyterHub 6.1.1 answers at /hub/api" in lines[3]
    assert f"token …{token[-4:]} of 'alice' is valid, may access servers, expires never" in lines[4]
    assert "your default server is running at /user/alice/" in lines[5]
    assert "/api/kernelspecs answers through the bridge's code path: python3" in lines[6]
    assert lines[-1] == "Paste into PyCharm: http://127.0.0.1:8123/?token=local-secret"


def test_without_a_username_the_tokens_owner_is_used(hub, token):
    rc, lines = check(hub, JUPYTERHUB_API_TOKEN=token, JUPYTER_USERNAME="")
    assert rc == 0, lines
    assert "the hub token's owner" in lines[0] and "your default server is running at /user/alice/" in lines[5]


def test_without_a_token_the_token_steps_are_skipped(hub):
    rc, lines = check(hub)
    assert rc == 0, lines
    assert lines[-2].startswith("– token, server state and /api/kernelspecs not checked")
    assert lines[-1] == "Paste into PyCharm: http://127.0.0.1:8123/?token=<your JupyterHub API token>"


def test_invalid_settings(hub):
    rc, lines = check(hub, JUPYTER_SERVER_PORT="https")
    assert rc == 1
    assert lines == ["✗ settings: JUPYTER_SERVER_PORT='https' is not a port: use a number from 1 to 65535."]


def test_closed_port(hub):
    port = free_port()
    rc, lines = check(hub, JUPYTER_SERVER_PORT=str(port))
    assert rc == 1
    cross, fix = failed(lines)
    assert cross == f"✗ Nothing accepts connections at 127.0.0.1:{port} (connection refused)."
    assert "JUPYTER_SERVER_PORT" in fix


def test_wrong_ca(hub, tmp_path):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    rc, lines = check(hub, JUPYTER_CLUSTER_CA_CERT=str(other))
    assert rc == 1
    cross, fix = failed(lines)
    assert "is not signed by the CA in" in cross and "O=devhub private CA" in cross and "O=trustme" in cross
    assert "the hub's certificate: names jupyterhub;" in lines[-2] and "valid 2000-01-01 00:00 UTC to" in lines[-2]
    assert fix.startswith("Set JUPYTER_CLUSTER_CA_CERT")


def test_wrong_tls_name(hub):
    rc, lines = check(hub, JUPYTER_SERVER_NAME="not-the-hub")
    assert rc == 1
    cross, fix = failed(lines)
    assert cross == "✗ The hub's certificate is for jupyterhub, not for the TLS name 'not-the-hub' the bridge checks."
    assert fix == "Set JUPYTER_SERVER_NAME=<one of: jupyterhub>."


def test_expired_certificate(hub, tmp_path):
    with expired_hub(tmp_path) as (port, ca_file):
        rc, lines = check(hub, JUPYTER_SERVER_PORT=str(port), JUPYTER_CLUSTER_CA_CERT=ca_file)
    assert rc == 1
    cross, fix = failed(lines)
    assert "valid only from 2000-01-01 00:00 UTC to 2001-01-01 00:00 UTC, not now" in cross
    assert "renew" in fix


@pytest.mark.parametrize("kind", ["wrong", "revoked", "no-scope", "other-user"])
def test_token_problems(hub, token, kind):
    admin = {"Authorization": f"token {hub['admin_token']}"}
    api = hub["hub_api_internal"]
    env = {"JUPYTERHUB_API_TOKEN": "0123456789abcdef"}
    if kind == "revoked":
        made = httpx.post(f"{api}/users/alice/tokens", headers=admin, json={"note": uuid.uuid4().hex}).json()
        assert httpx.delete(f"{api}/users/alice/tokens/{made['id']}", headers=admin).status_code == 204
        env["JUPYTERHUB_API_TOKEN"] = made["token"]
    elif kind == "no-scope":
        made = httpx.post(f"{api}/users/alice/tokens", headers=admin,
                          json={"note": uuid.uuid4().hex, "scopes": ["read:users:name!user=alice"]}).json()
        env["JUPYTERHUB_API_TOKEN"] = made["token"]
    elif kind == "other-user":
        env.update(JUPYTERHUB_API_TOKEN=token, JUPYTER_USERNAME="bob")
    rc, lines = check(hub, **env)
    assert rc == 1
    cross, fix = failed(lines)
    expected = {
        "wrong": ("✗ The hub rejected JUPYTERHUB_API_TOKEN (…cdef): it is wrong, expired or revoked (403).",
                  "Create a new token"),
        "revoked": ("it is wrong, expired or revoked (403)", "Create a new token"),
        "no-scope": ("lacks the scope access:servers (it has: read:users:groups!user=alice, "
                     "read:users:name!user=alice)", "access:servers!user=<you>"),
        "other-user": ("belongs to 'alice', not to JUPYTER_USERNAME 'bob'", "Set JUPYTER_USERNAME=alice"),
    }[kind]
    assert expected[0] in cross and expected[1] in fix


@pytest.fixture(scope="module")
def stopped(start_hub):
    """A hub whose servers are all stopped; carol's take 30 s to start, so hers stays pending for a while."""
    return start_hub(name="check-stopped", users="alice,carol", no_start=True, spawn_delay="carol=30")


def mint(hub, user: str, scopes: list[str]) -> str:
    made = httpx.post(f"{hub['hub_api_internal']}/users/{user}/tokens", json={"scopes": scopes},
                      headers={"Authorization": f"token {hub['admin_token']}"})
    assert made.status_code == 201, made.text
    return made.json()["token"]


def server_state(hub, user: str) -> dict:
    model = httpx.get(f"{hub['hub_api_internal']}/users/{user}",
                      headers={"Authorization": f"token {hub['admin_token']}"}).json()
    return model["servers"].get("", {})


def test_stopped_server_the_bridge_will_start(stopped):
    rc, lines = check(stopped, JUPYTERHUB_API_TOKEN=stopped["users"]["alice"]["token"], JUPYTER_PROXY_TOKEN="s")
    assert rc == 0, lines
    assert [line[0] for line in lines] == ["✓"] * 5 + ["–", "–", "P"], lines
    assert lines[5] == "– your default server is stopped: the bridge will start it on the IDE's first request"
    assert lines[6].startswith("– /api/kernelspecs not checked: your server is not running")
    assert lines[-1] == "Paste into PyCharm: http://127.0.0.1:8123/?token=s"
    assert server_state(stopped, "alice") == {}  # the check only looks


@pytest.mark.parametrize("kind", ["autostart-off", "no-start-scope"])
def test_stopped_server_the_bridge_cannot_start(stopped, kind):
    if kind == "autostart-off":
        env = {"JUPYTERHUB_API_TOKEN": stopped["users"]["alice"]["token"], "JUPYTER_AUTOSTART": "false"}
        reason = "JUPYTER_AUTOSTART is off."
    else:
        token = mint(stopped, "alice", ["access:servers!user=alice", "read:users!user=alice",
                                        "read:servers!user=alice"])
        env = {"JUPYTERHUB_API_TOKEN": token}
        reason = f"the token (…{token[-4:]}) lacks the scope start:servers."
    rc, lines = check(stopped, **env)
    assert rc == 1
    cross, fix = failed(lines)
    assert cross == ("✗ Your default server is stopped (or its last start failed), and the bridge will not start "
                     f"it: {reason}")
    assert fix.startswith(f"Start it on https://jupyterhub:{stopped['port']}/hub/home, then run this check again")


def test_pending_server(stopped):
    carol = stopped["users"]["carol"]["token"]
    try:
        httpx.post(f"{stopped['hub_api_internal']}/users/carol/server", timeout=1,
                   headers={"Authorization": f"token {stopped['admin_token']}"})
    except httpx.ReadTimeout:
        pass  # the hub answers only when the spawn ends or turns slow; it goes on meanwhile
    for _ in range(50):
        if server_state(stopped, "carol").get("pending") == "spawn":
            break
        time.sleep(0.1)
    rc, lines = check(stopped, JUPYTERHUB_API_TOKEN=carol, JUPYTER_USERNAME="carol")
    assert rc == 0, lines
    assert "– your default server is starting (pending spawn): the bridge waits for it" in lines
    assert lines[-1].startswith("Paste into PyCharm: http://127.0.0.1:8123/?token=")
