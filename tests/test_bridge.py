import json

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import server_hooks
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from addon.bridge import Bridge

OPTIONS = dict(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
               jupyter_proxy_port="8000", jupyter_cluster_ca_cert="./my_sslca.cert")


@pytest.fixture
def bridge():
    b = Bridge()
    with taddons.context(b) as tctx:
        tctx.configure(b, **OPTIONS)
        yield b


def request_flow(path, **headers):
    f = tflow.tflow(req=tutils.treq(host="10.0.0.5", port=8443, path=path.encode(), headers=()))
    headers.setdefault("Host", "127.0.0.1:8000")
    for name, value in headers.items():
        f.request.headers[name.replace("_", "-")] = value
    return f


def test_prefix_host_and_token_move(bridge):
    f = request_flow("/api/kernels/k1/channels?session_id=s&token=T1", Host="127.0.0.1:8000")
    bridge.requestheaders(f)
    assert f.request.path == "/user/alice/api/kernels/k1/channels?session_id=s"
    assert f.request.headers["Authorization"] == "token T1"
    assert f.request.headers["Host"] == "jupyterhub:8443"
    assert f.response is None


def test_client_authorization_passes_unchanged(bridge):
    f = request_flow("/api/status?token=URL", Authorization="token HEADER")
    bridge.requestheaders(f)
    assert f.request.headers["Authorization"] == "token HEADER"
    assert f.request.path == "/user/alice/api/status"


def test_own_origin_is_rewritten_and_a_foreign_one_refused(bridge):
    own = request_flow("/api/status", Origin="http://localhost:8000", Referer="http://localhost:8000/lab")
    bridge.requestheaders(own)
    assert own.request.headers["Origin"] == "https://jupyterhub:8443"
    assert own.request.headers["Referer"] == "https://jupyterhub:8443/user/alice/lab"
    foreign = request_flow("/api/status", Origin="https://evil.example")
    bridge.requestheaders(foreign)
    assert foreign.response.status_code == 403


@pytest.mark.parametrize("path, status", [("/api/../../hub/api/user", 400), ("/hub/api/users", 404)])
def test_refused_paths_get_a_json_answer_and_never_go_upstream(bridge, path, status):
    f = request_flow(path)
    f.request.stream = True
    bridge.requestheaders(f)
    assert f.response.status_code == status
    assert "message" in json.loads(f.response.content)
    assert f.request.stream is False
    assert f.request.path == path


def test_location_and_cookies_come_back_unprefixed(bridge):
    f = request_flow("/")
    f.response = tutils.tresp(status_code=302, headers=())
    f.response.headers["Location"] = "https://jupyterhub:8443/user/alice/lab?"
    f.response.headers.add("Set-Cookie", "_xsrf=x; Path=/user/alice/")
    f.response.headers.add("Set-Cookie", "other=y; Path=/hub/")
    bridge.responseheaders(f)
    assert f.response.headers["Location"] == "/lab?"
    assert f.response.headers.get_all("Set-Cookie") == ["_xsrf=x; Path=/", "other=y; Path=/hub/"]


def test_server_connect_sends_the_tls_name_to_the_hub_only(bridge):
    hub = server_hooks.ServerConnectionHookData(server=tflow.tserver_conn(), client=tflow.tclient_conn())
    hub.server.address = ("10.0.0.5", 8443)
    bridge.server_connect(hub)
    assert hub.server.sni == "jupyterhub"
    other = server_hooks.ServerConnectionHookData(server=tflow.tserver_conn(), client=tflow.tclient_conn())
    other.server.address = ("10.0.0.6", 8443)
    other.server.sni = "x"
    bridge.server_connect(other)
    assert other.server.sni == "x"


def test_websocket_history_keeps_only_the_last_message(bridge):
    f = tflow.twebsocketflow()
    assert len(f.websocket.messages) > 1
    last = f.websocket.messages[-1]
    bridge.websocket_message(f)
    assert f.websocket.messages == [last]


def test_bad_option_raises_an_options_error_with_the_fix():
    b = Bridge()
    with taddons.context(b) as tctx:
        tctx.configure(b, **OPTIONS)
        with pytest.raises(exceptions.OptionsError, match="not a port: use a number"):
            tctx.configure(b, jupyter_server_port="http")
        assert b.settings.server_port == 8443
