"""Issue 10: `./run.sh login` / `logout` against real hubs (password and SSO-like sign-in), and the pure parts."""

import json
import os
import stat
import subprocess
from datetime import datetime
from datetime import timezone

import httpx
import pytest
from bridge_process import ROOT
from bridge_process import free_port

from addon.core import login_record
from addon.hub import api as hub_client
from addon.commands import login
from addon import store
from addon.hub import tokens


@pytest.mark.parametrize("url, expected", [
    ("https://10.1.2.3:8000/", ("10.1.2.3", "8000", "/")),
    ("https://hub.example.org/jupyter/", ("hub.example.org", "443", "/jupyter/")),
    ("hub.example.org:8443/jupyter", ("hub.example.org", "8443", "/jupyter")),
    ("https://hub.example.org/jupyter/hub/login?next=x", ("hub.example.org", "443", "/jupyter/")),
    ("https://hub.example.org/hub/token", ("hub.example.org", "443", "/")),
    ("https://hub.example.org/jupyterhub/", ("hub.example.org", "443", "/jupyterhub/")),
    ("https://[::1]:8000/", ("::1", "8000", "/")),
])
def test_hub_url(url, expected):
    found = login.parse_hub_url(url)
    assert (found["jupyter_server_ip_or_name"], found["jupyter_server_port"], found["jupyterhub_base_url"]) == expected


@pytest.mark.parametrize("url, says", [
    ("http://hub.example.org/", "HTTPS only"), ("https://hub.example.org:http/", "not a number"),
    ("https:///jupyter/", "no address"),
])
def test_hub_url_refused(url, says):
    with pytest.raises(login.Stop, match=says):
        login.parse_hub_url(url)


@pytest.mark.parametrize("page, expected", [
    ('<input type="password" name="password" id="password_input">', True),
    ("<input TYPE='password'>", True),
    ('<a class="btn" href="/hub/oauth_login">Sign in with devhub SSO</a>', False),
])
def test_takes_password(page, expected):
    assert login.takes_password(page) is expected


REQUEST = {"expires_in": 86400, "scopes": tokens.wanted_scopes("alice")}


def refusal(message: str) -> hub_client.Answer:
    return hub_client.Answer(400, "Bad Request", [], json.dumps({"status": 400, "message": message}).encode())


@pytest.mark.parametrize("message, scopes, expires_in, says", [
    ("Not assigning requested scopes tokens!user=alice,read:users!user=alice not held by User alice",
     ["access:servers!user=alice", "servers!user=alice", "read:users:shares!user=alice"], 86400,
     "does not grant read:users!user=alice, tokens!user=alice"),
    ("token expires_in: 86400 must not exceed 3600", tokens.wanted_scopes("alice"), 3600, "at most 3600 s"),
])
def test_a_refused_request_is_narrowed_never_widened(message, scopes, expires_in, says):
    again, why = tokens.narrowed(REQUEST, refusal(message))
    assert (again["scopes"], again["expires_in"]) == (scopes, expires_in)
    assert says in why


@pytest.mark.parametrize("message", [
    "Not assigning requested scopes access:servers!user=alice not held by User alice",  # useless without it
    "token scopes must be null or a list of strings, not 'x'",
])
def test_a_refusal_without_a_narrower_request_stops(message):
    again, why = tokens.narrowed(REQUEST, refusal(message))
    assert again is None and message in why


# ------------------------------------------------------------------ against real hubs


def run(args: list[str], home, stdin: str = "", **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    full.update({"JUPYTERHUB_BRIDGE_HOME": str(home), "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1", **env})
    return subprocess.run([str(ROOT / "run.sh"), *args], env=full, input=stdin, capture_output=True, text=True,
                          timeout=120)


def login_args(hub, *extra: str) -> list[str]:
    return ["login", f"https://{hub['host']}:{hub['port']}{hub['base_url']}",
            "--set", f"jupyter_server_name={hub['tls_name']}", "--set", f"jupyter_cluster_ca_cert={hub['ca_file']}",
            *extra]


def log_in(hub, home, **env) -> login_record.Login:
    p = run(login_args(hub, "--set", "jupyter_username=alice", "--password-stdin"), home,
            hub["users"]["alice"]["password"] + "\n", **env)
    assert p.returncode == 0, p.stdout + p.stderr
    return store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)})


def admin(hub, path: str) -> httpx.Response:
    return httpx.get(f"{hub['hub_api_internal']}{path}", headers={"Authorization": f"token {hub['admin_token']}"})


def accepted(hub, token: str) -> bool:
    """Does the hub still take this token? (Its API: single-user servers cache tokens for minutes.)"""
    status = httpx.get(f"{hub['hub_api_internal']}/user", headers={"Authorization": f"token {token}"}).status_code
    assert status in (200, 403), status
    return status == 200


def test_login_stores_a_narrow_expiring_token_and_the_bridge_uses_it(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    before = datetime.now(timezone.utc)
    data = log_in(hub, home, JUPYTER_TOKEN_LIFETIME="3600")
    file = home / "login.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600 and stat.S_IMODE(home.stat().st_mode) == 0o700
    token = data.hub_token
    model = admin(hub, f"/users/alice/tokens/{token.id}").json()
    expires = login_record.parse_time(model["expires_at"])
    assert 3600 - 60 < (expires - before).total_seconds() < 3600 + 60
    assert {"access:servers!user=alice", "start:servers!user=alice", "delete:servers!user=alice",
            "read:tokens!user=alice", "tokens!user=alice"} <= set(model["scopes"])
    assert all(scope.endswith("!user=alice") for scope in model["scopes"]), model["scopes"]  # nothing beyond alice
    assert model["note"].startswith("jupyterhub-bridge on ")

    # The bridge, with no hub setting and no token in its environment.
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert "login.json (./run.sh login): JUPYTER_SERVER_IP_OR_NAME" in bridge.log()
    assert bridge.token == data.local_token
    r = httpx.get(f"{bridge.url}/api/kernelspecs", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 200 and "python3" in r.json()["kernelspecs"], r.text
    assert token.token not in bridge.log()
    p = run(["check"], home, JUPYTER_PROXY_PORT=str(bridge.port))
    assert p.returncode == 0, p.stdout
    assert f"expires {model['expires_at']}" in p.stdout  # check says when the token expires
    assert p.stdout.splitlines()[-1] == f"Paste into PyCharm: {bridge.url}/?token={data.local_token}", p.stdout


def test_login_again_replaces_and_revokes_the_old_token(hub, tmp_path):
    home = tmp_path / "home"
    first = log_in(hub, home)
    second = log_in(hub, home)
    assert second.hub_token.token != first.hub_token.token
    assert not accepted(hub, first.hub_token.token) and accepted(hub, second.hub_token.token)
    assert second.local_token == first.local_token  # the IDE's URL stays
    p = run(login_args(hub, "--new-local-token", "--password-stdin", "--set", "jupyter_named_server=lab2"), home,
            hub["users"]["alice"]["password"])
    assert p.returncode == 0, p.stderr
    third = store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)})
    assert third.local_token != first.local_token
    assert third.settings["jupyter_named_server"] == "lab2"  # server settings given at login are kept too


def test_wrong_password(hub, tmp_path):
    p = run(login_args(hub, "--set", "jupyter_username=alice", "--password-stdin"), tmp_path / "home", "wrong\n")
    assert p.returncode == 1
    assert p.stderr.strip() == "error: the hub refused the password of 'alice' (or the user name): try again."
    assert not (tmp_path / "home" / "login.json").exists()


def test_an_untrusted_hub_without_a_terminal_stops_before_the_password(hub, tmp_path):
    """Issue 31: no CA given and the system store does not verify the hub: its certificate and fingerprint are
    shown, and without a terminal to confirm them on, the fingerprint is asked for (nothing stored)."""
    p = run(["login", f"https://{hub['host']}:{hub['port']}{hub['base_url']}", "--set", "jupyter_username=alice",
             "--password-stdin"], tmp_path / "home", "never read\n")
    assert p.returncode == 1
    assert "The system trust store does not verify" in p.stdout and "fingerprint of the hub's own certificate" \
        in p.stdout, p.stdout
    assert "give it with --ca-fingerprint" in p.stderr, p.stderr
    assert not (tmp_path / "home" / "login.json").exists()


def test_logout_revokes_and_removes(hub, tmp_path):
    home = tmp_path / "home"
    token = log_in(hub, home).hub_token.token
    p = run(["logout"], home)
    assert p.returncode == 0 and "revoked the hub token" in p.stdout, p.stdout + p.stderr
    assert not accepted(hub, token)
    assert not (home / "login.json").exists()


def test_logout_with_the_hub_away_still_removes(tmp_path):
    home = tmp_path / "home"
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(home)}
    store.save(login_record.Login(settings={"jupyter_server_ip_or_name": "127.0.0.1", "jupyter_server_port": str(free_port()),
                                     "jupyter_username": "alice"},
                           hub_token=login_record.HubToken("t" * 32, id="a1", user="alice")), environ)
    p = run(["logout"], home)
    assert p.returncode == 0
    assert "could not revoke the hub token (cannot reach the hub" in p.stdout, p.stdout
    assert not (home / "login.json").exists()


def test_a_login_file_others_can_read_is_refused(hub, tmp_path):
    home = tmp_path / "home"
    log_in(hub, home)
    os.chmod(home / "login.json", 0o644)
    for args in ([], ["check"]):
        p = run(args, home, JUPYTER_PROXY_PORT=str(free_port()))
        assert p.returncode == 1
        assert f"run 'chmod 600 {home / 'login.json'}'" in p.stdout + p.stderr, p.stdout + p.stderr
    p = run(["logout"], home)  # its token is the first to revoke
    assert p.returncode == 0 and "revoked the hub token" in p.stdout, p.stdout + p.stderr
    assert not (home / "login.json").exists()


@pytest.fixture(scope="module")
def sso_hub(start_hub):
    return start_hub(name="sso", authenticator="null", no_start=True)


def test_sso_hub_password_refused_with_the_way_out(sso_hub, tmp_path):
    p = run(login_args(sso_hub, "--set", "jupyter_username=alice", "--password-stdin"), tmp_path / "home", "x\n")
    assert p.returncode == 1
    assert "takes no password" in p.stderr and "--token-stdin" in p.stderr and "/hub/token" in p.stderr, p.stderr


def test_sso_hub_token_from_the_token_page(sso_hub, tmp_path):
    home = tmp_path / "home"
    pasted = sso_hub["users"]["alice"]["token"]
    p = run(login_args(sso_hub, "--token-stdin"), home, pasted + "\n")
    assert p.returncode == 0, p.stdout + p.stderr
    data = store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)})
    # it may make tokens: exchanged for the bridge's own (issue 21; tests/hub/test_oauth.py)
    assert data.hub_token.token != pasted and data.settings["jupyter_username"] == "alice"
    assert stat.S_IMODE((home / "login.json").stat().st_mode) == 0o600
    p = run(login_args(sso_hub, "--token-stdin"), tmp_path / "other", "not-a-token\n")
    assert p.returncode == 1 and "did not accept that token" in p.stderr
    assert not (tmp_path / "other" / "login.json").exists()


def test_check_says_to_log_in_again_when_the_stored_token_was_revoked(hub, tmp_path):
    home = tmp_path / "home"
    token = log_in(hub, home).hub_token
    revoked = httpx.delete(f"{hub['hub_api_internal']}/users/alice/tokens/{token.id}",
                           headers={"Authorization": f"token {hub['admin_token']}"})
    assert revoked.status_code == 204
    p = run(["check"], home, JUPYTER_PROXY_PORT=str(free_port()))
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1] == "    fix: Your hub token was revoked (or lost its rights) on the hub: " \
                                        "run ./run.sh login.", p.stdout


def test_the_ide_is_told_to_log_in_again_when_the_stored_token_was_revoked(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    token = log_in(hub, home).hub_token  # revoked before any server saw it: no token cache to wait for
    revoked = httpx.delete(f"{hub['hub_api_internal']}/users/alice/tokens/{token.id}",
                           headers={"Authorization": f"token {hub['admin_token']}"})
    assert revoked.status_code == 204
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    r = httpx.get(f"{bridge.url}/api/contents", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    # Issue 17: the revoked login token no longer goes to the server (a 403 there); the hub refuses to make the
    # access token with it, so the IDE gets 503, and it and the log say to log in again.
    advice = "Your hub token was revoked (or lost its rights) on the hub: run ./run.sh login."
    assert r.status_code == 503 and advice in r.json()["message"], r.text
    assert r.json()["message"].startswith("The bridge has no access token for your server: ")
    assert advice in bridge.log()
