"""Issue 29: what matters to a user, against every JupyterHub a user may have (4.1, 5.5, 6.1: the hubs ./run.sh
test sets up, devhub/launcher.py HUB_VENVS): sign-in (password, pasted token, browser), the renewal, the access
token, autostart with progress and options, a named server, servers/start/stop, sharing, a refused token's
diagnosis, kernels and terminals through the bridge. One hub per version for the whole module; docs/hub-versions.md
lists what each test shows on each version (tests/unit/test_hub_versions_doc.py checks it)."""

import json
import time
import uuid

import httpx
import pytest
from bridge_process import free_port
from kernel_client import shell_echo
from test_diagnosis_hub import diagnosed
from test_diagnosis_hub import web_bridge
from test_login import log_in
from test_login import login_args
from test_login import run
from test_oauth import Login
from test_oauth import authorize
from test_oauth import browser
from test_oauth import environment
from test_oauth import kernel_through
from test_oauth import sign_in
from test_servers import admin
from test_servers import admin_start
from test_servers import admin_stop
from test_servers import run_sh
from test_servers import server_model
from websockets.sync.client import connect as ws_connect

from addon import store

ALL = ("4.1", "5.5", "6.1")


@pytest.fixture(scope="module")
def hubs(start_hub):
    """The module's hub of a version, started when a test first needs it: alice and bob, carol whose spawns the hub
    rejects and dave whose spawns fail, the bridge's OAuth client, sharing where the hub has it, no server running
    (the tests start what they need)."""
    started = {}

    def of(version: str) -> dict:
        if version not in started:
            started[version] = start_hub(name=f"hub-{version}", hub_version=version, users="alice,bob,carol,dave",
                                         spawn_reject="carol", spawn_fail="dave", no_start=True, sharing=version != "4.1", oauth_client="jupyterhub-bridge",
                                         oauth_port=free_port())
        return started[version]
    return of


@pytest.fixture
def vhub(hubs, hub_version):
    return hubs(hub_version)


def stored(home):
    return store.load({"JUPYTERHUB_BRIDGE_HOME": str(home)}).hub_token


def terminal_through(bridge) -> str:
    """Run `echo` in a terminal through the bridge; what came back."""
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=60) as c:
        r = c.post("/api/terminals")
        assert r.status_code == 200, r.text
        name = r.json()["name"]
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/terminals/websocket/{name}", additional_headers=auth,
                        open_timeout=30) as ws:
            seen = shell_echo(ws)
        assert c.delete(f"/api/terminals/{name}").status_code == 204
    return seen


@pytest.mark.hub_versions(*ALL)
def test_password_login_then_autostart_kernel_and_terminal_through_the_bridge(vhub, hub_version, tmp_path,
                                                                             start_bridge):
    """login --password-stdin asks for the scopes the hub defines; the bridge, on what login stored, starts the
    stopped server (the hub's progress in its log), sends it an access token of its own, and carries a kernel's
    and a terminal's WebSockets."""
    admin_stop(vhub, "alice")
    home = tmp_path / "home"
    made = log_in(vhub, home).hub_token
    assert ("read:users:shares!user=alice" in made.scopes) is (hub_version != "4.1")  # 4.1 answers 500 to it
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    assert kernel_through(bridge) == ("alice\n", "42")
    assert "Starting your server: 100%" in bridge.log()
    assert "from-alice" in terminal_through(bridge)
    access = [t for t in admin(vhub, "GET", "/users/alice/tokens").json()["api_tokens"]
              if t["note"].startswith("jupyterhub-bridge on ") and ": access to alice/" in t["note"]]
    # 4.1 lists, with the one scope asked for, the read:users:name and :groups of alice every token has there
    assert access and all({"access:servers!server=alice/"} == {scope for scope in t["scopes"] if not scope.endswith(
        ("read:users:name!user=alice", "read:users:groups!user=alice"))} for t in access), [t["scopes"] for t in access]


@pytest.mark.hub_versions(*ALL)
def test_a_pasted_token_is_exchanged_and_the_stored_login_is_renewed(vhub, tmp_path, start_bridge):
    home = tmp_path / "home"
    pasted = admin(vhub, "POST", "/users/alice/tokens", json={"note": "from the token page"}).json()["token"]
    p = run(login_args(vhub, "--set", "jupyter_username=alice", "--token-stdin"), home, pasted + "\n",
            JUPYTER_TOKEN_LIFETIME="20")
    assert p.returncode == 0 and "Exchanged the pasted token for the bridge's own token" in p.stdout, p.stdout + p.stderr
    first = stored(home)
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})
    deadline = time.monotonic() + 40  # due when 4 s of 20 are left
    while stored(home).token == first.token and time.monotonic() < deadline:
        time.sleep(0.5)
    second = stored(home)
    assert second.token != first.token and second.scopes == first.scopes, "not renewed within 40 s"
    r = httpx.get(f"{bridge.url}/api/kernelspecs", headers={"Authorization": f"token {bridge.token}"}, timeout=120)
    assert r.status_code == 200, r.text


@pytest.mark.hub_versions(*ALL)
def test_browser_login_and_the_admins_lines(vhub, hub_version, tmp_path):
    """login --browser through the hub's OAuth client (each version's own configuration: devhub's
    jupyterhub_config.py), signing in on the hub's own pages."""
    secret = tmp_path / "secret"
    secret.write_text(vhub["oauth_client"]["client_secret"] + "\n")
    secret.chmod(0o600)
    home = tmp_path / "home"
    login = Login(vhub, environment(home, vhub, secret), "--set", "jupyter_username=alice")  # no terminal to ask on
    url = login.authorize_url()
    with browser(vhub) as client:
        sign_in(client, vhub, "alice")
        back = authorize(client, url)
    assert httpx.get(back.headers["location"]).status_code == 200
    status, output = login.finish()
    assert status == 0, output
    assert stored(home).user == "alice"
    status, out, err = run_sh(vhub, tmp_path, "admin", "oauth-config")  # the lines for this hub's version
    assert status == 0 and f"(for JupyterHub {vhub['hub_version']}, the version of your hub)" in out, out + err
    assert ("c.JupyterHub.extra_user_scopes = " in out) is (hub_version == "6.1"), out
    assert ("read:users:shares!user" in out) is (hub_version != "4.1"), out


@pytest.mark.hub_versions(*ALL)
def test_servers_start_and_stop_a_named_server_with_options(vhub, hub_version, tmp_path):
    """The options go in the body each version takes (6: under user_options; older: the whole body)."""
    options = {"profile": "gpu-small", "display_name": "GPU"}  # display_name: a 6.x hub would take it as its own
    name = f"v{uuid.uuid4().hex[:6]}"
    status, out, err = run_sh(vhub, tmp_path, "start", name, JUPYTER_SERVER_OPTIONS=json.dumps(options))
    assert status == 0 and out.rstrip().endswith(f"server '{name}' of 'alice' is ready"), out + err
    assert "Starting your server: 100%" in out, out
    assert server_model(vhub, "alice", name)["user_options"] == options
    status, out, err = run_sh(vhub, tmp_path, "servers")
    assert status == 0 and f"/user/alice/{name}/" in out, out + err
    status, out, err = run_sh(vhub, tmp_path, "stop", name)
    assert status == 0 and f"server '{name}' of 'alice' has stopped" in out, out + err


@pytest.mark.hub_versions(*ALL)
def test_sharing_or_the_line_that_says_the_hub_has_none(vhub, hub_version, tmp_path, start_bridge):
    """5.x and 6.x: bob's server, shared with alice, is listed and served to her token; 4.1 has no sharing, and
    `servers` says so in one line."""
    if hub_version == "4.1":
        status, out, err = run_sh(vhub, tmp_path, "servers")
        assert status == 0 and err.splitlines() == [
            "note: servers shared with you: none, JupyterHub 4.1.6 has no sharing (5.0 and later have it)"], err
        return
    admin_start(vhub, "bob")
    bob = {"Authorization": f"token {vhub['users']['bob']['token']}"}
    r = httpx.post(f"{vhub['hub_api_internal']}/shares/bob/", json={"user": "alice"}, headers=bob, timeout=30)
    assert r.status_code in (200, 201), r.text
    status, out, err = run_sh(vhub, tmp_path, "servers")
    assert status == 0 and "(default) (shared by bob)" in out and not err, out + err
    bridge = start_bridge(vhub, user="bob", env={"JUPYTERHUB_API_TOKEN": vhub["users"]["alice"]["token"]})
    r = httpx.get(f"{bridge.url}/api/status", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 200, r.text
    assert "sharing bug" not in bridge.log()  # 5.5.4 and 6.1.1 have 5.5.1's fix (the warning: unit-tested)


@pytest.mark.hub_versions(*ALL)
def test_a_refused_token_is_diagnosed(vhub, start_bridge):
    admin_start(vhub, "alice")
    made = admin(vhub, "POST", "/users/alice/tokens", json={"note": "to revoke"}).json()
    assert admin(vhub, "DELETE", f"/users/alice/tokens/{made['id']}").status_code == 204
    bridge = web_bridge(start_bridge, vhub)
    marker = f"revoked-{uuid.uuid4().hex[:6]}"
    r = httpx.get(f"{bridge.url}/api/contents/{marker}", headers={"Authorization": f"token {made['token']}"},
                  timeout=30)
    assert r.status_code == 403, r.text
    assert diagnosed(bridge, marker, 403).startswith("Your server refused the hub token")


@pytest.mark.hub_versions(*ALL)
def test_a_rejected_start_is_told_apart_from_a_failed_one(vhub, tmp_path, start_bridge):
    """The start request's answer tells them apart (below 500: the hub's policy said no; JupyterHub 6 raises a
    SpawnException for it), in `start`, in the bridge's 503 and in its diagnosis."""
    status, out, err = run_sh(vhub, tmp_path, "start", user="carol")
    assert status == 1 and err.splitlines() == [
        "error: The hub rejected the start of your server: devhub --spawn-reject: no capacity for carol (HTTP 400). "
        "Starting it again will not help until that changes: see "
        f"https://{vhub['tls_name']}:{vhub['port']}/hub/home, or ask your hub admin."], err
    status, out, err = run_sh(vhub, tmp_path, "start", user="dave")
    assert status == 1 and err.startswith("error: Your server failed to start: ") and "devhub --spawn-fail" in err, err
    assert "rejected" not in err
    bridge = web_bridge(start_bridge, vhub, {"JUPYTERHUB_API_TOKEN": vhub["users"]["carol"]["token"],
                                             "JUPYTER_USERNAME": "carol"})
    r = httpx.get(f"{bridge.url}/api/status", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 503 and "rejected the start" in r.json()["message"], r.text
    assert diagnosed(bridge, "/api/status", 503).startswith("The hub rejected the start of your server: devhub")
