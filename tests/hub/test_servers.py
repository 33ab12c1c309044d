"""Issue 11: choose the server you get. Spawn options sent with a start (the devhub spawner puts them into the
server's environment as DEVHUB_USER_OPTIONS and refuses unknown profiles with 400), `./run.sh servers`, `start`
and `stop`, and a server shared with you. Pure parts table-tested first, then against a real hub."""

import asyncio
import json
import os
import re
import subprocess
import time

import httpx
import pytest
from bridge_process import ROOT
from bridge_process import hub_env
from kernel_client import execute
from test_login import log_in
from test_login import run as run_with_home
from websockets.sync.client import connect as ws_connect

from addon.hub import api as hub_client
from addon.core import lifecycle
from addon.commands import servers
from addon.core import settings

# --------------------------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize("model, state", [
    ({"ready": True, "pending": None, "stopped": False}, "ready"),
    ({"ready": False, "pending": "spawn", "stopped": False}, "pending spawn"),
    ({"ready": True, "pending": "stop", "stopped": False}, "pending stop"),
    ({"ready": False, "pending": None, "stopped": True}, "stopped"),
    ({}, "stopped"),  # a server the hub has no model of
    ({"ready": False, "pending": None, "stopped": False}, "not ready"),
])
def test_state(model, state):
    assert lifecycle.state(model) == state


USER = {"name": "alice", "servers": {
    "gpu": {"name": "gpu", "ready": False, "stopped": True, "url": "/user/alice/gpu/", "started": None,
            "last_activity": "2026-11-29T10:00:00.123Z", "user_options": {"profile": "gpu-small"}},
    "": {"name": "", "ready": True, "stopped": False, "url": "/user/alice/", "started": "2026-11-29T09:00:00Z",
         "last_activity": "2026-11-29T09:30:00Z", "user_options": {}},
}}
SHARES = [{"server": {"user": {"name": "bob"}, "name": "", "url": "/user/bob/", "ready": True},
           "scopes": ["access:servers!server=bob/"]}]


def test_rows_and_table():
    rows = servers.own_rows(USER, ("alice", "gpu")) + servers.shared_rows(SHARES, ("alice", "gpu"))
    assert [(r["owner"], r["server"], r["state"], r["used"], r["shared_by"]) for r in rows] == [
        ("alice", "", "ready", False, ""), ("alice", "gpu", "stopped", True, ""), ("bob", "", "ready", False, "bob")]
    lines = servers.table(rows).splitlines()
    assert lines[0].split() == ["SERVER", "STATE", "URL", "STARTED", "LAST", "ACTIVITY", "OPTIONS"]
    assert lines[1].split() == ["(default)", "ready", "/user/alice/", "2026-11-29T09:00:00", "2026-11-29T09:30:00"]
    assert lines[2].split() == ["*", "gpu", "stopped", "/user/alice/gpu/", "2026-11-29T10:00:00", "profile=gpu-small"]
    assert lines[3].split()[:5] == ["(default)", "(shared", "by", "bob)", "ready"]


def test_the_default_server_is_listed_before_its_first_start():
    rows = servers.own_rows({"name": "carol", "servers": {}}, ("carol", ""))
    assert [(r["server"], r["state"], r["used"]) for r in rows] == [("", "stopped", True)]


@pytest.mark.parametrize("error, again", [
    (hub_client.HubError(400, "alice is pending stop"), True),
    (hub_client.HubError(400, "devhub: profile 'huge' is not one of small, gpu-small"), False),
    (hub_client.HubError(403, "is pending stop"), False),
    (None, False),
])
def test_only_a_pending_stop_is_asked_again(error, again):
    assert lifecycle.asked_again(error) is again


def resolved(**over) -> settings.Settings:
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.1.2.3", jupyter_username="alice", jupyterhub_api_token="t" * 32)
    values.update(over)
    return settings.resolve(values, {})


class FakeHub:
    """start_and_wait's calls, scripted: who the token is, the start request's answer, one progress stream."""

    def __init__(self, post, stream, me=None):
        self.post, self.stream, self.options = post, stream, []
        self.me = me or {"name": "alice", "kind": "user", "scopes": ["start:servers!user=alice"]}

    async def whoami(self):
        return self.me

    async def start(self, user, server, options=None):
        self.options.append(options)
        await asyncio.sleep(0.01)
        if isinstance(self.post, Exception):
            raise self.post
        return self.post

    async def progress(self, user, server):
        await asyncio.sleep(0.05)  # the stream shows a start only after the start request has reached the hub
        for event in self.stream:
            yield event


async def test_the_options_go_with_the_start():
    fake = FakeHub(202, [{"progress": 100, "ready": True}])
    await lifecycle.start_and_wait(fake, resolved(jupyter_server_options="profile=gpu-small"))
    assert fake.options == [{"profile": "gpu-small"}]


async def test_options_the_hub_refuses_say_so_with_its_reason():
    """The progress stream says only 'Spawn failed'; the start request's 400 has the hub's reason."""
    fake = FakeHub(hub_client.HubError(400, "devhub: profile 'huge' is not one of small"),
                   [{"progress": 100, "failed": True, "message": "Spawn failed: HTTP 400: error"}])
    with pytest.raises(lifecycle.StartFailed) as e:
        await lifecycle.start_and_wait(fake, resolved(jupyter_server_options='{"profile": "huge"}'))
    assert "JUPYTER_SERVER_OPTIONS profile=huge: devhub: profile 'huge' is not one of small." in str(e.value)


async def test_a_shared_server_is_not_started_by_a_token_that_may_not():
    fake = FakeHub(201, [], me={"name": "alice", "kind": "user",
                                "scopes": ["start:servers!user=alice", "access:servers!server=bob/"]})
    with pytest.raises(lifecycle.StartFailed, match="The server of 'bob' is shared with you \\('alice'\\)"):
        await lifecycle.start_and_wait(fake, resolved(jupyter_username="bob"))
    assert fake.options == []  # no start was asked for


# --------------------------------------------------------------------------------------------- real hub
# Spawns: alice's default and named servers, bob's shared one, carol's takes 20 s (a pending spawn to see).


@pytest.fixture(scope="module")
def hub(start_hub):
    return start_hub(name="servers", users="alice,bob,carol", no_start=True, sharing=True, spawn_delay="carol=20")


def admin(hub, method, path, **kw):
    return httpx.request(method, f"{hub['hub_api_internal']}{path}", timeout=60,
                         headers={"Authorization": f"token {hub['admin_token']}"}, **kw)


def server_model(hub, user, server=""):
    return admin(hub, "GET", f"/users/{user}?include_stopped_servers=1").json()["servers"].get(server)


def wait_for(hub, user, server, ready: bool):
    """Until the server is ready (or stopped), as the hub says; bounded."""
    end = time.monotonic() + 90
    while time.monotonic() < end:
        model = server_model(hub, user, server) or {"ready": False, "pending": None}
        if model["ready"] == ready and not model["pending"]:
            return
        time.sleep(0.3)
    pytest.fail(f"{user}/{server} did not become {'ready' if ready else 'stopped'}")


def admin_start(hub, user, server=""):
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    assert admin(hub, "POST", path).status_code in (201, 202, 400)
    wait_for(hub, user, server, ready=True)


def admin_stop(hub, user, server=""):
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    assert admin(hub, "DELETE", path).status_code in (202, 204, 404)
    wait_for(hub, user, server, ready=False)


def run_sh(hub, tmp_path, *args, user="alice", **env):
    """./run.sh with the settings a user sets for this hub and the user's token; (status, stdout, stderr)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    full.update(hub_env(hub, ""), JUPYTERHUB_API_TOKEN=hub["users"][user]["token"],
                JUPYTERHUB_BRIDGE_HOME=str(tmp_path / "bridge-home"), **env)
    done = subprocess.run([str(ROOT / "run.sh"), *args], env=full, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout, done.stderr


def run_in_kernel(bridge, code: str) -> str:
    with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=120) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{r.json()['id']}/channels?token={bridge.token}"
        with ws_connect(url, open_timeout=60) as ws:
            out, err, _ = execute(ws, code)
        assert not err, err
        return out


def test_a_stopped_server_started_by_the_bridge_runs_with_the_options(hub, start_bridge):
    # display_name tells the two body forms apart: JupyterHub 6 would read it from an options-only body as the
    # new form's display_name, and start the server without the options.
    options = {"profile": "gpu-small", "partition": "short", "display_name": "GPU"}
    admin_stop(hub, "alice")
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"],
                                    "JUPYTER_SERVER_OPTIONS": json.dumps(options)})
    out = run_in_kernel(bridge, "import os; print(os.environ['DEVHUB_USER_OPTIONS'])")
    assert json.loads(out) == options
    assert server_model(hub, "alice")["user_options"] == options
    assert "Starting your server: 100% Server ready at /user/alice/" in bridge.log()


def test_servers_lists_default_and_named_servers_with_their_states(hub, tmp_path):
    admin_start(hub, "alice")
    assert admin(hub, "PUT", "/users/alice/servers/later").status_code in (201, 409)  # created, never started
    status, out, err = run_sh(hub, tmp_path, "servers", "--json", JUPYTER_NAMED_SERVER="later")
    assert status == 0, err
    rows = {r["server"]: r for r in json.loads(out)}
    assert (rows[""]["state"], rows[""]["url"], rows[""]["used"]) == ("ready", "/user/alice/", False)
    assert rows[""]["started"] and rows[""]["last_activity"]
    assert (rows["later"]["state"], rows["later"]["used"]) == ("stopped", True)
    status, out, err = run_sh(hub, tmp_path, "servers", JUPYTER_NAMED_SERVER="later")
    assert status == 0 and re.search(r"^\* later +stopped +/user/alice/later/", out, re.M), out

    assert admin(hub, "POST", "/users/carol/server").status_code == 202  # carol's spawns wait 20 s first
    status, out, err = run_sh(hub, tmp_path, "servers", "--json", user="carol")
    assert status == 0 and json.loads(out)[0]["state"] == "pending spawn", (out, err)
    admin_stop(hub, "carol")


def test_stop_stops_and_start_starts_with_progress(hub, tmp_path):
    status, out, err = run_sh(hub, tmp_path, "start", "work", JUPYTER_SERVER_OPTIONS="profile=small")
    assert status == 0, err
    assert "Starting your server: 100% Server ready at /user/alice/work/" in out
    assert out.rstrip().endswith("server 'work' of 'alice' is ready"), out
    model = server_model(hub, "alice", "work")
    assert model["ready"] and model["user_options"] == {"profile": "small"}

    status, out, err = run_sh(hub, tmp_path, "stop", "work")
    assert status == 0 and re.search(r"server 'work' of 'alice' has stopped \([\d.]+ s\)", out), (out, err)
    model = server_model(hub, "alice", "work")
    assert model is not None and model["stopped"] and not model["pending"]  # stopped, not deleted
    status, out, err = run_sh(hub, tmp_path, "stop", "work")
    assert status == 0 and "is not running" in out


def test_a_server_bob_shares_with_alice_is_served_to_her_token(hub, start_bridge, tmp_path):
    admin_start(hub, "bob")
    bob = {"Authorization": f"token {hub['users']['bob']['token']}"}
    r = httpx.post(f"{hub['hub_api_internal']}/shares/bob/", json={"user": "alice"}, headers=bob, timeout=30)
    assert r.status_code in (200, 201), r.text

    alice = {"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"]}
    bridge = start_bridge(hub, env=alice, user="bob")
    assert "the server of 'bob' is shared with you ('alice'): the bridge uses your token; when the server is " \
           "stopped it cannot start it" in bridge.log()
    assert run_in_kernel(bridge, "import os; print(os.environ['JUPYTERHUB_USER'])") == "bob\n"
    status, out, err = run_sh(hub, tmp_path, "servers", "--json", JUPYTER_USERNAME="bob")
    assert status == 0, err
    shared = [r for r in json.loads(out) if r["shared_by"] == "bob"]
    assert [(r["owner"], r["server"], r["state"], r["used"]) for r in shared] == [("bob", "", "ready", True)]
    status, out, err = run_sh(hub, tmp_path, "check", JUPYTER_USERNAME="bob")
    assert status == 0 and "may use the server of 'bob': shared with you by bob" in out, (out, err)

    admin_stop(hub, "bob")  # alice may use bob's server, not start it: the bridge says so and does not try
    with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=60) as c:
        r = c.get("/api/status")
    assert r.status_code == 503 and "shared with you ('alice')" in r.json()["message"], r.text
    assert server_model(hub, "bob")["stopped"]


def test_options_the_hub_refuses_give_a_503_with_its_reason(hub, start_bridge, tmp_path):
    # While the default server runs, the proxy sends /user/alice/refused/… to it (the longest route), and it
    # answers 404: the bridge sees a stopped named server only when the default one is stopped too.
    admin_stop(hub, "alice")
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"],
                                    "JUPYTER_NAMED_SERVER": "refused", "JUPYTER_SERVER_OPTIONS": "profile=huge"})
    t0 = time.monotonic()
    with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=60) as c:
        r = c.get("/api/status")
    assert r.status_code == 503, r.text
    message = r.json()["message"]
    assert "JUPYTER_SERVER_OPTIONS profile=huge: devhub: profile 'huge' is not one of small, gpu-small" in message
    assert time.monotonic() - t0 < 30  # answered at once, not after JUPYTER_START_TIMEOUT
    assert "is not one of small, gpu-small" in bridge.log()  # the diagnosis line

    status, out, err = run_sh(hub, tmp_path, "start", "refused", JUPYTER_SERVER_OPTIONS='{"profile": "huge"}')
    assert status == 1 and "devhub: profile 'huge' is not one of" in err and "JUPYTER_SERVER_OPTIONS" in err


@pytest.mark.parametrize("command", [["servers"], ["start"], []])  # [] is the bridge itself
def test_bad_options_stop_the_start_with_one_line(hub, tmp_path, command):
    status, out, err = run_sh(hub, tmp_path, *command, JUPYTER_SERVER_OPTIONS='{"profile": "gpu"')
    assert status == 1 and err.strip().splitlines() == [
        "error: JUPYTER_SERVER_OPTIONS is not valid JSON (Expecting ',' delimiter: line 1 column 18 (char 17)): "
        'write a JSON object such as {"profile": "gpu-small"}, or key=value pairs separated by commas.'], err


# --------------------------------------------------------------------------------------------- issue 23
# Every subcommand works on what `./run.sh login` stored: no token, no hub setting in the environment.


def run_stored(home, *args: str, **env) -> subprocess.CompletedProcess:
    """./run.sh with the login stored in `home` and no token or hub setting in the environment (unless given)."""
    return run_with_home(list(args), home, **env)


def share_bobs_server_with_alice(hub):
    admin_start(hub, "bob")
    bob = {"Authorization": f"token {hub['users']['bob']['token']}"}
    r = httpx.post(f"{hub['hub_api_internal']}/shares/bob/", json={"user": "alice"}, headers=bob, timeout=30)
    assert r.status_code in (200, 201), r.text


def test_every_subcommand_works_on_what_login_stored(hub, tmp_path):
    share_bobs_server_with_alice(hub)
    home = tmp_path / "home"
    stored = log_in(hub, home)
    assert "read:users:shares!user=alice" in stored.hub_token.scopes

    p = run_stored(home, "check")
    assert p.returncode == 0 and "✗" not in p.stdout, p.stdout + p.stderr
    p = run_stored(home, "servers")
    assert p.returncode == 0 and not p.stderr, p.stdout + p.stderr
    assert re.search(r"^\s+\(default\) \(shared by bob\) +ready +/user/bob/", p.stdout, re.M), p.stdout
    p = run_stored(home, "servers", "--json")
    assert p.returncode == 0 and not p.stderr, p.stderr
    rows = json.loads(p.stdout)
    assert ("bob", "", "ready", "bob") in [(r["owner"], r["server"], r["state"], r["shared_by"]) for r in rows]
    assert ("alice", "") in [(r["owner"], r["server"]) for r in rows if not r["shared_by"]]

    admin_stop(hub, "alice")
    p = run_stored(home, "start")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.rstrip().endswith("the default server of 'alice' is ready"), p.stdout
    assert server_model(hub, "alice")["ready"]
    p = run_stored(home, "stop")
    assert p.returncode == 0 and "the default server of 'alice' has stopped" in p.stdout, p.stdout + p.stderr
    p = run_stored(home, "start", "stored")
    assert p.returncode == 0 and p.stdout.rstrip().endswith("server 'stored' of 'alice' is ready"), p.stdout + p.stderr
    assert server_model(hub, "alice", "stored")["ready"]
    p = run_stored(home, "stop", "stored")
    assert p.returncode == 0 and "server 'stored' of 'alice' has stopped" in p.stdout, p.stdout + p.stderr


def test_a_token_without_the_shares_scope_lists_own_servers_and_says_what_it_could_not(hub, tmp_path):
    share_bobs_server_with_alice(hub)
    made = admin(hub, "POST", "/users/alice/tokens", json={
        "scopes": ["access:servers!user=alice", "servers!user=alice", "read:users!user=alice"], "expires_in": 600})
    assert made.status_code == 201, made.text
    for args in (["servers"], ["servers", "--json"]):
        p = run_stored(tmp_path / "home", *args, **hub_env(hub, "alice"), JUPYTERHUB_API_TOKEN=made.json()["token"])
        assert p.returncode == 0, p.stdout + p.stderr
        assert p.stderr.splitlines() == [
            "note: servers shared with you: not shown, the token lacks read:users:shares!user=alice; run ./run.sh "
            "login for one that has it (the hub said: Action is not authorized with current scopes; requires any "
            "of [read:users:shares])"], p.stderr
        assert "shared by" not in p.stdout and "/user/bob/" not in p.stdout, p.stdout
    assert [r["owner"] for r in json.loads(p.stdout)] and all(r["owner"] == "alice" for r in json.loads(p.stdout))


def test_a_token_that_may_list_nothing_fails_with_both_reasons(hub, tmp_path):
    made = admin(hub, "POST", "/users/alice/tokens", json={"scopes": ["access:servers!user=alice"],
                                                            "expires_in": 600})
    assert made.status_code == 201, made.text
    p = run_stored(tmp_path / "home", "servers", **hub_env(hub, "alice"), JUPYTERHUB_API_TOKEN=made.json()["token"])
    assert p.returncode == 1 and not p.stdout, p.stdout
    lines = p.stderr.splitlines()
    # The hub gives this token the user's model without its servers: no refusal to quote.
    assert lines[0] == ("error: your own servers: not shown, the token lacks read:servers!user=alice; run ./run.sh "
                        "login for one that has it"), p.stderr
    assert lines[1].startswith("servers shared with you: not shown, the token lacks read:users:shares"), p.stderr
