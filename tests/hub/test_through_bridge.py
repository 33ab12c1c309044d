"""Issue 2: a plain Jupyter client on the bridge's loopback URL uses alice's server behind a real
JupyterHub (TLS from a private CA, dialled by IP, verified by name), bringing its own hub token."""

import base64
import hashlib
import http.client
import json
import os
import time
import uuid

import httpx
import pytest
import trustme
from bridge_process import free_port
from kernel_client import V1
from kernel_client import execute
from kernel_client import shell_echo
from websockets.sync.client import connect as ws_connect


@pytest.fixture(scope="module")
def bridge(hub, start_bridge):
    return start_bridge(hub)


@pytest.fixture(scope="module")
def token(hub):
    return hub["users"]["alice"]["token"]


def client(bridge, token=None, **kw):
    headers = {"Authorization": f"token {token}"} if token else {}
    return httpx.Client(base_url=bridge.url, headers=headers, timeout=120, **kw)


def start_kernel(c):
    name = f"t-{uuid.uuid4().hex[:8]}.ipynb"
    r = c.post("/api/sessions", json={"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}})
    assert r.status_code == 201, r.text
    return r.json()["kernel"]["id"]


def test_rest_with_token_in_url_and_header(bridge, token):
    with client(bridge) as c:
        r = c.get(f"/api/status?token={token}")
        assert r.status_code == 200, r.text
        assert "kernels" in r.json()
    with client(bridge, token) as c:
        specs = c.get("/api/kernelspecs")
        assert specs.status_code == 200
        assert "python3" in specs.json()["kernelspecs"]


def test_url_token_moves_to_the_header_and_leaves_the_url(bridge, token):
    """JupyterHub 5+ ignores ?token= outside browsers: without the move this is 403."""
    with client(bridge) as c:
        r = c.get(f"/api/contents?1795648608158&token={token}")
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "directory"
        assert c.get("/api/contents").status_code == 403  # no token at all: the hub refuses


def test_kernel_session_executes_code_over_the_websocket(bridge, token):
    with client(bridge, token) as c:
        kernel = start_kernel(c)
        url = f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}&token={token}"
        with ws_connect(url, subprotocols=[V1], open_timeout=30, max_size=None) as ws:
            assert ws.subprotocol == V1
            out, err, result = execute(ws, "import os; print('hello from', os.environ['JUPYTERHUB_USER']); 6*7")
        assert (out, result) == ("hello from alice\n", "42"), err
        assert c.delete(f"/api/kernels/{kernel}").status_code == 204


def test_kernel_websocket_with_header_token_and_json_framing(bridge, token):
    with client(bridge, token) as c:
        kernel = start_kernel(c)
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels",
                        additional_headers={"Authorization": f"token {token}"}, open_timeout=30) as ws:
            assert ws.subprotocol is None
            assert execute(ws, "print(1+1)")[0] == "2\n"
        c.delete(f"/api/kernels/{kernel}")


def test_30mb_notebook_and_file_round_trip_byte_identical(bridge, token):
    blob = os.urandom(30 * 1024 * 1024)
    notebook = {"cells": [{"cell_type": "code", "execution_count": 1, "id": "c1", "metadata": {}, "source": "x",
                           "outputs": [{"output_type": "stream", "name": "stdout",
                                        "text": base64.b64encode(blob[:22 * 1024 * 1024]).decode()}]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    with client(bridge, token) as c:
        r = c.put("/api/contents/big.ipynb", json={"type": "notebook", "format": "json", "content": notebook})
        assert r.status_code in (200, 201), r.text
        back = c.get("/api/contents/big.ipynb?content=1")
        assert back.status_code == 200
        cell = back.json()["content"]["cells"][0]
        cell["metadata"].pop("trusted")  # the server adds its trust mark
        assert back.json()["content"] | {"cells": [cell]} == notebook
        r = c.put("/api/contents/big.bin", json={"type": "file", "format": "base64",
                                                  "content": base64.b64encode(blob).decode()})
        assert r.status_code in (200, 201), r.text
        raw = c.get("/files/big.bin")
        assert raw.status_code == 200
        assert hashlib.sha256(raw.content).digest() == hashlib.sha256(blob).digest()
        c.delete("/api/contents/big.ipynb")
        c.delete("/api/contents/big.bin")


def test_location_comes_back_unprefixed(bridge, token):
    with client(bridge, token) as c:
        r = c.get("/")
        assert r.status_code == 302
        assert r.headers["location"] == "/lab?"
        assert "jupyterhub" not in r.headers["location"] and "/user/alice" not in r.headers["location"]


def test_cookies_scoped_to_the_users_prefix_come_back_on_root(bridge, token):
    with client(bridge, token) as c:
        r = c.get("/lab", headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"})
        assert r.status_code == 200
        cookies = r.headers.get_list("set-cookie")
        assert any(c.startswith("_xsrf=") for c in cookies), cookies
        assert all("path=/user/" not in c.lower() for c in cookies), cookies
        assert any("Path=/;" in c or c.endswith("Path=/") for c in cookies), cookies


def test_already_prefixed_paths_are_not_doubled(bridge, token):
    with client(bridge, token) as c:
        assert c.get("/user/alice/api/status").status_code == 200


@pytest.mark.parametrize("path", ["/api/../../hub/api/user", "/api/%2e%2e/%2e%2e/hub/api/user",
                                  "/user/alice/../bob/api/status", "/api//status", "/hub/api/users/alice/tokens"])
def test_traversal_and_the_hub_are_refused(bridge, token, path):
    conn = http.client.HTTPConnection("127.0.0.1", bridge.port, timeout=30)  # sends the path as written
    conn.request("GET", path, headers={"Authorization": f"token {token}"})
    r = conn.getresponse()
    assert r.status == (404 if "hub/api/users" in path else 400)
    assert "message" in json.loads(r.read())
    conn.close()


def test_named_server(hub, start_bridge):
    admin = {"Authorization": f"token {hub['admin_token']}"}
    r = httpx.post(f"{hub['hub_api_internal']}/users/alice/servers/gpu", headers=admin, timeout=120)
    assert r.status_code in (201, 202), r.text
    end = time.monotonic() + 60
    while time.monotonic() < end:
        model = httpx.get(f"{hub['hub_api_internal']}/users/alice", headers=admin).json()
        if model["servers"].get("gpu", {}).get("ready"):
            break
        time.sleep(0.5)
    bridge = start_bridge(hub, env={"JUPYTER_NAMED_SERVER": "gpu"})
    token = hub["users"]["alice"]["token"]
    with client(bridge, token) as c:
        r = c.put("/api/contents/only-on-gpu.txt", json={"type": "file", "format": "text", "content": "gpu"})
        assert r.status_code == 201, r.text
        kernel = start_kernel(c)
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?token={token}",
                        open_timeout=30) as ws:
            assert execute(ws, "import os; print(os.environ['JUPYTERHUB_SERVER_NAME'])")[0] == "gpu\n"
    httpx.delete(f"{hub['hub_api_internal']}/users/alice/servers/gpu", headers=admin, timeout=60)


def test_wrong_ca_gives_a_clear_502(hub, start_bridge, tmp_path_factory):
    other_ca = tmp_path_factory.mktemp("otherca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other_ca))  # a CA that did not sign the hub's certificate
    bridge = start_bridge(hub, env={"JUPYTER_CLUSTER_CA_CERT": str(other_ca)})
    r = httpx.get(bridge.url + "/api/status", timeout=30)
    assert r.status_code == 502
    assert "certificate verify failed" in r.text.lower()


def test_wrong_tls_name_gives_a_clear_502(hub, start_bridge):
    bridge = start_bridge(hub, env={"JUPYTER_SERVER_NAME": "not-the-hub"})
    r = httpx.get(bridge.url + "/api/status", timeout=30)
    assert r.status_code == 502
    assert "hostname mismatch" in r.text.lower()


def test_hub_down_gives_a_502(hub, start_bridge):
    bridge = start_bridge(hub, env={"JUPYTER_SERVER_PORT": str(free_port())})
    r = httpx.get(bridge.url + "/api/status", timeout=30)
    assert r.status_code == 502
    assert "connect" in r.text.lower()


def test_terminal_websocket(bridge, token):
    with client(bridge, token) as c:
        r = c.post("/api/terminals")
        assert r.status_code == 200, r.text
        name = r.json()["name"]
        with ws_connect(f"ws://127.0.0.1:{bridge.port}/terminals/websocket/{name}?token={token}",
                        open_timeout=30) as ws:
            seen = shell_echo(ws)
        assert "from-alice" in seen
        assert c.delete(f"/api/terminals/{name}").status_code == 204
