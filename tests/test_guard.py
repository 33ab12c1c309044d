import pytest
from hypothesis import given
from hypothesis import strategies as st

from addon import forward
from addon import guard
from addon import settings
from addon.route import Refused

HUB_TOKEN = "hub-0123456789abcdef"
LOCAL = "local-secret-0123456789"


def make(hub_token=HUB_TOKEN, local=LOCAL, listen="localhost"):
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
                  jupyter_proxy_ip_or_name=listen, jupyterhub_api_token=hub_token, jupyter_proxy_token=local)
    return settings.resolve(values, environ={})


class Headers(dict):
    """Case-insensitive lookups, like mitmproxy's Headers."""

    def __init__(self, **kw):
        super().__init__({k.replace("_", "-").lower(): v for k, v in kw.items()})

    def get(self, key, default=None):
        return super().get(key.lower(), default)


S = make()


@pytest.mark.parametrize("headers", [
    Headers(host="127.0.0.1:8000"), Headers(host="localhost:8000"), Headers(host="[::1]:8000"),
    Headers(host="LOCALHOST:8000", origin="http://localhost:8000"),
    Headers(host="127.0.0.1:8000", origin="http://127.0.0.1:8000", sec_fetch_site="same-origin"),
])
def test_own_callers_pass(headers):
    guard.check_caller(headers, S)


@pytest.mark.parametrize("headers, words", [
    (Headers(host="evil.example:8000"), "Refused Host 'evil.example:8000'"),
    (Headers(host="127.0.0.1:9999"), "Refused Host"),
    (Headers(), "Refused Host ''"),
    (Headers(host="127.0.0.1:8000", origin="https://evil.example"), "Refused Origin 'https://evil.example'"),
    (Headers(host="127.0.0.1:8000", origin="null"), "Refused Origin 'null'"),
    (Headers(host="127.0.0.1:8000", origin="http://localhost:3000"), "Refused Origin"),
    (Headers(host="127.0.0.1:8000", sec_fetch_site="cross-site"), "cross-site"),
])
def test_foreign_callers_get_403(headers, words):
    with pytest.raises(Refused, match=words) as e:
        guard.check_caller(headers, S)
    assert e.value.status == 403


@pytest.mark.parametrize("s, headers, query_token, authorization, set_cookie", [
    # the local secret, as a header, a query (a navigation: the browser gets the cookie) or the cookie
    (S, Headers(authorization=f"token {LOCAL}"), None, f"token {HUB_TOKEN}", False),
    (S, Headers(authorization=f"Bearer {LOCAL}"), None, f"token {HUB_TOKEN}", False),
    (S, Headers(), LOCAL, f"token {HUB_TOKEN}", True),
    (S, Headers(cookie=f"a=b; jupyterhub-bridge-8000={guard.cookie_value(LOCAL)}"), None, f"token {HUB_TOKEN}", False),
    # another token is the client's own hub credential, never replaced
    (S, Headers(authorization="token theirs"), None, "token theirs", False),
    (S, Headers(), "theirs", "token theirs", False),
    (S, Headers(authorization="token theirs"), LOCAL, "token theirs", False),
    # no local secret (loopback): requests without a token get the hub token
    (make(local=""), Headers(), None, f"token {HUB_TOKEN}", False),
    (make(local=""), Headers(authorization="token theirs"), None, "token theirs", False),
    # no hub token: the client's own token, moved from the URL as without injection
    (make(hub_token=""), Headers(), "theirs", "token theirs", False),
    (make(hub_token=""), Headers(authorization="token theirs"), "url", None, False),
    (make(hub_token=""), Headers(), None, None, False),
])
def test_credential(s, headers, query_token, authorization, set_cookie):
    assert guard.credential(headers, query_token, s) == guard.Credential(authorization, set_cookie)


@pytest.mark.parametrize("headers, query_token", [
    (Headers(), None),
    (Headers(cookie="jupyterhub-bridge-8000=wrong"), None),
    (Headers(cookie=f"jupyterhub-bridge-8000={LOCAL}"), None),  # the cookie holds a derived value, not the secret
    (Headers(authorization="Basic dTpw"), None),
])
def test_no_credential_gets_401_saying_how_to_connect(headers, query_token):
    with pytest.raises(Refused, match=r"http://127.0.0.1:8000/\?token=<the bridge's token>") as e:
        guard.credential(headers, query_token, S)
    assert e.value.status == 401
    assert LOCAL not in e.value.message and HUB_TOKEN not in e.value.message


def test_empty_local_secret_is_refused_off_loopback():
    with pytest.raises(ValueError, match="JUPYTER_PROXY_TOKEN is empty while the bridge listens on '0.0.0.0'"):
        make(local="", listen="0.0.0.0")
    assert make(local="", listen="127.0.0.1").local_secret == ""


def test_unset_local_secret_is_random_per_run():
    a = settings.resolve({**{o.name: o.default for o in settings.OPTIONS}, "jupyter_server_ip_or_name": "h",
                          "jupyter_username": "u", "jupyter_proxy_token": None, "jupyterhub_api_token": "t"}, {})
    assert len(a.local_secret) >= 32 and a.local_secret != make().local_secret


def test_token_file_must_be_private(tmp_path):
    f = tmp_path / "token"
    f.write_text("file-token\n")
    f.chmod(0o644)
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="h", jupyter_username="u", jupyterhub_api_token=None,
                  jupyter_proxy_token=None, jupyterhub_api_token_file=str(f))
    with pytest.raises(ValueError, match="others can read it .*'chmod 600"):
        settings.resolve(values, {})
    f.chmod(0o600)
    assert settings.resolve(values, {}).hub_token == "file-token"


def test_without_cookie_strips_only_the_bridge_cookie():
    assert guard.without_cookie("a=1; jupyterhub-bridge-8000=x; _xsrf=y", "jupyterhub-bridge-8000") == "a=1; _xsrf=y"
    assert guard.without_cookie("jupyterhub-bridge-8000=x", "jupyterhub-bridge-8000") == ""


def test_settings_repr_hides_secrets():
    assert HUB_TOKEN not in repr(S) and LOCAL not in repr(S)


def test_redact_authorization():
    assert guard.redact_authorization(f"token {HUB_TOKEN}") == "token …cdef"


hosts = st.one_of(st.sampled_from(["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "evil.example:8000",
                                   "127.0.0.1:8001", "127.0.0.1", "localhost.evil:8000", ""]),
                  st.text(max_size=20))
origins = st.one_of(st.none(), st.sampled_from(["http://127.0.0.1:8000", "http://localhost:8000", "null",
                                                "https://evil.example", "http://127.0.0.1:8000.evil",
                                                "http://localhost:8001", "https://127.0.0.1:8000"]),
                    st.text(max_size=20))


@given(host=hosts, origin=origins, fetch_site=st.sampled_from([None, "same-origin", "cross-site", "none"]),
       via=st.sampled_from(["header", "query", "cookie", "none"]))
def test_only_the_bridges_own_origin_is_ever_forwarded_with_the_hub_token(host, origin, fetch_site, via):
    headers = Headers(host=host)
    if origin is not None:
        headers["origin"] = origin
    if fetch_site:
        headers["sec-fetch-site"] = fetch_site
    target = "/api/terminals"
    if via == "header":
        headers["authorization"] = f"token {LOCAL}"
    elif via == "query":
        target += f"?token={LOCAL}"
    elif via == "cookie":
        headers["cookie"] = f"jupyterhub-bridge-8000={guard.cookie_value(LOCAL)}"
    try:
        plan = forward.request_changes(target, headers, S)
    except Refused:
        return
    assert plan.headers.get("Authorization") == f"token {HUB_TOKEN}"
    assert host.lower() in S.own_authorities
    assert origin is None or origin.lower() in S.own_origins
    assert fetch_site != "cross-site"
    assert LOCAL not in plan.target
