"""Issue 4: every failure gets one cause and one fix, as the flow's comment, marked, and as one WARNING line
per cause and minute; produced for real against the devhub hub and mitmweb (`./run.sh web`)."""

import os
import secrets
import signal
import ssl
import time
import uuid
from pathlib import Path

import httpx
import pytest
import trustme
from bridge_process import free_port
from expired_tls import expired_hub
from kernel_client import execute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from addon.core import diagnose


def web_bridge(start, hub, env=None):
    """A bridge in mitmweb with a known web port and password; .flows() reads mitmweb's flow list."""
    web_port, password = free_port(), secrets.token_hex(8)
    b = start(hub, env={"PYTHONUNBUFFERED": "1", **(env or {})}, web=True,
              args=["--set", f"web_port={web_port}", "--set", f"web_password={password}"])

    def flows():
        end = time.monotonic() + 20
        while True:
            try:
                return httpx.get(f"http://127.0.0.1:{web_port}/flows", params={"token": password}, timeout=10).json()
            except httpx.TransportError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.2)
    b.flows, b.web_port, b.password = flows, web_port, password
    return b


def diagnosed(bridge, path_part, status=None, timeout=10.0):
    """The comment of the newest flow whose path contains path_part, once it is diagnosed and marked."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for f in reversed(bridge.flows()):
            if path_part in f["request"]["path"] and f["comment"] and (
                    status is None or (f.get("response") or {}).get("status_code") == status):
                assert f["marked"], f
                return f["comment"]
        time.sleep(0.2)
    raise AssertionError(f"no diagnosed flow for {path_part!r}: {bridge.flows()}")


def warnings(bridge, words):
    return [line for line in bridge.log().splitlines() if words in line]


@pytest.fixture(scope="module")
def admin(hub):
    return {"Authorization": f"token {hub['admin_token']}"}


def new_token(hub, admin, scopes=None):
    body = {"note": f"diag-{uuid.uuid4().hex[:6]}", **({"scopes": scopes} if scopes else {})}
    r = httpx.post(f"{hub['hub_api_internal']}/users/alice/tokens", headers=admin, json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()


def hub_answer(hub, method, path, token=None, origin=None):
    """The hub's own answer, without the bridge in between."""
    ctx = ssl.create_default_context(cafile=hub["ca_file"])
    headers = {"Host": f"jupyterhub:{hub['port']}", **({"Authorization": f"token {token}"} if token else {}),
               **({"Origin": origin} if origin else {})}
    with httpx.Client(verify=ctx, timeout=60) as c:
        r = c.request(method, f"https://127.0.0.1:{hub['port']}{path}", headers=headers,
                      json={} if method == "POST" else None, extensions={"sni_hostname": "jupyterhub"})
    return diagnose.Outcome(r.status_code, r.headers, r.text, method=method, credential=bool(token),
                           origin=bool(origin))


def test_no_credential_is_the_bridges_own_401_in_body_comment_and_one_log_line(hub, start_bridge):
    b = web_bridge(start_bridge, hub, {"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"]})
    for _ in range(3):  # an IDE retrying
        r = httpx.get(b.url + "/api/kernelspecs", timeout=30)
        assert r.status_code == 401
    message = r.json()["message"]
    comment = diagnosed(b, "/api/kernelspecs", 401)
    cause, _, fix = message.partition(": ")
    assert comment == f"The bridge answered 401: {cause}. Fix: {fix}"
    time.sleep(0.5)
    assert len(warnings(b, "No valid token. Fix:")) == 1, b.log()


@pytest.fixture(scope="module")
def open_bridge(hub, start_bridge):
    """Clients bring their own hub token: what the hub and the server say about it reaches the client."""
    return web_bridge(start_bridge, hub)


@pytest.mark.parametrize("kind", ["wrong", "revoked", "no-scope"])
def test_rejected_tokens(hub, admin, open_bridge, kind):
    if kind == "wrong":
        token = "0123456789abcdef0123456789abcdef"
    elif kind == "revoked":
        made = new_token(hub, admin)
        revoked = httpx.delete(f"{hub['hub_api_internal']}/users/alice/tokens/{made['id']}", headers=admin)
        assert revoked.status_code == 204
        token = made["token"]
    else:
        token = new_token(hub, admin, ["read:users:name!user=alice"])["token"]
    marker = f"{kind}-{uuid.uuid4().hex[:6]}"
    r = httpx.get(f"{open_bridge.url}/api/contents/{marker}", headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 403 and r.json()["message"] == "Forbidden"  # the server's real answer is kept
    comment = diagnosed(open_bridge, marker, 403)
    assert comment.startswith("Your server refused the hub token ('Forbidden'): it is wrong, expired or revoked")
    assert "access:servers" in comment and "Fix: Create a new token" in comment
    w = httpx.post(f"{open_bridge.url}/api/contents/{marker}", headers={"Authorization": f"token {token}"}, timeout=30)
    # an unknown token is no login at all ('_xsrf' missing); a known one without the scope is 'Forbidden'
    assert w.status_code == 403 and w.json()["message"] == ("Forbidden" if kind == "no-scope" else
                                                             "'_xsrf' argument missing from POST")
    assert "refused the hub token" in diagnosed(open_bridge, marker, 403)


def test_rejected_token_on_the_websocket(hub, open_bridge):
    kernel = uuid.uuid4()
    with pytest.raises(InvalidStatus) as e:
        ws_connect(f"ws://127.0.0.1:{open_bridge.port}/api/kernels/{kernel}/channels",
                   additional_headers={"Authorization": "token 0123456789abcdef"}, open_timeout=30)
    assert e.value.response.status_code == 403
    comment = diagnosed(open_bridge, f"{kernel}/channels", 403)
    assert "refused the hub token on the WebSocket ('Couldn't authenticate WebSocket connection')" in comment


def test_no_token_xsrf_means_not_authenticated(open_bridge):
    r = httpx.post(f"{open_bridge.url}/api/contents/no-token", json={}, timeout=30)
    assert r.status_code == 403 and "'_xsrf' argument missing from POST" in r.text
    comment = diagnosed(open_bridge, "no-token", 403)
    assert comment.startswith("Your server got no token (\"'_xsrf' argument missing from POST\"")
    assert "?token=" in comment


def test_cross_origin_blocks(hub, open_bridge):
    own = httpx.get(f"{open_bridge.url}/api/status?x=origin", headers={"Origin": "https://evil.example"}, timeout=30)
    assert own.status_code == 403
    assert diagnosed(open_bridge, "x=origin", 403).startswith("The bridge answered 403: Refused Origin")
    # The server's own block (404, 'Blocking Cross Origin API request' in its log) needs a foreign Origin that
    # is not token-authenticated, which the bridge never forwards: take the hub's real answer directly.
    r = hub_answer(hub, "GET", "/user/alice/api/status", origin="https://evil.example")
    assert r.status == 404
    found = diagnose.diagnose(r)
    assert found.key == "cross-origin" and "Blocking Cross Origin" in found.cause


@pytest.mark.parametrize("env, words", [
    ("JUPYTER_CLUSTER_CA_CERT", ["is not signed by the CA in", "(issued by OU=", "O=devhub private CA",
                                 "Fix: Set JUPYTER_CLUSTER_CA_CERT"]),
    ("JUPYTER_SERVER_NAME", ["The hub's certificate is for jupyterhub, not for the TLS name 'not-the-hub'",
                             "Fix: Set JUPYTER_SERVER_NAME=<one of: jupyterhub>."]),
    ("JUPYTER_SERVER_PORT", ["Nothing accepts connections at 127.0.0.1:", "(connection refused)"]),
])
def test_connection_and_tls_failures(hub, start_bridge, tmp_path, env, words):
    value = {"JUPYTER_CLUSTER_CA_CERT": str(tmp_path / "other-ca.pem"), "JUPYTER_SERVER_NAME": "not-the-hub",
             "JUPYTER_SERVER_PORT": str(free_port())}[env]
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other-ca.pem"))
    b = web_bridge(start_bridge, hub, {env: value})
    r = httpx.get(b.url + "/api/status", timeout=30)
    assert r.status_code == 502  # mitmproxy writes this HTML 502 itself, after the addon's error hook
    comment = diagnosed(b, "/api/status")
    for word in words:
        assert word in comment
    assert warnings(b, words[0])




def test_expired_certificate(hub, start_bridge, tmp_path):
    with expired_hub(tmp_path) as (port, ca_file):
        b = web_bridge(start_bridge, hub, {"JUPYTER_SERVER_PORT": str(port), "JUPYTER_CLUSTER_CA_CERT": ca_file})
        assert httpx.get(b.url + "/api/status", timeout=30).status_code == 502
        comment = diagnosed(b, "/api/status")
    assert "The hub's certificate is valid only from 2000-01-01 00:00 UTC to 2001-01-01 00:00 UTC, not now" in comment
    assert "renew" in comment


@pytest.fixture(scope="module")
def diag_hub(start_hub):
    """A hub of our own, whose server we stop and kill, with a low IOPub data rate limit."""
    return start_hub(name="diag", iopub_data_rate_limit=100000)


def test_iopub_rate_limit(diag_hub, start_bridge):
    b = web_bridge(start_bridge, diag_hub, {"JUPYTERHUB_API_TOKEN": diag_hub["users"]["alice"]["token"]})
    auth = {"Authorization": f"token {b.token}"}
    with httpx.Client(base_url=b.url, headers=auth, timeout=120) as c:
        kernel = c.post("/api/kernels", json={"name": "python3"}).json()["id"]
        with ws_connect(f"ws://127.0.0.1:{b.port}/api/kernels/{kernel}/channels", additional_headers=auth,
                        open_timeout=30, max_size=None) as ws:
            _, err, _ = execute(ws, "for i in range(50): print('x' * 20000)")
        c.delete(f"/api/kernels/{kernel}")
    assert "IOPub data rate exceeded" in err
    comment = diagnosed(b, f"{kernel}/channels")
    assert "exceeded the server's IOPub data rate limit (100000 bytes/s)" in comment
    assert "iopub_data_rate_limit" in comment


def alice_server_pids(hub) -> list[int]:
    """The processes of alice's server under this hub (started by this test's devhub)."""
    children = {}
    for d in Path("/proc").iterdir():
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d.name))
        except (ValueError, OSError):
            continue
    todo, found = [hub["pid"]], []
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            todo.append(child)
            try:
                if b"JUPYTERHUB_USER=alice\0" in Path(f"/proc/{child}/environ").read_bytes():
                    found.append(child)
            except OSError:
                pass
    return found


def wait_for(predicate, timeout=90):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end
        time.sleep(0.5)


def test_stopped_and_crashed_server(diag_hub, start_bridge):
    api, adm = diag_hub["hub_api_internal"], {"Authorization": f"token {diag_hub['admin_token']}"}
    token = diag_hub["users"]["alice"]["token"]
    servers = lambda: httpx.get(f"{api}/users/alice", headers=adm, timeout=30).json()["servers"]  # noqa: E731
    assert httpx.delete(f"{api}/users/alice/server", headers=adm, timeout=60).status_code in (202, 204)
    wait_for(lambda: not servers())
    found = {key: diagnose.diagnose(hub_answer(diag_hub, m, p, token)) for key, m, p in [
        ("get", "GET", "/user/alice/api/status"), ("write", "POST", "/user/alice/api/contents"),
        ("followed", "GET", "/hub/user/alice/api/status")]}
    assert found["get"].key == "server-not-running" and "answered 302" in found["get"].cause
    assert found["write"].key == "server-not-running-write"  # the hub's HTML 403, not 405 (field notes 27, 31)
    assert found["write"].cause.startswith("Your server is not running: the hub itself answered this POST")
    assert found["followed"].key == "server-not-running" and "answered 424" in found["followed"].cause
    b = web_bridge(start_bridge, diag_hub, {"JUPYTERHUB_API_TOKEN": token, "JUPYTER_AUTOSTART": "false"})
    r = httpx.get(f"{b.url}/api/status?stopped=get", headers={"Authorization": f"token {b.token}"}, timeout=60)
    assert r.status_code >= 300
    assert "not running" in diagnosed(b, "stopped=get")
    # crashed: the server's process dies while the hub's proxy still routes to it
    assert httpx.post(f"{api}/users/alice/server", headers=adm, timeout=120).status_code in (201, 202)
    wait_for(lambda: servers().get("", {}).get("ready"))
    pids = alice_server_pids(diag_hub)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(1)
    crashed = hub_answer(diag_hub, "GET", "/user/alice/api/status", token)
    assert crashed.status == 503 and "Your server appears to be down" in crashed.body
    assert diagnose.diagnose(crashed).cause == "The hub's proxy cannot reach your server: it has stopped or crashed."
