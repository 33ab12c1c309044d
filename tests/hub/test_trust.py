"""Issue 17: the stored token goes only to a peer the login verified, and the user's own mitmproxy configuration
(~/.mitmproxy/config.yaml) does not reach the bridge."""

import hashlib
import json
import os
import shutil
import subprocess

import httpx
import pytest
import trustme

from bridge_process import ROOT
from test_servers import admin


def stored_login(hub, home, trust: dict | None) -> str:
    """A login file of alice's with a fresh token of hers (the hub says when it was last used) and this trust (None:
    none stored, as before issue 17: its CA setting, here none, is its trust); the token's id."""
    r = admin(hub, "POST", "/users/alice/tokens", json={"note": "trust test"})
    assert r.status_code == 201, r.text
    settings = {"jupyter_server_ip_or_name": hub["host"], "jupyter_server_port": str(hub["port"]),
                "jupyter_server_name": hub["tls_name"], "jupyterhub_base_url": hub["base_url"],
                "jupyter_username": "alice"}
    data = {"settings": settings, "local_token": "stored-local",
            "hub_token": {"token": r.json()["token"], "id": r.json()["id"], "user": "alice"}}
    home.mkdir(mode=0o700)
    fd = os.open(home / "login.json", os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({**data, "trust": trust} if trust else data, f)
    return r.json()["id"]


def trust_of(ca) -> dict:
    return {"ca_file": str(ca), "sha256": hashlib.sha256(ca.read_bytes()).hexdigest()}


def used(hub, token_id: str) -> bool:
    return admin(hub, "GET", f"/users/alice/tokens/{token_id}").json()["last_activity"] is not None


def run(args, home, cwd, **env) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    full.update({"JUPYTERHUB_BRIDGE_HOME": str(home), **env})
    return subprocess.run([str(ROOT / "run.sh"), *args], env=full, cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_a_planted_ca_file_after_a_system_store_login_gets_no_token(hub, tmp_path):
    """Point 3: a my_sslca.cert in the current folder (here one that does verify the hub, as an impostor's would
    verify the impostor) is not taken in place of the system store the login trusted."""
    token = stored_login(hub, tmp_path / "home", None)
    folder = tmp_path / "cloned-repository"
    folder.mkdir()
    shutil.copy(hub["ca_file"], folder / "my_sslca.cert")
    for command in (["check"], ["servers"]):
        p = run(command, tmp_path / "home", folder)
        assert "./my_sslca.cert" not in p.stdout and str(folder) not in p.stdout, p.stdout
    assert not used(hub, token), "the stored token went to a peer the planted file verified"


def test_a_changed_ca_file_stops_the_start_with_one_line(hub, tmp_path):
    ca = tmp_path / "cluster-ca.pem"
    shutil.copy(hub["ca_file"], ca)
    token = stored_login(hub, tmp_path / "home", trust_of(ca))
    assert "✓" in run(["check"], tmp_path / "home", tmp_path).stdout  # the trusted file: the token goes
    assert used(hub, token)
    ca.write_text(ca.read_text() + "\n")  # another file now, however small the change
    p = run([], tmp_path / "home", tmp_path)
    assert p.returncode == 1 and p.stderr.strip().count("\n") == 0, p.stdout + p.stderr
    assert f"{ca}, the CA file ./run.sh login verified the hub with, has changed since" in p.stderr
    assert "run ./run.sh login to accept it" in p.stderr


def test_another_ca_in_the_environment_wins_but_gets_no_stored_token(hub, tmp_path):
    ca = tmp_path / "cluster-ca.pem"
    shutil.copy(hub["ca_file"], ca)
    token = stored_login(hub, tmp_path / "home", trust_of(ca))
    p = run(["check"], tmp_path / "home", tmp_path, JUPYTER_CLUSTER_CA_CERT=hub["ca_file"])
    assert not used(hub, token), p.stdout
    assert "JUPYTERHUB_API_TOKEN is not set" in p.stdout, p.stdout


def mitmproxy_config(home, text: str) -> None:
    (home / ".mitmproxy").mkdir(parents=True, exist_ok=True)
    (home / ".mitmproxy" / "config.yaml").write_text(text)


def test_the_users_mitmproxy_config_does_not_switch_off_verification_nor_load_scripts(hub, tmp_path, start_bridge):
    """Point 4: mitmproxy applies ~/.mitmproxy/config.yaml after the command line (field note 41)."""
    home, marker = tmp_path / "home", tmp_path / "script-loaded"
    script = tmp_path / "evil.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    mitmproxy_config(home, f"ssl_insecure: true\nscripts:\n  - {script}\n")
    wrong_ca = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca))
    bridge = start_bridge(hub, env={"HOME": str(home), "JUPYTER_CLUSTER_CA_CERT": str(wrong_ca)})
    headers = {"Authorization": f"token {hub['users']['alice']['token']}"}  # the client's own: no access token
    r = httpx.get(f"{bridge.url}/api/status", headers=headers, timeout=60)
    assert r.status_code == 502, r.text
    assert not marker.exists(), "a script of ~/.mitmproxy/config.yaml was loaded into the bridge"


def test_a_harmless_mitmproxy_config_changes_nothing(hub, tmp_path, start_bridge):
    """Quieter logging, harmless in itself: it would hide the lines the bridge's start is known by."""
    home = tmp_path / "home"
    mitmproxy_config(home, "termlog_verbosity: error\n")
    bridge = start_bridge(hub, env={"HOME": str(home), "JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"]})
    r = httpx.get(f"{bridge.url}/api/status", headers={"Authorization": f"token {bridge.token}"}, timeout=60)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("args", [["--set", "ssl_insecure=true"], ["-k"]])
def test_ssl_insecure_given_explicitly_is_refused(hub, start_bridge, args):
    bridge = start_bridge(hub, args=args, wait=False)
    assert bridge.proc.wait(timeout=60) != 0
    assert "ssl_insecure is on: the bridge sends your tokens to the hub and never without verifying it" in bridge.log()
    assert "reverse proxy to" not in bridge.log()

