"""Issue 5 against real hubs: a stopped server is started by the bridge, and the request that found it
stopped is answered as if it had been running. Own hubs: these tests stop servers."""

import concurrent.futures
import re
import time
import uuid

import httpx
import pytest
from kernel_client import execute
from websockets.sync.client import connect as ws_connect


@pytest.fixture(scope="module")
def hubs(start_hub):
    # bob's spawns fail, carol's take a minute; both hubs start at once
    plain = start_hub.launch(name="life", users="alice,bob,carol", no_start=True, spawn_fail="bob",
                             spawn_delay="carol=60")
    prefixed = start_hub.launch(name="life-prefixed", base_url="/jupyter/", no_start=True)
    return start_hub.wait(plain), start_hub.wait(prefixed)


@pytest.fixture(scope="module")
def hub(hubs):
    return hubs[0]


def admin(hub, method, path, **kw):
    return httpx.request(method, f"{hub['hub_api_internal']}{path}", timeout=60,
                         headers={"Authorization": f"token {hub['admin_token']}"}, **kw)


def stop_server(hub, user="alice", server=""):
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    assert admin(hub, "DELETE", path).status_code in (202, 204, 400, 404)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if server not in admin(hub, "GET", f"/users/{user}").json()["servers"]:
            return
        time.sleep(0.3)
    pytest.fail(f"{user}'s server did not stop")


def starts(hub, user="alice"):
    """How many start requests the hub accepted, from its log."""
    with open(hub["log_file"], errors="replace") as f:
        return len(re.findall(rf"\b20[12] POST {hub['base_url']}hub/api/users/{user}/server\b", f.read()))


def env(hub, user="alice", **extra):
    return {"JUPYTERHUB_API_TOKEN": hub["users"][user]["token"], **extra}


def client(bridge):
    return httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=120)


def test_get_put_and_kernel_after_a_stop(hub, start_bridge):
    bridge = start_bridge(hub, env=env(hub), user="")
    assert "user 'alice' is the owner of the hub token" in bridge.log()  # discovered from the token
    with client(bridge) as c:
        for attempt in ("GET", "PUT", "kernel"):
            stop_server(hub)
            if attempt == "GET":
                r = c.get("/api/contents")
                assert r.status_code == 200 and r.json()["type"] == "directory", r.text
            elif attempt == "PUT":
                r = c.put("/api/contents/after-stop.txt", json={"type": "file", "format": "text", "content": "x"})
                assert r.status_code == 201, r.text
            else:
                r = c.post("/api/kernels", json={"name": "python3"})
                assert r.status_code == 201, r.text
                url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{r.json()['id']}/channels?token={bridge.token}"
                with ws_connect(url, open_timeout=60) as ws:
                    assert execute(ws, "print(6*7)")[0] == "42\n"
    log = bridge.log()
    assert "Starting your server: 100% Server ready at /user/alice/" in log, log
    assert log.count("Starting your server: 0% Server requested") >= 3, log


def test_ten_concurrent_requests_cause_one_start(hub, start_bridge):
    bridge = start_bridge(hub, env=env(hub))
    stop_server(hub)
    before = starts(hub)
    with client(bridge) as c, concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda i: c.get(f"/api/contents?{i}"), range(10)))
    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
    assert starts(hub) - before == 1


def test_a_websocket_waits_for_the_start_under_way(hub, start_bridge):
    bridge = start_bridge(hub, env=env(hub))
    with client(bridge) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, (r.status_code, r.headers, r.text)
        kernel = r.json()["id"]
        stop_server(hub)
        # keep the server stopped long enough for a start to be under way when the WebSocket comes
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = pool.submit(c.get, "/api/status")
            time.sleep(0.5)
            url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?token={bridge.token}"
            t0 = time.monotonic()
            with pytest.raises(Exception) as gone:
                ws_connect(url, open_timeout=60).close()
            assert started.result().status_code == 200
    # the kernel died with the server: the upgrade waited for the start, then the new server said 404
    assert "404" in str(gone.value) and time.monotonic() - t0 > 0.5, gone.value


@pytest.mark.parametrize("user, words", [("bob", "devhub --spawn-fail"), ("carol", "did not start within 3 s")])
def test_failing_and_slow_spawns_give_a_503_with_the_reason(hub, start_bridge, user, words):
    bridge = start_bridge(hub, env=env(hub, user, JUPYTER_START_TIMEOUT="3"), user=user)
    t0 = time.monotonic()
    with client(bridge) as c:
        r = c.get("/api/status")
    assert r.status_code == 503 and words in r.json()["message"], r.text
    assert time.monotonic() - t0 < 20


def test_autostart_off_and_no_token_answer_503_at_once(hub, start_bridge):
    stop_server(hub)
    off = start_bridge(hub, env=env(hub, JUPYTER_AUTOSTART="false"))
    with client(off) as c:
        r = c.get("/api/status")
    assert r.status_code == 503 and "JUPYTER_AUTOSTART is off" in r.json()["message"]
    assert "/hub/home" in r.json()["message"]
    plain = start_bridge(hub)
    token = hub["users"]["alice"]["token"]
    r = httpx.get(f"{plain.url}/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 503 and "JUPYTERHUB_API_TOKEN" in r.json()["message"]
    with pytest.raises(Exception) as refused:  # a WebSocket gets the same 503, not a redirect
        ws_connect(f"ws://127.0.0.1:{plain.port}/api/kernels/x/channels?token={token}", open_timeout=30)
    assert "503" in str(refused.value)


def test_token_without_start_scope_names_it(hub, start_bridge):
    stop_server(hub)
    r = admin(hub, "POST", "/users/alice/tokens", json={"scopes": ["access:servers!user=alice"], "note": "no-start"})
    assert r.status_code == 201, r.text
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": r.json()["token"]})
    with client(bridge) as c:
        r = c.get("/api/status")
    assert r.status_code == 503 and "start:servers" in r.json()["message"], r.text


def test_username_that_is_not_the_token_owner_is_reported(hub, start_bridge):
    bridge = start_bridge(hub, env=env(hub, "bob"))
    assert "the hub token belongs to the user 'bob', not to JUPYTER_USERNAME 'alice'" in bridge.log()


def test_hub_under_a_prefix_and_a_named_server_that_does_not_exist_yet(hubs, start_bridge):
    hub = hubs[1]
    bridge = start_bridge(hub, env=env(hub, JUPYTER_NAMED_SERVER=f"n{uuid.uuid4().hex[:6]}"))
    with client(bridge) as c:
        r = c.get("/api/contents")
        assert r.status_code == 200, r.text
        assert c.get("/").headers["location"] == "/lab?"
    assert re.search(r"20[12] POST /jupyter/hub/api/users/alice/servers/n", open(hub["log_file"]).read())


def start_server(hub, user="alice"):
    assert admin(hub, "POST", f"/users/{user}/server").status_code in (201, 202, 400)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        if admin(hub, "GET", f"/users/{user}").json()["servers"].get("", {}).get("ready"):
            return
        time.sleep(0.3)
    pytest.fail(f"{user}'s server did not start")


def test_a_stopped_named_server_is_started_while_the_default_one_runs(hub, start_bridge):
    # The hub's proxy sends /user/alice/<named>/... to the running default server, which answers 404.
    start_server(hub)
    name = f"w{uuid.uuid4().hex[:6]}"
    bridge = start_bridge(hub, env=env(hub, JUPYTER_NAMED_SERVER=name))
    with client(bridge) as c:
        r = c.get("/api/contents")
        assert r.status_code == 200, r.text
        assert c.get("/api/contents/no-such-file").status_code == 404  # the named server's own 404 stays
    assert admin(hub, "GET", "/users/alice").json()["servers"][name]["ready"]


def test_the_bridge_recovers_when_the_hub_restarts(start_hub, start_bridge):
    first = start_hub(name="life-restart", no_start=True)
    bridge = start_bridge(first, env=env(first))
    with client(bridge) as c:
        assert c.get("/api/status").status_code == 200  # started by the bridge
        start_hub.stop(first)  # the hub and alice's server go away
        for _ in range(3):
            assert c.get("/api/status").status_code == 502  # the hub is gone; the bridge is not
        assert bridge.proc.poll() is None
        again = start_hub(workdir=first["workdir"], port=first["port"], no_start=True)  # same CA, tokens, port
        assert c.get("/api/status").status_code == 200  # the next request starts alice's server again
    assert starts(again) >= 1
