"""Issue 3: the bridge holds the hub token; only its own local clients, with its own token, can use it."""

import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from bridge_process import ROOT
from bridge_process import free_port
from bridge_process import hub_env
from kernel_client import V1
from kernel_client import execute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect


@pytest.fixture(scope="module")
def hub_token(hub):
    return hub["users"]["alice"]["token"]


@pytest.fixture(scope="module")
def bridge(hub, hub_token, start_bridge):
    return start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token})


def direct(hub, method, path, **kw):
    """The hub itself, as an admin: to see what reached alice's server."""
    headers = {"Authorization": f"token {hub['users']['alice']['token']}"}
    with httpx.Client(verify=ssl.create_default_context(cafile=hub["ca_file"]), timeout=60) as c:
        return c.request(method, f"https://{hub['host']}:{hub['port']}/user/alice{path}", headers=headers,
                         extensions={"sni_hostname": hub["tls_name"]}, **kw)


def new_session(c):
    name = f"s-{uuid.uuid4().hex[:8]}.ipynb"
    r = c.post("/api/sessions", json={"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text
    return r.json()["kernel"]["id"]


def ws_url(bridge, kernel, query=""):
    return f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}{query}"


def test_banner_prints_the_connect_url_with_the_local_secret_only(bridge, hub_token):
    assert bridge.token and bridge.token != hub_token
    assert f"paste into PyCharm: {bridge.url}/?token={bridge.token}" in bridge.log()


def test_local_secret_in_the_header_runs_code(bridge):
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=60) as c:
        kernel = new_session(c)
        with ws_connect(ws_url(bridge, kernel), additional_headers=auth, subprotocols=[V1], open_timeout=30) as ws:
            assert execute(ws, "21*2")[2] == "42"
        assert c.delete(f"/api/kernels/{kernel}").status_code == 204


def test_local_secret_in_the_query_runs_code_and_leaves_the_url(bridge):
    with httpx.Client(base_url=bridge.url, timeout=60) as c:
        kernel = new_session(httpx.Client(base_url=bridge.url, params={"token": bridge.token}, timeout=60))
        with ws_connect(ws_url(bridge, kernel, f"&token={bridge.token}"), open_timeout=30) as ws:
            assert execute(ws, "print('q')")[0] == "q\n"
        assert c.delete(f"/api/kernels/{kernel}?token={bridge.token}").status_code == 204
    assert bridge.token not in bridge.log().split("paste into PyCharm", 1)[1].split("\n", 1)[1]


def test_browser_login_flow(bridge, hub_token):
    """A browser opens the connect URL: it is sent to the bridge's own host name for it (`<random>.localhost`)
    with a short-lived ticket, gets an HttpOnly SameSite=Strict cookie there and the same URL without the ticket,
    then the Lab page without the hub token in its page config, and works on the cookie alone, WebSocket
    included. The local token is in no URL after the first (issue 9.2)."""
    nav = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-Dest": "document"}
    first = httpx.get(f"{bridge.url}/lab?token={bridge.token}", headers=nav)
    assert first.status_code == 302 and bridge.token not in first.headers["location"]
    assert first.headers["referrer-policy"] == "no-referrer"
    browser_host, _, rest = first.headers["location"].removeprefix("http://").partition("/")
    assert browser_host.endswith(f".localhost:{bridge.port}") and rest.startswith("lab?bridge-login=")
    assert "set-cookie" not in first.headers  # nothing for 127.0.0.1, which every local port shares
    host = {"Host": browser_host}
    second = httpx.get(f"{bridge.url}/{rest}", headers={**nav, **host})
    assert second.status_code == 302 and second.headers["location"] == "/lab"
    cookie = second.headers["set-cookie"]
    assert cookie.startswith(f"jupyterhub-bridge-{bridge.port}=") and bridge.token not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    jar = cookie.split(";")[0]
    with httpx.Client(base_url=bridge.url, headers={**host, "Cookie": jar}, timeout=60) as browser:
        page = browser.get("/lab", headers=nav)
        assert page.status_code == 200
        assert '"baseUrl": "/user/alice/"' in page.text
        assert hub_token not in page.text and bridge.token not in page.text
        own = {"Origin": f"http://{browser_host}", "Sec-Fetch-Site": "same-origin"}
        kernel = new_session(httpx.Client(base_url=bridge.url, headers={**host, **own, "Cookie": jar}, timeout=60))
        url = ws_url(bridge, kernel).replace(f"127.0.0.1:{bridge.port}", browser_host)  # dialled at 127.0.0.1:
        sock = socket.create_connection(("127.0.0.1", bridge.port), timeout=30)
        with ws_connect(url, sock=sock, additional_headers={**own, "Cookie": jar}, subprotocols=[V1],
                        open_timeout=30) as ws:
            assert execute(ws, "print('cookie')")[0] == "cookie\n"
        assert browser.delete(f"/user/alice/api/kernels/{kernel}", headers=own).status_code == 204
        same_site = browser.get("/api/status", headers={"Sec-Fetch-Site": "same-site"})
        assert same_site.status_code == 403 and "cookie" in same_site.json()["message"]  # issue 12.2
    # the cookie elsewhere than on the browser's host name can only be a replay (issue 12.1)
    assert httpx.get(f"{bridge.url}/api/status", headers={"Cookie": jar}).status_code == 401
    # a ticket is no credential for a plain client, nor on another host name
    ticket_only = httpx.get(f"{bridge.url}/{rest}", headers=host)
    assert ticket_only.status_code == 401
    # and it gets one cookie only (issue 18.6: 3 of 3 replays within the minute got it)
    replay = httpx.get(f"{bridge.url}/{rest}", headers={**nav, **host})
    assert replay.status_code == 401 and "set-cookie" not in replay.headers


def test_open_gives_a_browser_a_single_use_url(bridge):
    """Issue 18.6: `./run.sh open` prints a URL on the browser name that the running bridge takes once, so the
    IDE's permanent token need not be typed into a browser; the ticket stays out of the bridge's log."""
    env = {**bridge.env, "JUPYTER_PROXY_TOKEN": bridge.token, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "addon.commands.open", "--no-open"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip().rsplit(" ", 1)[1]
    assert bridge.token not in r.stdout and "/lab?bridge-login=" in url
    browser_host, _, rest = url.removeprefix("http://").partition("/")
    assert browser_host.endswith(f".localhost:{bridge.port}")
    nav = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none", "Sec-Fetch-Dest": "document", "Host": browser_host}
    first = httpx.get(f"{bridge.url}/{rest}", headers=nav)
    assert first.status_code == 302 and first.headers["location"] == "/lab"
    jar = first.headers["set-cookie"].split(";")[0]
    status = httpx.get(f"{bridge.url}/api/status", headers={"Host": browser_host, "Cookie": jar}, timeout=60)
    assert status.status_code == 200
    replay = httpx.get(f"{bridge.url}/{rest}", headers=nav)
    assert replay.status_code == 401 and "set-cookie" not in replay.headers
    ticket = rest.partition("bridge-login=")[2]
    assert ticket not in bridge.log() and jar.split("=", 1)[1] not in bridge.log()


def test_no_credential_is_401_with_how_to_connect(bridge):
    r = httpx.get(f"{bridge.url}/api/status")
    assert r.status_code == 401
    assert f"{bridge.url}/?token=<the bridge's token>" in r.json()["message"]
    with pytest.raises(InvalidStatus) as e:
        ws_connect(ws_url(bridge, "0" * 8), open_timeout=30)
    assert e.value.response.status_code == 401


def test_a_token_that_is_not_the_local_secret_is_the_clients_own(bridge):
    assert httpx.get(f"{bridge.url}/api/status?token=wrong").status_code == 403  # the hub judged it
    assert httpx.get(f"{bridge.url}/api/status", headers={"Authorization": "token wrong"}).status_code == 403


FOREIGN = [{"Origin": "https://evil.example"}, {"Host": "evil.example:8000"}, {"Sec-Fetch-Site": "cross-site"},
           {"Origin": "null"}]


@pytest.mark.parametrize("foreign", FOREIGN, ids=lambda h: "-".join(f"{k}={v}" for k, v in h.items()))
@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_foreign_callers_are_refused_and_nothing_is_created(bridge, hub, method, foreign):
    name = f"evil-{uuid.uuid4().hex[:8]}"
    path = {"GET": "/api/contents", "POST": "/api/terminals", "PUT": f"/api/contents/{name}.txt"}[method]
    body = {"PUT": {"type": "file", "format": "text", "content": "x"}, "POST": {"name": name}}.get(method)
    terminals_before = direct(hub, "GET", "/api/terminals").json()
    r = httpx.request(method, f"{bridge.url}{path}?token={bridge.token}", json=body, headers=foreign)
    assert r.status_code == 403, r.text
    assert "Refused" in r.json()["message"]
    assert direct(hub, "GET", f"/api/contents/{name}.txt").status_code == 404
    assert direct(hub, "GET", "/api/terminals").json() == terminals_before


@pytest.mark.parametrize("foreign", FOREIGN[:2], ids=["origin", "host"])
def test_foreign_kernel_websocket_is_refused(bridge, foreign):
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=60) as c:
        kernel = new_session(c)
        with pytest.raises(InvalidStatus) as e:
            ws_connect(ws_url(bridge, kernel), additional_headers={**auth, **foreign}, open_timeout=30)
        assert e.value.response.status_code == 403
        c.delete(f"/api/kernels/{kernel}")


def test_empty_local_secret_works_on_loopback(hub, hub_token, start_bridge):
    b = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token, "JUPYTER_PROXY_TOKEN": ""})
    assert httpx.get(f"{b.url}/api/status").status_code == 200
    assert "JUPYTER_PROXY_TOKEN is empty" in b.log()


def test_empty_local_secret_is_refused_off_loopback(hub, hub_token):
    env = {**hub_env(hub), "JUPYTERHUB_API_TOKEN": hub_token, "JUPYTER_PROXY_TOKEN": "",
           "JUPYTER_PROXY_IP_OR_NAME": "0.0.0.0", "JUPYTER_PROXY_PORT": str(free_port()), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(ROOT / "run.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        "error: JUPYTER_PROXY_TOKEN is empty while the bridge listens on '0.0.0.0', which others can reach: "
        "set a token, or listen on localhost.")


def test_token_file(hub, hub_token, start_bridge, tmp_path):
    f = tmp_path / "hub-token"
    f.write_text(hub_token + "\n")
    f.chmod(0o644)
    env = {**hub_env(hub), "JUPYTERHUB_API_TOKEN_FILE": str(f), "JUPYTER_PROXY_PORT": str(free_port()),
           "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(ROOT / "run.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and f"run 'chmod 600 {f}'" in r.stderr
    f.chmod(0o600)
    b = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN_FILE": str(f)})
    assert httpx.get(f"{b.url}/api/status?token={b.token}").status_code == 200


def test_secrets_never_in_logs_or_saved_flows(hub, hub_token, start_bridge, tmp_path):
    flows = tmp_path / "flows.mitm"
    b = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token},
                     args=["--set", "termlog_verbosity=debug", "--set", "flow_detail=4", "-w", str(flows)])
    local = b.token
    with httpx.Client(base_url=b.url, timeout=60) as c:
        kernel = new_session(httpx.Client(base_url=b.url, headers={"Authorization": f"token {local}"}, timeout=60))
        with ws_connect(ws_url(b, kernel, f"&token={local}"), open_timeout=30) as ws:
            execute(ws, "print('x')")
        c.get(f"/lab?token={local}", headers={"Sec-Fetch-Mode": "navigate"})
        c.get("/api/status")  # 401
        c.get(f"/api/contents?token={local}", headers={"Origin": "https://evil.example"})  # 403
        c.get(f"/api/contents?TOKEN={local}")  # 401, every spelling redacted (issue 12.6)
        c.get(f"/api/contents?a=1;token={local}", headers={"Referer": f"{b.url}/lab?token={local}"})
        c.delete(f"/api/kernels/{kernel}?token={local}")
    assert b.stop() in (0, -15)
    log, saved = b.log(), flows.read_bytes()
    assert len(saved) > 1000
    assert hub_token not in log and hub_token.encode() not in saved
    assert log.count(local) == 1  # the banner's connect URL, once
    assert local.encode() not in saved
    # redacted, still telling tokens apart; issue 17: what went upstream is the access token, not the hub token
    assert "token …".encode() in saved and f"token …{hub_token[-4:]}".encode() not in saved


def test_mitmweb_is_bound_to_loopback_with_its_own_token(hub, hub_token, start_bridge):
    web_port = free_port()
    b = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token}, web=True,
                     args=["--set", f"web_port={web_port}"])
    deadline = time.monotonic() + 30
    while f"127.0.0.1:{web_port}/?token=" not in b.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"http://127.0.0.1:{web_port}/?token=" in b.log()
    assert httpx.get(f"http://127.0.0.1:{web_port}/flows").status_code == 403
    assert httpx.get(f"{b.url}/api/status?token={b.token}").status_code == 200


def test_a_client_without_the_local_token_does_not_start_a_stopped_server(start_hub, start_bridge):
    """Issue 12.4: `?token=bogus` made the bridge start the server with the hub token; now it is told the server
    is stopped and how to start it, and the server stays stopped until the bridge's own client asks."""
    stopped = start_hub(name="sec-stopped", users="alice", no_start=True)
    b = start_bridge(stopped, env={"JUPYTERHUB_API_TOKEN": stopped["users"]["alice"]["token"]})
    admin = {"Authorization": f"token {stopped['admin_token']}"}

    def running():
        user = httpx.get(f"{stopped['hub_api_internal']}/users/alice", headers=admin, timeout=30).json()
        return "" in user["servers"]

    for bogus in ({"params": {"token": "bogus"}}, {"headers": {"Authorization": "token bogus"}}):
        r = httpx.get(f"{b.url}/api/status", timeout=60, **bogus)
        assert r.status_code == 503, r.text
        assert "starts it only for clients that present the bridge's own token" in r.json()["message"]
    assert not running() and "Starting your server" not in b.log()
    r = httpx.get(f"{b.url}/api/status?token={b.token}", timeout=120)
    assert r.status_code == 200 and running()


@pytest.fixture(scope="module")
def slow_hub(start_hub):
    """A hub whose server is stopped and takes seconds to start: a request that starts it stays in flight."""
    return start_hub(name="sec-slow", users="alice", no_start=True, spawn_delay="alice=6")


def stop_alice(hub):
    admin = {"Authorization": f"token {hub['admin_token']}"}
    httpx.delete(f"{hub['hub_api_internal']}/users/alice/server", headers=admin, timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "" not in httpx.get(f"{hub['hub_api_internal']}/users/alice", headers=admin, timeout=30).json()["servers"]:
            return
        time.sleep(0.3)
    pytest.fail("alice's server did not stop")


def in_flight(bridge, path="/api/status"):
    """A request that waits for the server's start, in a thread; join() it when done, its `status` then
    (None: the bridge stopped before it answered)."""
    def send():
        try:
            t.status = httpx.get(f"{bridge.url}{path}?token={bridge.token}", timeout=120).status_code
        except httpx.HTTPError:
            t.status = None
    t = threading.Thread(target=send)
    t.start()
    return t


def test_mitmweb_never_shows_the_hub_token_of_a_request_in_flight(slow_hub, start_bridge):
    """Issue 12.5: mitmweb serves every flow as it stands, also one whose answer has not come yet."""
    stop_alice(slow_hub)
    hub_token = slow_hub["users"]["alice"]["token"]
    web_port = free_port()
    b = start_bridge(slow_hub, env={"JUPYTERHUB_API_TOKEN": hub_token}, web=True, args=["--set", f"web_port={web_port}"])
    web_token = b.log().split(f"127.0.0.1:{web_port}/?token=", 1)[1].split()[0]
    request = in_flight(b)
    seen, deadline = [], time.monotonic() + 60
    while request.is_alive() and time.monotonic() < deadline:
        flows = httpx.get(f"http://127.0.0.1:{web_port}/flows", params={"token": web_token}, timeout=30).json()
        seen += [h for f in flows for h in f["request"]["headers"] if h[0].lower() == "authorization"]
        time.sleep(0.1)
    request.join()
    assert request.status == 200  # sent again after the start, with the access token in full on the wire
    assert seen and all(hub_token not in value for _, value in seen), seen
    # issue 17: what goes upstream is the access token (redacted here), never the hub token
    assert ["Authorization", f"token …{hub_token[-4:]}"] not in seen
    assert all(value.startswith("token …") and len(value) == len("token …abcd") for _, value in seen), seen


def test_a_flow_file_written_with_a_request_in_flight_holds_no_hub_token(slow_hub, start_bridge, tmp_path):
    """Issue 12.5: mitmdump writes the flows still in flight when it stops, as they stand."""
    stop_alice(slow_hub)
    hub_token = slow_hub["users"]["alice"]["token"]
    flows = tmp_path / "flows.mitm"
    b = start_bridge(slow_hub, env={"JUPYTERHUB_API_TOKEN": hub_token}, args=["-w", str(flows)])
    request = in_flight(b)
    deadline = time.monotonic() + 30
    while "Starting your server" not in b.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b.stop() in (0, -15)
    request.join()
    saved = flows.read_bytes()
    assert b"/user/alice/api/status" in saved  # the flow in flight was written
    assert hub_token.encode() not in saved and b.token.encode() not in saved


def test_a_chunked_request_with_trailers_is_one_warning_line(bridge):
    """Issue 12.6: mitmproxy does not read request trailers; the log says so in one line, not a traceback."""
    request = (f"POST /api/contents HTTP/1.1\r\nHost: 127.0.0.1:{bridge.port}\r\nAuthorization: token {bridge.token}"
               "\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n2\r\n{}\r\n0\r\nX-Checksum: 1\r\n\r\n")
    with socket.create_connection(("127.0.0.1", bridge.port), timeout=30) as s:
        s.sendall(request.encode())
        s.settimeout(3)
        try:
            while s.recv(65536):  # mitmproxy leaves the connection open, unanswered
                pass
        except TimeoutError:
            pass
    deadline = time.monotonic() + 10
    while "trailers" not in bridge.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "A client sent a chunked request with trailers, which mitmproxy cannot read" in bridge.log()
    assert "Traceback" not in bridge.log() and "NotImplementedError" not in bridge.log()
