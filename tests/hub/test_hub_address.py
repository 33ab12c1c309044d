"""Issue 28, High: the hub's address is the hub's. A base URL inside a single-user server (/user/alice/) gets
neither a password nor a token: login, check, servers and the bridge refuse it with the URL to use; a stored login
is not sent under another base URL; GET <base>hub/api carries no token; login shows a base URL other than / and
asks to confirm it on a terminal. The servers of devhub --record-auth record every request they receive (field
note 43): alice's must see none of bob's."""

import json
import os
import threading
from pathlib import Path

import pytest
from bridge_process import ROOT
from hostile_hub import Answers
from hostile_hub import HostileHub
from terminal import Terminal
from test_login import log_in
from test_login import run
from test_servers import admin_start

from addon import store

USE = "use the hub's own URL, https://<your hub>/ (base URL /)."


@pytest.fixture(scope="module")
def hub(start_hub):
    hub = start_hub(name="hub-address", users="alice,bob", record_auth=True)
    admin_start(hub, "alice")
    return hub


def alice_saw(hub) -> list[dict]:
    """Every request alice's server received: method, path, Authorization."""
    file = Path(hub["users"]["alice"]["auth_record"])
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def test_login_inside_a_users_server_is_refused_before_anything_is_sent(hub, tmp_path):
    before = len(alice_saw(hub))
    for url in (f"https://{hub['host']}:{hub['port']}/user/alice/", f"{hub['host']}:{hub['port']}/user/alice"):
        p = run(["login", url, "--set", f"jupyter_server_name={hub['tls_name']}", "--set",
                 f"jupyter_cluster_ca_cert={hub['ca_file']}", "--set", "jupyter_username=bob", "--password-stdin"],
                tmp_path / "home", hub["users"]["bob"]["password"] + "\n")
        assert p.returncode == 1
        path = url.split(str(hub["port"]), 1)[1]
        assert p.stderr.strip() == f"error: JUPYTERHUB_BASE_URL={path!r} is inside /user/, where JupyterHub keeps " \
                                   f"users' servers and services, whose owners see what is sent there, not the " \
                                   f"hub: {USE}", p.stderr
        assert p.stdout == "", p.stdout  # not even the address and TLS checks
    assert alice_saw(hub)[before:] == []  # nothing reached alice's server: no password, no token
    assert not (tmp_path / "home" / "login.json").exists()


def test_a_stored_login_with_a_base_url_inside_a_server_in_the_environment_sends_nothing(hub, tmp_path):
    home = tmp_path / "home"
    log_in(hub, home)  # alice's own login, made correctly
    before = len(alice_saw(hub))
    for args in (["check"], ["servers"], []):  # [] is the bridge
        p = run(args, home, JUPYTERHUB_BASE_URL="/user/alice/")
        assert p.returncode == 1, (args, p.stdout, p.stderr)
        assert USE in p.stdout + p.stderr, (args, p.stdout, p.stderr)
    assert alice_saw(hub)[before:] == []


def test_the_stored_token_is_not_used_under_another_base_url(hub, tmp_path, start_bridge):
    home = tmp_path / "home"
    log_in(hub, home)
    bridge = start_bridge(env={"JUPYTERHUB_BRIDGE_HOME": str(home), "JUPYTERHUB_BASE_URL": "/elsewhere/"})
    assert "warning: the hub token ./run.sh login stored is not used: the base URL /elsewhere/ " \
           "(JUPYTERHUB_BASE_URL) is not the one ./run.sh login verified (/)" in bridge.log(), bridge.log()
    assert "?token=<your JupyterHub API token>" in bridge.log()  # neither the stored token nor the local one


class Recorder(Answers):
    """The hostile hub's answers (a hub's REST API), each request's path and Authorization recorded; /hub/api under
    any base URL."""

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Authorization")))
        if self.path.endswith("/hub/api") and self.path != "/hub/api":
            self.path = "/hub/api"
        super().do_GET()


@pytest.fixture
def recorder(hostile):
    """A hub on 127.0.0.1 that records what it is sent (the hostile hub's certificate)."""
    hostile_server, hub = hostile
    server = HostileHub(hostile_server.tls)
    server.RequestHandlerClass, server.seen = Recorder, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, {**hub, "port": server.server_address[1]}
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_check_sends_no_token_to_get_hub_api(recorder, tmp_path):
    server, hub = recorder
    p = run(["check"], tmp_path / "home", **{"JUPYTER_SERVER_IP_OR_NAME": hub["host"],
                                             "JUPYTER_SERVER_PORT": str(hub["port"]),
                                             "JUPYTER_SERVER_NAME": hub["tls_name"],
                                             "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
                                             "JUPYTERHUB_API_TOKEN": "t" * 32})
    assert "✓ JupyterHub 6.1.1 answers at /hub/api" in p.stdout, p.stdout + p.stderr
    assert ("/hub/api", None) in server.seen  # the version: no token
    assert ("/hub/api/user", f"token {'t' * 32}") in server.seen  # whose token: it goes where it is needed


def test_login_shows_a_base_url_and_asks_to_confirm_it_on_a_terminal(recorder, tmp_path):
    server, hub = recorder
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    env |= {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "home"), "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1"}
    url = f"https://{hub['host']}:{hub['port']}/jupyter/"
    term = Terminal([str(ROOT / "run.sh"), "login", url, "--set", f"jupyter_server_name={hub['tls_name']}",
                     "--set", f"jupyter_cluster_ca_cert={hub['ca_file']}", "--set", "jupyter_username=alice"], env)
    seen = term.wait_for(f"Is {url} your hub's own address, as its admin gave it? [y/N]")
    assert f"The hub's base URL is /jupyter/: your password or sign-in and the hub token go to {url}hub/." in seen
    term.type("n")
    status, said = term.finish()
    assert status == 1 and "login stopped: nothing was sent. Run ./run.sh login with the hub's own URL." in said, said
    assert "Password" not in said
    assert [path for path, _ in server.seen] == ["/jupyter/hub/api"]  # the check of the hub, without a token
    assert not (tmp_path / "home" / "login.json").exists()
    assert store.path({"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "home")}).exists() is False
