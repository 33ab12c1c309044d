"""Issues 12 and 9.2 in headless Chromium and with plain clients: what a browser that opened the connect URL
gives away to other pages on this machine, and what stays of the tokens in flows and in the log."""

import json
import os
import shutil
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from bridge_process import free_port
from kernel_client import V1
from kernel_client import execute
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                    reason=f"{CHROMIUM} missing (./run.sh test installs it as root)")
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a2b7e5a50000000049454e44ae426082")


@pytest.fixture(scope="module")
def hub_token(hub):
    return hub["users"]["alice"]["token"]


@pytest.fixture(scope="module")
def bridge(hub, hub_token, start_bridge):
    return start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token})


def node(script, *args, timeout=240):
    r = subprocess.run([shutil.which("node") or "node", str(CLIENTS / script), *args], cwd=CLIENTS,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


class OtherPages:
    """A server of someone else on this machine: it records the cookies browsers send it, and serves a page
    that tries to use the bridge from there (a script and an image from the user's server)."""

    def __init__(self):
        self.cookies: list[str] = []
        pages = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                pages.cookies.append(self.headers.get("Cookie") or "")
                target = self.path.partition("?target=")[2]
                body = ATTACK.replace("TARGET", target).encode() if target else b""
                self.send_response(200 if target else 404)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


ATTACK = """<!doctype html><html><head><title>waiting</title></head><body>
<img id="img" src="TARGET/files/side-door.png">
<script>
const found = {script: false, img: null};
const img = document.getElementById('img');
const report = () => { document.title = JSON.stringify(found); };
const done = new Promise(resolve => {
  if (img.complete) resolve(img.naturalWidth > 0);
  img.onload = () => resolve(true); img.onerror = () => resolve(false);
});
const s = document.createElement('script');
s.src = 'TARGET/files/side-door.js';
s.onload = () => { found.script = !!window.sideDoorRan; };
s.onerror = () => { found.script = false; };
document.body.appendChild(s);
Promise.all([done, new Promise(r => { s.addEventListener('load', r); s.addEventListener('error', r); })])
  .then(([loaded]) => { found.img = loaded; report(); });
</script></body></html>"""


@pytest.fixture(scope="module")
def side_door_files(bridge):
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=60) as c:
        for name, model in [("side-door.js", {"type": "file", "format": "text", "content": "window.sideDoorRan = true;"}),
                            ("side-door.png", {"type": "file", "format": "base64",
                                               "content": __import__("base64").b64encode(PNG).decode()})]:
            assert c.put(f"/api/contents/{name}", json=model).status_code in (200, 201)


@needs_chromium
def test_other_local_pages_get_nothing_usable_and_same_site_pages_cannot_use_the_cookie(bridge, side_door_files):
    """Issue 12.1: pages on another port of 127.0.0.1 and of localhost receive no credential; replaying what they
    received, with forged Origin and Sec-Fetch headers, is refused. Issue 12.2: a page on another port of the
    browser's own host name (same-site) cannot run the user's files or load them with the cookie."""
    pages = OtherPages()
    try:
        first = node("side_doors.mjs", f"{bridge.url}/?token={bridge.token}",
                     f"http://127.0.0.1:{pages.port}/?target={bridge.url}",
                     f"http://localhost:{pages.port}/?target=http://localhost:{bridge.port}")
        received = [c for c in pages.cookies if c]
        assert not any(f"jupyterhub-bridge-{bridge.port}" in c for c in received), received
        browser_host = first["lab"].split("/")[2]
        assert browser_host.endswith(f".localhost:{bridge.port}") and bridge.token not in first["lab"]
        assert "token=" not in first["lab"] and "bridge-login" not in first["lab"]
        assert first["reloaded"].startswith(f"http://{browser_host}/")
        ours = [c for c in first["cookies"] if c["name"] == f"jupyterhub-bridge-{bridge.port}"]
        assert ours == [{"name": f"jupyterhub-bridge-{bridge.port}", "domain": browser_host.split(":")[0],
                         "httpOnly": True}]
        for finding in first["findings"].values():
            assert finding == {"script": False, "img": False}
        replay_is_refused(bridge, received + [f"jupyterhub-bridge-{bridge.port}=x"], browser_host)
        # Issue 12.2: a page on the browser's own host name, another port (someone who learnt the name)
        pages.cookies.clear()
        second = node("side_doors.mjs", f"{bridge.url}/?token={bridge.token}",
                      f"http://{browser_host.split(':')[0]}:{pages.port}/?target=http://{browser_host}")
        assert list(second["findings"].values()) == [{"script": False, "img": False}]
    finally:
        pages.close()


def replay_is_refused(bridge, cookies, browser_host):
    forged = {"Origin": bridge.url, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    for cookie in cookies:
        for host in (f"127.0.0.1:{bridge.port}", f"localhost:{bridge.port}", browser_host):
            r = httpx.get(f"{bridge.url}/api/contents/side-door.js", headers={**forged, "Cookie": cookie, "Host": host})
            assert r.status_code in (401, 403), (cookie, host, r.status_code)
        with pytest.raises(InvalidStatus) as e:
            ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{uuid.uuid4()}/channels",
                       additional_headers={"Cookie": cookie}, subprotocols=[V1], open_timeout=30)
        assert e.value.response.status_code in (401, 403)


@needs_chromium
def test_jupyterlab_through_the_connect_url_leaves_no_token_in_flows_or_log(hub, hub_token, start_bridge,
                                                                           tmp_path):
    """Issue 9.2: the local token leaves the address bar at once (so no Referer carries it upstream), and
    neither token stays in full in a `-w` flow file or the log."""
    flows = tmp_path / "flows.mitm"
    b = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token}, args=["-w", str(flows)])
    # the Lab URL with the token, as the issue opened it: before the fix every script's Referer carried it
    result = node("lab.mjs", f"{b.url}/lab?token={b.token}", str(tmp_path / "lab.png"))
    assert result["output"] == "lab alice 42\n"
    assert b.token not in result["url"] and ".localhost:" in result["url"]
    assert b.stop() in (0, -15)
    saved, log = flows.read_bytes(), b.log()
    assert len(saved) > 100_000  # the Lab's scripts, its API calls and the kernel's WebSocket
    assert b"/static/lab/" in saved and b"Referer" in saved
    assert b.token.encode() not in saved and hub_token.encode() not in saved
    cookie, = [c["value"] for c in result["cookies"] if c["name"] == f"jupyterhub-bridge-{b.port}"]
    assert cookie.encode() not in saved and f"…{cookie[-4:]}".encode() in saved  # the browser's credential too
    assert b"bridge-login=%E2%80%A6" in saved  # and its ticket (issue 18.6)
    assert log.count(b.token) == 1  # the banner's connect URL, once
    assert hub_token not in log


def test_pages_keep_no_hub_token_when_they_stream(hub, hub_token, start_bridge):
    """Issue 12.3: pages over JUPYTER_PROXY_STREAM_BODIES stream past the `response` hook."""
    b = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": hub_token, "JUPYTER_PROXY_STREAM_BODIES": "4k"})
    page = httpx.get(f"{b.url}/lab", headers={"Authorization": f"token {b.token}"}, timeout=60)
    assert page.status_code == 200 and len(page.content) > 4096
    assert '"baseUrl": "/user/alice/"' in page.text
    assert hub_token not in page.text and f'"token": "{" " * len(hub_token)}"' in page.text
    assert page.headers["referrer-policy"] == "same-origin"


def test_a_page_over_a_mebibyte_keeps_no_hub_token(hub, hub_token, bridge):
    """Issue 12.3 with the default threshold: code running as the user grows the page config past 1 MiB."""
    auth = {"Authorization": f"token {bridge.token}"}
    with httpx.Client(base_url=bridge.url, headers=auth, timeout=120) as c:
        r = c.post("/api/sessions", json={"path": "big.ipynb", "name": "big.ipynb", "type": "notebook",
                                          "kernel": {"name": "python3"}})
        kernel = r.json()["kernel"]["id"]
        ws_url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
        code = ("import json, os, jupyter_core.paths as p\n"
                "d = os.path.join(p.jupyter_config_dir(), 'labconfig'); os.makedirs(d, exist_ok=True)\n"
                "f = os.path.join(d, 'page_config.json'); {action}\n")
        with ws_connect(ws_url, additional_headers=auth, subprotocols=[V1], open_timeout=30) as ws:
            write = "json.dump({'sideDoorPadding': 'x' * 1_200_000}, open(f, 'w')); print(f)"
            assert execute(ws, code.format(action=write))[0].strip().endswith("page_config.json")
            try:
                page = c.get("/lab")
            finally:
                execute(ws, code.format(action="os.remove(f)"))
        c.delete(f"/api/kernels/{kernel}")
    assert page.status_code == 200 and len(page.content) > 1_200_000
    assert "sideDoorPadding" in page.text and hub_token not in page.text
