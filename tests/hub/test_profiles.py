"""Login profiles against a real hub (issue 31): a login of before profiles is the `default` profile; a second
profile, for another user, gets the next free port from 8000 on, and the two bridges serve side by side, each
user's kernel in that user's own server; `profile use` and `profile remove` (which revokes that profile's token)."""

import httpx
import pytest
from kernel_client import execute
from test_login import accepted
from test_login import login_args
from test_login import run
from websockets.sync.client import connect as ws_connect

from addon import store
from addon.core import profiles


@pytest.fixture(scope="module")
def two_users(start_hub):
    return start_hub(name="profiles", users="alice,bob")


def log_in(hub, home, user: str, *extra: str):
    p = run([*login_args(hub, "--set", f"jupyter_username={user}", "--password-stdin"), *extra], home,
            hub["users"][user]["password"] + "\n")
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def kernel_user(bridge) -> str:
    with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=120) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{r.json()['id']}/channels?token={bridge.token}"
        with ws_connect(url, open_timeout=60) as ws:
            out, err, _ = execute(ws, "import os; print(os.environ['JUPYTERHUB_USER'])")
        assert not err, err
        return out.strip()


def test_two_profiles_serve_side_by_side_and_a_single_login_is_the_default(two_users, tmp_path, start_bridge):
    home = tmp_path / "home"
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(home)}
    log_in(two_users, home, "alice")  # as before profiles: no --profile anywhere
    assert (home / "login.json").is_file() and store.profile_names(environ) == ["default"]
    log_in(two_users, home, "bob", "--profile", "course")
    course = store.load(environ, name="course")
    port = int(course.settings["jupyter_proxy_port"])
    assert port > profiles.FIRST_PORT  # the default profile's bridge keeps 8000
    assert course.local_token != store.load(environ).local_token

    only_home = {"JUPYTERHUB_BRIDGE_HOME": str(home)}
    alice = start_bridge(env=only_home)
    bob = start_bridge(env=only_home, args=["--profile", "course"], port=port)
    assert kernel_user(alice) == "alice" and kernel_user(bob) == "bob"
    assert alice.token != bob.token
    r = httpx.get(f"{bob.url}/api/status", headers={"Authorization": f"token {alice.token}"}, timeout=60)
    assert r.status_code in (401, 403), r.text  # one profile's IDE URL does not open the other's bridge

    listed = run(["profile", "list"], home).stdout.splitlines()
    assert [line.split()[:2] for line in listed[1:]] == [["*", "default"], ["course", f"{two_users['host']}:"
                                                                                     f"{two_users['port']}/"]]
    assert run(["profile", "use", "course"], home).returncode == 0
    assert run(["profile", "list"], home).stdout.splitlines()[2].startswith("*")

    bob_token = course.hub_token.token
    assert accepted(two_users, bob_token)
    p = run(["profile", "remove", "course"], home)
    assert p.returncode == 0 and "revoked the hub token" in p.stdout, p.stdout + p.stderr
    assert not accepted(two_users, bob_token)
    assert store.profile_names(environ) == ["default"] and store.profile(environ) == "default"
