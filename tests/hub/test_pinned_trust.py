"""Issues 28 and 31: what verified the hub at login is part of the login, loaded once and the same for mitmproxy and
the Hub client: a CA file appended during a run, a system-store login with another SSL_CERT_FILE, trust on first
use (a fingerprint given, a terminal's yes or no, a wrong one), and an impostor on the hub's address after each."""

import hashlib
import json
import os
import pty
import re
import select
import shutil
import socket
import ssl
import stat
import subprocess
import time
import uuid

import httpx
import pytest
from bridge_process import ROOT
from impostor import Impostor
from kernel_client import V1
from kernel_client import execute
from net_relay import NetRelay
from test_servers import admin
from websockets.sync.client import connect as ws_connect

from cryptography import x509

from addon.core import trust

WAIT = 90.0  # seconds for a log line the bridge writes within a few


def environment(home, **env) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB", "SSL_CERT"))}
    return {**full, "JUPYTERHUB_BRIDGE_HOME": str(home), "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1", **env}


def run(args, home, cwd, stdin: str = "", **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(ROOT / "run.sh"), *args], env=environment(home, **env), cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=120)


def login_args(hub, port: int, *extra: str) -> list[str]:
    return ["login", f"https://127.0.0.1:{port}{hub['base_url']}", "--set", f"jupyter_server_name={hub['tls_name']}",
            "--set", "jupyter_username=alice", *extra]


def stored(home) -> dict:
    return json.loads((home / "login.json").read_text())


def wait_for(what, found, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


@pytest.fixture
def relay(hub):
    r = NetRelay(hub["host"], hub["port"])
    yield r
    r.stop()


@pytest.fixture
def impostor(hub):
    i = Impostor(hub["tls_name"])
    yield i
    i.close()


def presented_top(address: tuple[str, int], tls_name: str) -> str:
    """The fingerprint of the topmost certificate a peer presents, read as a user would (openssl s_client)."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(address, timeout=10) as raw:
        with tls.wrap_socket(raw, server_hostname=tls_name) as s:
            return trust.fingerprint(x509.load_der_x509_certificate(s.get_unverified_chain()[-1]))


def ca_pin(hub) -> str:
    return trust.fingerprint(x509.load_pem_x509_certificate(open(hub["ca_file"], "rb").read()))


# ------------------------------------------------------------ issue 28: the CA file is loaded once

def test_a_ca_appended_during_a_run_lets_no_impostor_in_at_the_next_renewal(hub, relay, impostor, tmp_path,
                                                                            start_bridge):
    home, ca = tmp_path / "home", tmp_path / "cluster-ca.pem"
    shutil.copy(hub["ca_file"], ca)
    r = admin(hub, "POST", "/users/alice/tokens", json={"note": "trust test"})
    assert r.status_code == 201, r.text
    settings = {"jupyter_server_ip_or_name": "127.0.0.1", "jupyter_server_port": str(relay.port),
                "jupyter_server_name": hub["tls_name"], "jupyterhub_base_url": hub["base_url"],
                "jupyter_username": "alice", "jupyter_cluster_ca_cert": str(ca)}
    home.mkdir(mode=0o700)
    fd = os.open(home / "login.json", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"settings": settings, "local_token": "stored-local",
                   "hub_token": {"token": r.json()["token"], "id": r.json()["id"], "user": "alice"},
                   "trust": {"ca_file": str(ca), "sha256": hashlib.sha256(ca.read_bytes()).hexdigest()}}, f)
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home), "JUPYTER_ACCESS_TOKEN_LIFETIME": "10"})
    made = lambda: bridge.log().count("made the access token")  # noqa: E731
    wait_for("the first access token", lambda: made() >= 1)
    with open(ca, "ab") as f:  # the file now also trusts the impostor's CA
        f.write(impostor.ca.cert_pem.bytes())
    wait_for("a renewal after the CA file changed", lambda: made() >= 2)  # the file would be read again here
    relay.target = impostor.address
    wait_for("a renewal that meets the impostor", lambda: "no access token for your server yet" in bridge.log()
             or impostor.received)
    assert impostor.received == [], "the bridge sent a request (its login token) to the impostor"
    assert "certificate verify failed" in bridge.log(), bridge.log()[-3000:]
    for name in os.listdir(home / "mitmproxy"):  # mitmproxy's copy of what was checked: private
        if name.startswith("hub-trust"):
            assert stat.S_IMODE((home / "mitmproxy" / name).stat().st_mode) == 0o600
            assert impostor.ca.cert_pem.bytes() not in (home / "mitmproxy" / name).read_bytes()


# ------------------------------------------------------------ issue 28: a system-store login is pinned

def test_a_system_store_login_is_pinned_and_mitmproxy_uses_the_same_store(hub, relay, impostor, tmp_path,
                                                                          start_bridge):
    home = tmp_path / "home"
    p = run(login_args(hub, relay.port, "--password-stdin"), home, tmp_path, hub["users"]["alice"]["password"] + "\n",
            SSL_CERT_FILE=hub["ca_file"])  # the OS store, as far as OpenSSL knows, holds the hub's CA
    assert p.returncode == 0, p.stdout + p.stderr
    said_at_login = p.stdout

    # another store that also holds the impostor's CA, and the impostor on the hub's address: the pin holds
    bundle = tmp_path / "other-store.pem"
    bundle.write_bytes(impostor.ca.cert_pem.bytes() + open(hub["ca_file"], "rb").read())
    relay.target = impostor.address
    checked = run(["check"], home, tmp_path, SSL_CERT_FILE=str(bundle))
    listed = run(["servers"], home, tmp_path, SSL_CERT_FILE=str(bundle))
    assert impostor.received == [], "a request went to the impostor"
    relay.target = (hub["host"], hub["port"])

    # mitmproxy verifies with the store the Hub client uses (alone it would take certifi's, and answer 502)
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home), "SSL_CERT_FILE": hub["ca_file"]})
    r = httpx.get(f"{bridge.url}/api/status", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 200, r.text + bridge.log()[-3000:]

    pin = ca_pin(hub)
    assert checked.returncode == 1, checked.stdout
    presented = presented_top(impostor.address, hub["tls_name"])
    assert f"Pinned: {pin}; presented now: {presented}. Nothing was sent." in checked.stdout, checked.stdout
    assert listed.returncode == 1 and "Nothing was sent" in listed.stdout + listed.stderr, listed.stdout + listed.stderr
    assert f"its CA {pin} is pinned" in said_at_login, said_at_login
    assert stored(home)["trust"] == {"ca_file": None, "sha256": None, "pin": pin, "certificate": None}


# ------------------------------------------------------------ issue 31: trust on first use

@pytest.fixture(scope="module")
def chain_hub(start_hub):
    """A hub whose public side presents its CA after its own certificate."""
    return start_hub(name="hub-chain", send_ca=True)


def test_first_use_with_a_fingerprint_then_a_kernel_with_no_ca_file_and_no_impostor(chain_hub, tmp_path,
                                                                                   start_bridge):
    hub, home = chain_hub, tmp_path / "home"
    relay = NetRelay(hub["host"], hub["port"])
    impostor = Impostor(hub["tls_name"])
    try:
        fingerprint = presented_top(("127.0.0.1", relay.port), hub["tls_name"])
        assert fingerprint == ca_pin(hub)  # the hub sends its CA: the one pinned
        p = run(login_args(hub, relay.port, "--password-stdin"), home, tmp_path,
                hub["users"]["alice"]["password"] + "\n", JUPYTER_CA_FINGERPRINT=fingerprint)
        assert p.returncode == 0, p.stdout + p.stderr
        assert f"{fingerprint}: the fingerprint you gave" in p.stdout and "asked again" not in p.stdout, p.stdout
        kept = stored(home)["trust"]
        assert kept["pin"] == fingerprint and kept["ca_file"] is None and "BEGIN CERTIFICATE" in kept["certificate"]
        assert stat.S_IMODE((home / "login.json").stat().st_mode) == 0o600

        bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)})  # no CA file anywhere
        assert f"trusting the certificate you trusted for 127.0.0.1:{relay.port} ({fingerprint})" in bridge.log()
        with httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=120) as c:
            name = f"t-{uuid.uuid4().hex[:8]}.ipynb"
            r = c.post("/api/sessions", json={"path": name, "name": name, "type": "notebook",
                                              "kernel": {"name": "python3"}})
            assert r.status_code == 201, r.text + bridge.log()[-3000:]
            kernel = r.json()["kernel"]["id"]
            with ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels?token={bridge.token}",
                            subprotocols=[V1], open_timeout=30) as ws:
                assert execute(ws, "6*7")[2] == "42"
            assert c.delete(f"/api/kernels/{kernel}").status_code == 204
        bridge.stop()

        relay.target = impostor.address  # another certificate for the hub's name, from another CA
        p = run(["check"], home, tmp_path)
        assert p.returncode == 1, p.stdout
        presented = presented_top(impostor.address, hub["tls_name"])
        assert f"Pinned: {fingerprint}; presented now: {presented}. Nothing was sent." in p.stdout, p.stdout
        assert "run ./run.sh login again to accept it" in p.stdout, p.stdout
        bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home)}, wait=False)
        assert bridge.proc.wait(timeout=60) == 1, bridge.log()
        assert "does not present the certificate you trusted" in bridge.log(), bridge.log()
        assert impostor.received == [], "a request went to the impostor"
    finally:
        relay.stop()
        impostor.close()


def converse(args: list[str], env: dict[str, str], cwd, answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run ./run.sh on a pseudo-terminal: for each (prompt, reply), wait for the prompt, then type the reply."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([str(ROOT / "run.sh"), *args], env=env, cwd=cwd, stdin=follower, stdout=follower,
                            stderr=follower, start_new_session=True)
    os.close(follower)
    seen, deadline = b"", time.monotonic() + 120
    pending = list(answers)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
            if pending and pending[0][0].encode() in seen.rsplit(b"\n", 1)[-1]:
                os.write(leader, pending.pop(0)[1].encode() + b"\n")
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=30), seen.decode(errors="replace")
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("reply", ["y", "n"])
def test_first_use_asks_on_a_terminal(hub, tmp_path, reply):
    """The session hub presents only its own certificate: that one is pinned, and a renewal will ask again."""
    home = tmp_path / "home"
    answers = [("Trust it for 127.0.0.1? [y/N]", reply), ("Password of 'alice'", hub["users"]["alice"]["password"])]
    status, out = converse(login_args(hub, hub["port"]), environment(home), tmp_path, answers)
    own = presented_top((hub["host"], hub["port"]), hub["tls_name"])
    assert f"fingerprint of the hub's own certificate (it sends no CA): {own}" in out, out
    assert "when the hub's certificate is renewed, you will be asked again" in out, out
    if reply == "n":
        assert status == 1 and "not trusted: nothing was stored" in out, out
        assert not (home / "login.json").exists()
        return
    assert status == 0, out
    assert stored(home)["trust"]["pin"] == own
    p = run(["check"], home, tmp_path)
    assert p.returncode == 0 and f"TLS verified for '{hub['tls_name']}' with the certificate you trusted" in p.stdout, \
        p.stdout


def test_a_wrong_fingerprint_stores_nothing_and_prints_both(hub, tmp_path):
    home, wrong = tmp_path / "home", "sha256:" + "ab" * 32
    p = run(login_args(hub, hub["port"], "--password-stdin", "--ca-fingerprint", wrong), home, tmp_path,
            hub["users"]["alice"]["password"] + "\n")
    assert p.returncode == 1, p.stdout + p.stderr
    presented = presented_top((hub["host"], hub["port"]), hub["tls_name"])
    assert f"expected {wrong}, presented {presented}" in p.stderr, p.stdout + p.stderr
    assert not (home / "login.json").exists()


# ------------------------------------------------------------ issue 31: a newcomer's first words

@pytest.mark.parametrize("command", [[], ["check"]])
def test_with_nothing_set_the_first_words_say_to_sign_in(tmp_path, command):
    p = run(command, tmp_path / "home", tmp_path)
    assert p.returncode == 1
    said = (p.stdout + p.stderr).strip()
    assert re.match(r"(error: |✗ settings: )Sign in once: \./run\.sh login https://<your hub>/ \. ", said), said
    assert "JUPYTER_SERVER_IP_OR_NAME" in said
