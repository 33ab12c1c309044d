"""The hooks behind the browser's way in, in mitmproxy's test context: login redirects, pages filtered as they
stream, credentials redacted in the flow and in full on the wire."""

import pytest
from mitmproxy.net.http.http1 import assemble_request_head
from mitmproxy.net.http.http1 import assemble_response_head
from mitmproxy.test import tutils

from addon.core import credentials
from addon.core import guard
from addon_context import configured
from addon_context import request_flow
from addon.rewrite import RewriteRequest
from addon.rewrite import RewriteResponse

HUB_TOKEN = "hub-token-0123456789abcdef"
LOCAL = "local-secret-0123456789"
OPTIONS = dict(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
               jupyter_proxy_port="8000", jupyter_cluster_ca_cert="./my_sslca.cert",
               jupyter_proxy_token=LOCAL, jupyterhub_api_token=HUB_TOKEN)


@pytest.fixture
def config():
    with configured(**OPTIONS) as c:
        yield c



def page_flow(config, status=200, **response_headers):
    f = request_flow("/lab", Authorization=f"token {LOCAL}")
    RewriteRequest(config).requestheaders(f)
    f.response = tutils.tresp(status_code=status, headers=(), content=b"")
    for name, value in {"Content-Type": "text/html; charset=UTF-8", **response_headers}.items():
        f.response.headers[name] = value
    RewriteResponse(config).responseheaders(f)
    return f


def test_a_page_streams_through_the_filter_that_blanks_the_hub_token(config):
    f = page_flow(config)
    assert isinstance(f.response.stream, credentials.BodyFilter)
    assert f.response.headers["Referrer-Policy"] == "same-origin"
    body = f'"token": "{HUB_TOKEN}"'.encode()
    assert f.response.stream(body[:10]) + f.response.stream(body[10:]) + f.response.stream(b"") == (
        b'"token": "' + b" " * len(HUB_TOKEN) + b'"')


@pytest.mark.parametrize("status, headers", [(200, {"Content-Encoding": "gzip"}), (404, {})])
def test_compressed_pages_and_error_pages_are_left_to_the_response_hook(config, status, headers):
    f = page_flow(config, status, **headers)
    assert not isinstance(f.response.stream, credentials.BodyFilter)


def test_the_login_redirect_shows_the_cookie_redacted_and_sends_it_in_full(config):
    browser = guard.browser_of(config.settings)
    f = request_flow(f"/lab?token={LOCAL}", Host=browser, Sec_Fetch_Mode="navigate", Sec_Fetch_Site="none")
    RewriteRequest(config).requestheaders(f)
    assert f.response.status_code == 302 and f.response.headers["Location"] == "/lab"
    cookie = guard.cookie_value(LOCAL)
    assert f.response.headers["Set-Cookie"].startswith(f"jupyterhub-bridge-8000=…{cookie[-4:]};")
    assert f"jupyterhub-bridge-8000={cookie};".encode() in assemble_response_head(f.response)
    assert cookie.encode() not in repr(f.get_state()).encode()


def test_the_hub_token_is_in_full_only_in_the_bytes_sent_upstream(config):
    f = request_flow("/api/status", Authorization=f"token {LOCAL}")
    RewriteRequest(config).requestheaders(f)
    assert f.request.headers["Authorization"] == f"token …{HUB_TOKEN[-4:]}"
    assert HUB_TOKEN not in repr(f.get_state())
    assert f"authorization: token {HUB_TOKEN}\r\n".encode() in assemble_request_head(f.request).lower()
