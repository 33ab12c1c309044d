"""Issue 21: the pure parts of `login --browser` (PKCE, the authorize URL, the callback's state check, the landing
page) and of `admin oauth-config`."""

import base64
import hashlib
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import pytest

from addon.commands import admin
from addon.commands import oauth
from addon.core import oauth_flow as flow

CLIENT = flow.Client("service-jupyterhub-bridge", "s3cret", 8765)


def test_pkce_is_s256_of_a_fresh_verifier():
    (verifier, challenge), (other, _) = flow.pkce(), flow.pkce()
    assert verifier != other and 43 <= len(verifier) <= 128  # RFC 7636
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == expected and "=" not in challenge


def test_the_authorize_url():
    url = flow.authorize_url("https://hub.example.org/jupyter/", CLIENT, "the-state", "the-challenge", oauth.SCOPES)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "hub.example.org", "/jupyter/hub/api/oauth2/authorize")
    query = dict(parse_qsl(parts.query))
    assert query == {"client_id": "service-jupyterhub-bridge", "response_type": "code", "state": "the-state",
                     "redirect_uri": "http://127.0.0.1:8765/oauth_callback", "code_challenge": "the-challenge",
                     "code_challenge_method": "S256",
                     "scope": "access:servers!user servers!user read:users!user read:users:shares!user tokens!user"}
    assert "s3cret" not in url  # the secret goes only in the token exchange's body


@pytest.mark.parametrize("target, expected", [
    ("/oauth_callback?code=c1&state=st", flow.Callback("code", "c1")),
    ("/oauth_callback?state=st&code=c1&extra=1", flow.Callback("code", "c1")),
    ("/oauth_callback?code=c1&state=other", flow.Callback("stranger", "its state is not this sign-in's")),
    ("/oauth_callback?code=c1", flow.Callback("stranger", "its state is not this sign-in's")),
    ("/oauth_callback?code=c1&state=st&state=other", flow.Callback("stranger", "its state is not this sign-in's")),
    ("/oauth_callback?state=st", flow.Callback("stranger", "it carries no code")),
    ("/oauth_callback?state=st&error=access_denied&error_description=no", flow.Callback("refused", "access_denied no")),
    ("/oauth_callback?state=bad&error=access_denied", flow.Callback("stranger", "its state is not this sign-in's")),
    ("/favicon.ico", flow.Callback("elsewhere")),
    ("/oauth_callback/x?code=c1&state=st", flow.Callback("elsewhere")),
])
def test_what_came_to_the_callback(target, expected):
    assert flow.callback(target, "st") == expected


@pytest.mark.parametrize("kind", sorted(flow.PAGES))
def test_the_landing_page_holds_no_token_and_is_not_kept(kind):
    answer = flow.page(kind)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {flow.PAGES[kind][0]} ".encode())
    assert b"Cache-Control: no-store" in head and b"Referrer-Policy: no-referrer" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert b"code" not in body.lower().replace(b"go back", b"")  # nothing of what came in the URL


def test_the_secret_file_must_be_private(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o640)
    values = {"jupyter_oauth_client_secret_file": str(secret)}
    with pytest.raises(oauth.BridgeError, match=r"others can read it \(mode -rw-r-----\).*chmod 600"):
        oauth.read_secret({}, values)
    secret.chmod(0o600)
    assert oauth.read_secret({}, values) == "s3cret"
    assert oauth.read_secret({"JUPYTER_OAUTH_CLIENT_SECRET": "env"}, values) == "env"
    assert oauth.read_secret({}, {"jupyter_oauth_client_secret_file": ""}) == ""


def test_the_client_from_settings(tmp_path):
    found = oauth.client(["jupyter_oauth_port=9000"], {"JUPYTER_OAUTH_CLIENT_ID": "service-x",
                                                        "JUPYTER_OAUTH_PORT": "8000"})
    assert found == flow.Client("service-x", "", 9000)
    assert found.redirect_uri == "http://127.0.0.1:9000/oauth_callback"


def test_the_admin_snippet_is_python_with_the_client_and_the_user_scope(monkeypatch):
    monkeypatch.setenv("BRIDGE_OAUTH_SECRET", "s")
    snippet = admin.config_snippet("jupyterhub-bridge", 9000)

    class Services(list):
        pass

    c = type("C", (), {})()
    c.JupyterHub = type("J", (), {"services": Services()})()
    exec(compile(snippet, "jupyterhub_config.py", "exec"), {"c": c})
    assert c.JupyterHub.services == [{
        "name": "jupyterhub-bridge", "oauth_client_id": "service-jupyterhub-bridge",
        "oauth_redirect_uri": "http://127.0.0.1:9000/oauth_callback",
        "oauth_client_allowed_scopes": oauth.SCOPES, "api_token": "s"}]
    assert c.JupyterHub.extra_user_scopes == {"access:services!service=jupyterhub-bridge"}
    assert c.JupyterHub.oauth_require_pkce is True  # issue 28: required, not a commented-out option
    assert '"scopes": ["self", "access:services!service=jupyterhub-bridge"]' in snippet  # 5.x


@pytest.mark.parametrize("version, extra_user_scopes, role, shares", [
    ("6.1.1", True, False, True), ("5.5.4", False, True, True), ("4.1.6", False, True, False),
])
def test_the_admin_snippet_is_that_of_the_hubs_version(monkeypatch, version, extra_user_scopes, role, shares):
    """Issue 29: when the hub says its version, only its lines, uncommented (4.1 refuses to start with a scope it
    does not define, and has no extra_user_scopes)."""
    monkeypatch.setenv("BRIDGE_OAUTH_SECRET", "s")
    snippet = admin.config_snippet("jupyterhub-bridge", 9000, version)
    c = type("C", (), {})()
    c.JupyterHub = type("J", (), {"services": []})()
    exec(compile(snippet, "jupyterhub_config.py", "exec"), {"c": c})
    assert hasattr(c.JupyterHub, "extra_user_scopes") is extra_user_scopes
    assert (getattr(c.JupyterHub, "load_roles", None) == [
        {"name": "user", "scopes": ["self", "access:services!service=jupyterhub-bridge"]}]) is role
    assert ("read:users:shares!user" in c.JupyterHub.services[0]["oauth_client_allowed_scopes"]) is shares
    assert f"JupyterHub {version}" in snippet.splitlines()[0]
