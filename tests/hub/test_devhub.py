"""The local JupyterHub of `python -m devhub`, checked from outside like the bridge will see it:
TLS on 127.0.0.1 verified with the private CA and the name `jupyterhub`, user tokens, kernels."""

import base64
import hashlib
import html
import json
import os
import re
import secrets
import ssl
import time
import urllib.parse
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from kernel_client import execute
from websockets.sync.client import connect as ws_connect


def tls_context(hub):
    return ssl.create_default_context(cafile=hub["ca_file"])


def get(hub, path, token=None, tls_name=None, **kw):
    """GET https://127.0.0.1:<port><path>, dialling the IP, verifying `tls_name` (jupyterhub)."""
    headers = {"Authorization": f"token {token}"} if token else {}
    with httpx.Client(verify=tls_context(hub), timeout=30) as client:
        return client.get(f"https://{hub['host']}:{hub['port']}{path}", headers=headers,
                          extensions={"sni_hostname": tls_name or hub["tls_name"]}, **kw)


def request(hub, method, path, token, body=None):
    with httpx.Client(verify=tls_context(hub), timeout=60) as client:
        return client.request(method, f"https://{hub['host']}:{hub['port']}{path}",
                              headers={"Authorization": f"token {token}"} if token else {}, json=body,
                              extensions={"sni_hostname": hub["tls_name"]})


def user_prefix(hub, user="alice", server=""):
    return f"{hub['base_url']}user/{user}/" + (f"{server}/" if server else "")


class Kernel:
    """A kernel session on a user's server, driven over its WebSocket channels (JSON framing)."""

    def __init__(self, hub, user="alice", server=""):
        self.hub, self.prefix = hub, user_prefix(hub, user, server)
        self.token = hub["users"][user]["token"]
        name = f"devhub-test-{uuid.uuid4().hex[:8]}.ipynb"
        r = request(hub, "POST", f"{self.prefix}api/sessions", self.token,
                    {"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}})
        assert r.status_code == 201, r.text
        self.session_id = r.json()["id"]
        self.kernel_id = r.json()["kernel"]["id"]
        self._stack = ExitStack()
        self.ws = self._stack.enter_context(ws_connect(
            f"wss://{hub['host']}:{hub['port']}{self.prefix}api/kernels/"
            f"{self.kernel_id}/channels?session_id={uuid.uuid4().hex}",
            ssl=tls_context(hub), server_hostname=hub["tls_name"],
            additional_headers={"Authorization": f"token {self.token}"},
            open_timeout=30, max_size=None))

    def execute(self, code, timeout=60):
        """Run code; returns (stdout text, stderr text, execute_result text/plain or None)."""
        return execute(self.ws, code, timeout)

    def close(self):
        self._stack.close()
        request(self.hub, "DELETE", f"{self.prefix}api/sessions/{self.session_id}", self.token)


@pytest.fixture(scope="module")
def hub2(start_hub):
    """A second hub: base_url /jupyter/, two users, iopub rate limit raised for benchmarks."""
    return start_hub(name="hub2", base_url="/jupyter/", users="alice,bob",
                     iopub_data_rate_limit=1_000_000_000)


def test_ready_file(hub):
    assert hub["hub_url"] == f"https://127.0.0.1:{hub['port']}"
    assert hub["host"] == "127.0.0.1" and hub["tls_name"] == "jupyterhub" and hub["base_url"] == "/"
    assert Path(hub["ca_file"]).is_file() and Path(hub["workdir"]).is_dir()
    assert hub["hub_api_internal"].startswith("http://127.0.0.1:") and hub["hub_api_internal"].endswith("/hub/api")
    assert set(hub["users"]) == {"alice"}
    assert hub["users"]["alice"]["token"] and len(hub["users"]["alice"]["password"]) >= 8
    os.kill(hub["pid"], 0)  # alive
    print(f"\ndevhub start (launcher wall time): {hub['launcher_start_seconds']} s; "
          f"devhub's own: {hub['start_seconds']} s")


def test_hub_api_over_tls_with_name(hub):
    r = get(hub, "/hub/api")
    assert r.status_code == 200
    assert r.json()["version"] == "6.1.1"


def test_tls_name_127_0_0_1_is_rejected(hub):
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        get(hub, "/hub/api", tls_name="127.0.0.1")
    # and the default (no sni_hostname): httpx verifies the URL's host, 127.0.0.1, which is not in the cert
    with httpx.Client(verify=tls_context(hub)) as client:
        with pytest.raises(httpx.ConnectError, match="IP address mismatch|certificate verify failed"):
            client.get(f"https://127.0.0.1:{hub['port']}/hub/api")


def test_unknown_ca_is_rejected(hub):
    with httpx.Client(verify=ssl.create_default_context()) as client:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            client.get(f"https://127.0.0.1:{hub['port']}/hub/api",
                       extensions={"sni_hostname": "jupyterhub"})


def test_admin_token_on_internal_api(hub):
    r = httpx.get(hub["hub_api_internal"] + "/users/alice",
                  headers={"Authorization": f"token {hub['admin_token']}"})
    assert r.status_code == 200
    server = r.json()["servers"][""]
    assert server["ready"] is True and server["url"] == "/user/alice/"


def test_alice_token_reaches_her_server(hub):
    token = hub["users"]["alice"]["token"]
    r = get(hub, "/user/alice/api/status", token)
    assert r.status_code == 200 and "kernels" in r.json()
    r = get(hub, "/user/alice/api/kernelspecs", token)
    assert r.status_code == 200 and "python3" in r.json()["kernelspecs"]
    r = get(hub, "/hub/api/user", token)
    assert r.status_code == 200 and r.json()["name"] == "alice"


def test_no_token_is_not_let_in(hub):
    r = get(hub, "/user/alice/api/status")
    assert r.status_code in (302, 403)
    r = get(hub, "/user/alice/api/status?token=" + hub["users"]["alice"]["token"])
    assert r.status_code != 200  # JupyterHub >= 5 ignores URL tokens


def test_kernel_execute_over_websocket(hub):
    kernel = Kernel(hub)
    try:
        out, err, result = kernel.execute("print('hello from', 6 * 7)\n6 * 7")
        assert out == "hello from 42\n" and result == "42", err
        out, _, _ = kernel.execute("import os; print(os.environ['HOME'])")
        assert out.strip() == os.path.join(hub["workdir"], "home", "alice")
    finally:
        kernel.close()


def test_default_iopub_rate_limit_cuts_big_output(hub):
    kernel = Kernel(hub)
    try:
        out, err, _ = kernel.execute("print('x' * 5_000_000)")
        assert "IOPub data rate exceeded" in out + err
    finally:
        kernel.close()


def test_second_hub_with_base_url(hub, hub2):
    assert hub2["port"] != hub["port"] and hub2["base_url"] == "/jupyter/"
    assert hub2["hub_api_internal"].endswith("/jupyter/hub/api")
    r = get(hub2, "/jupyter/hub/api")
    assert r.status_code == 200 and r.json()["version"] == "6.1.1"
    for user in ("alice", "bob"):
        r = get(hub2, f"/jupyter/user/{user}/api/status", hub2["users"][user]["token"])
        assert r.status_code == 200, (user, r.status_code)
    # bob's token does not open alice's server
    r = get(hub2, "/jupyter/user/alice/api/status", hub2["users"]["bob"]["token"])
    assert r.status_code == 403
    # the two hubs have different CAs
    with pytest.raises(httpx.ConnectError):
        with httpx.Client(verify=tls_context(hub)) as client:
            client.get(f"https://127.0.0.1:{hub2['port']}/jupyter/hub/api",
                       extensions={"sni_hostname": "jupyterhub"})


def test_raised_iopub_rate_limit(hub2):
    kernel = Kernel(hub2)
    try:
        out, err, _ = kernel.execute("print('x' * 5_000_000)")
        assert "IOPub data rate exceeded" not in out + err
        assert len(out) == 5_000_001
    finally:
        kernel.close()


def _tree(pid):
    """PIDs of the live descendants of pid (from /proc)."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_two_hubs_start_concurrently_and_stop_cleanly(start_hub):
    t0 = time.monotonic()
    handles = [start_hub.launch(name="concurrent-a"), start_hub.launch(name="concurrent-b", no_start=True)]
    a, b = (start_hub.wait(h) for h in handles)
    elapsed = time.monotonic() - t0
    print(f"\ntwo hubs started concurrently in {elapsed:.1f} s")
    assert len({a["port"], b["port"], a["hub_api_internal"], b["hub_api_internal"]}) == 4
    assert get(b, "/hub/api").status_code == 200
    r = httpx.get(b["hub_api_internal"] + "/users/alice", headers={"Authorization": f"token {b['admin_token']}"})
    assert r.json()["servers"] == {}  # --no-start

    kernel = Kernel(a)  # a kernel process too, to see it go
    assert kernel.execute("1 + 1")[2] == "2"
    trees = {info["pid"]: _tree(info["pid"]) for info in (a, b)}
    assert len(trees[a["pid"]]) >= 4  # jupyterhub, CHP, single-user server, kernel
    assert len(trees[b["pid"]]) >= 2  # jupyterhub, CHP
    t1 = time.monotonic()
    assert start_hub.stop(a) == 0
    assert start_hub.stop(b) == 0
    print(f"stopped in {time.monotonic() - t1:.1f} s")
    for pid in (a["pid"], b["pid"]):
        left = [p for p in trees[pid] if _alive(p)]
        assert not left, f"processes left after devhub {pid} stopped: {left}"
    assert not Path(a["workdir"], "ready.json").exists()  # removed at stop


def test_demo_password_logs_in(hub):
    with httpx.Client(verify=tls_context(hub), timeout=30) as client:
        base = f"https://{hub['host']}:{hub['port']}"
        ext = {"sni_hostname": hub["tls_name"]}
        client.get(f"{base}/hub/login", extensions=ext)
        xsrf = client.cookies.get("_xsrf")
        assert xsrf
        form = {"username": "alice", "_xsrf": xsrf}
        bad = client.post(f"{base}/hub/login", data={**form, "password": "wrong-password"}, extensions=ext)
        assert bad.status_code == 403
        ok = client.post(f"{base}/hub/login", data={**form, "password": hub["users"]["alice"]["password"]},
                         extensions=ext)
        assert ok.status_code == 302, ok.text[:300]
        assert any(c.name == "jupyterhub-session-id" or c.name.startswith("jupyterhub-hub-login")
                   for c in client.cookies.jar)


# ---- sign-in without a password, user options, sharing ------------------------------------------------------

@pytest.fixture(scope="module")
def sso_hub(start_hub):
    """A hub whose sign-in takes no password (--authenticator null) and whose users may share (--sharing)."""
    return start_hub(name="hub-sso", users="alice,bob", authenticator="null", sharing=True)


def token_by_password(hub, password):
    """The token API's password form (note 34): what a client without a token tries first."""
    return request(hub, "POST", "/hub/api/users/alice/tokens", token="",
                   body={"auth": {"username": "alice", "password": password}})


def test_password_hub_takes_a_password(hub):
    assert 'type="password"' in get(hub, "/hub/login").text
    assert token_by_password(hub, "wrong-password").status_code == 403
    made = token_by_password(hub, hub["users"]["alice"]["password"])
    assert made.status_code == 201 and made.json()["token"]


def test_null_authenticator_takes_no_password(sso_hub):
    page = get(sso_hub, "/hub/login")
    assert page.status_code == 200
    assert 'type="password"' not in page.text and "Sign in with devhub SSO" in page.text
    assert sso_hub["authenticator"] == "null" and sso_hub["users"]["alice"]["password"] is None
    refused = token_by_password(sso_hub, "anything")
    assert (refused.status_code, refused.json()) == (403, {"status": 403, "message": None})
    # the tokens in the ready file (made by the admin service) are the way in: pasted from a token page
    me = get(sso_hub, "/hub/api/user", token=sso_hub["users"]["alice"]["token"])
    assert me.status_code == 200 and me.json()["name"] == "alice"


def wait_server_ready(hub, user, server, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = get(hub, f"/hub/api/users/{user}/servers/{server}", token=hub["admin_token"])
        if r.status_code == 200 and r.json()["ready"]:
            return
        time.sleep(0.5)
    pytest.fail(f"{user}/{server} not ready in {timeout} s", pytrace=False)


def test_user_options_reach_the_kernel_and_a_bad_profile_is_refused(hub):
    token = hub["users"]["alice"]["token"]
    # both body forms JupyterHub 6.1.1 takes: {"user_options": {...}} and the options as the whole body
    for body in ({"user_options": {"profile": "nope"}}, {"profile": "nope"}):
        r = request(hub, "POST", "/hub/api/users/alice/servers/refused", token, body)
        assert (r.status_code, r.json()["message"]) == (400, "devhub: profile 'nope' is not one of small, gpu-small")
    r = request(hub, "POST", "/hub/api/users/alice/servers/opts", token,
                {"user_options": {"profile": "gpu-small", "cpus": 2}})
    assert r.status_code in (201, 202), r.text
    try:
        wait_server_ready(hub, "alice", "opts")
        kernel = Kernel(hub, server="opts")
        try:
            out = kernel.execute("import os; print(os.environ['DEVHUB_USER_OPTIONS'])")[0]
        finally:
            kernel.close()
        assert json.loads(out) == {"profile": "gpu-small", "cpus": 2}
    finally:
        request(hub, "DELETE", "/hub/api/users/alice/servers/opts", token, {"remove": True})


def test_user_token_scopes(sso_hub, hub2):
    """A token in the ready file carries all its owner's scopes, managing their own tokens included."""
    scopes = set(get(sso_hub, "/hub/api/user", token=sso_hub["users"]["alice"]["token"]).json()["scopes"])
    assert {"tokens!user=alice", "servers!user=alice", "access:servers!user=alice",
            "shares!user=alice", "read:users:name"} <= scopes
    plain = set(get(hub2, f"{hub2['base_url']}hub/api/user", token=hub2["users"]["alice"]["token"]).json()["scopes"])
    assert "tokens!user=alice" in plain and "shares!user=alice" not in plain  # no --sharing


def test_bob_shares_his_server_with_alice(sso_hub, hub2):
    def share(hub):
        return request(hub, "POST", f"{hub['base_url']}hub/api/shares/bob/", hub["users"]["bob"]["token"],
                       {"user": "alice"})

    assert share(hub2).status_code == 403  # without --sharing users may not share
    alice = sso_hub["users"]["alice"]["token"]
    # bob's server caches what it learns about a token (HubAuth.cache_max_age, 5 min): ask with another one
    other = request(sso_hub, "POST", "/hub/api/users/alice/tokens", sso_hub["admin_token"], {"note": "t"})
    assert get(sso_hub, "/user/bob/api/status", token=other.json()["token"]).status_code == 403
    r = share(sso_hub)
    assert r.status_code == 200, r.text
    assert r.json()["scopes"] == ["access:servers!server=bob/"]
    assert get(sso_hub, "/user/bob/api/status", token=alice).status_code == 200
    shared = get(sso_hub, "/hub/api/users/alice/shared", token=alice).json()["items"]
    assert [(s["server"]["user"]["name"], s["server"]["name"]) for s in shared] == [("bob", "")]


# ---- --record-auth and --oauth-client ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def oauth_hub(start_hub):
    """Servers that record the Authorization header they receive; an OAuth client for the bridge, PKCE required."""
    from bridge_process import free_port

    return start_hub(name="hub-oauth", users="alice,bob", record_auth=True, oauth_client="jupyterhub-bridge",
                     oauth_port=free_port(), oauth_require_pkce=True)


def records(hub, user):
    lines = Path(hub["users"][user]["auth_record"]).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_servers_record_the_authorization_they_receive(oauth_hub):
    alice, bob = (oauth_hub["users"][user]["token"] for user in ("alice", "bob"))
    record = Path(oauth_hub["users"]["alice"]["auth_record"])
    assert record.parent == Path(oauth_hub["workdir"], "auth-records")
    assert get(oauth_hub, "/user/alice/api/status", token=alice).status_code == 200
    # bob may not use alice's server, yet her server's code sees his token before it refuses him (field note 43)
    assert get(oauth_hub, "/user/alice/api/status", token=bob).status_code == 403
    seen = [(r["path"], r["authorization"]) for r in records(oauth_hub, "alice")]
    assert ("/user/alice/api/status", f"token {alice}") in seen and ("/user/alice/api/status", f"token {bob}") in seen
    assert record.stat().st_mode & 0o777 == 0o600
    assert f"token {alice}" not in {r["authorization"] for r in records(oauth_hub, "bob")}  # one file per user


def test_without_record_auth_nothing_is_recorded(hub):
    assert hub["record_auth"] is False and hub["users"]["alice"]["auth_record"] is None
    assert not Path(hub["workdir"], "auth-records").exists()


def sign_in(client, hub, user):
    """A browser's sign-in on the hub's login page (password authenticator): the client keeps the session cookie."""
    base, ext = f"https://{hub['host']}:{hub['port']}", {"sni_hostname": hub["tls_name"]}
    client.get(f"{base}/hub/login", extensions=ext)
    form = {"username": user, "password": hub["users"][user]["password"], "_xsrf": client.cookies.get("_xsrf")}
    assert client.post(f"{base}/hub/login", data=form, extensions=ext).status_code == 302


def authorize(client, hub, query):
    """GET the authorize URL as the signed-in browser and press Authorize; the hub's redirect (or refusal)."""
    base, ext = f"https://{hub['host']}:{hub['port']}", {"sni_hostname": hub["tls_name"]}
    page = client.get(f"{base}/hub/api/oauth2/authorize", params=query, extensions=ext)
    if page.status_code != 200:
        return page
    form = {"_xsrf": client.cookies.get("_xsrf"),
            "scopes": [html.unescape(scope) for scope in re.findall(r'name="scopes" value="([^"]*)"', page.text)]}
    return client.post(f"{base}/hub/api/oauth2/authorize", params=query, data=form, extensions=ext)


def test_oauth_client_signs_a_user_in_with_pkce(oauth_hub):
    client_info = oauth_hub["oauth_client"]
    assert client_info["client_id"] == "service-jupyterhub-bridge" and client_info["require_pkce"] is True
    assert client_info["redirect_uri"].startswith("http://127.0.0.1:") and client_info["client_secret"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {"client_id": client_info["client_id"], "redirect_uri": client_info["redirect_uri"],
             "response_type": "code", "state": "the-state"}
    with httpx.Client(verify=tls_context(oauth_hub), timeout=30) as browser:
        sign_in(browser, oauth_hub, "alice")
        refused = authorize(browser, oauth_hub, query)  # --oauth-require-pkce: no code_challenge, no code
        assert refused.status_code == 302, refused.text[:300]
        refusal = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(refused.headers["location"]).query))
        assert refusal.get("error") == "invalid_request" and "code" not in refusal, refusal
        back = authorize(browser, oauth_hub, query | {"code_challenge": challenge, "code_challenge_method": "S256"})
    assert back.status_code == 302, back.text[:300]
    redirect = urllib.parse.urlsplit(back.headers["location"])
    assert redirect._replace(query="").geturl() == client_info["redirect_uri"]
    answer = dict(urllib.parse.parse_qsl(redirect.query))
    assert answer["state"] == "the-state"
    made = request_form(oauth_hub, "/hub/api/oauth2/token", {
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": client_info["redirect_uri"],
        "client_id": client_info["client_id"], "client_secret": client_info["client_secret"],
        "code_verifier": verifier})
    assert made.status_code == 200, made.text
    me = get(oauth_hub, "/hub/api/user", token=made.json()["access_token"]).json()
    assert me["name"] == "alice" and "tokens!user=alice" in me["scopes"]
    # the client's own token (its secret) can do nothing: the service has no roles
    assert get(oauth_hub, "/hub/api/users/alice", token=client_info["client_secret"]).status_code == 403


def request_form(hub, path, form):
    with httpx.Client(verify=tls_context(hub), timeout=30) as client:
        return client.post(f"https://{hub['host']}:{hub['port']}{path}", data=form,
                           extensions={"sni_hostname": hub["tls_name"]})
