import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mitmproxy.http import Headers  # case-insensitive, as the bridge's request headers are

from addon.core import forward
from addon.core import guard
from addon.core import settings
from addon.core.route import Refused

HUB_TOKEN = "hub-0123456789abcdef"
SERVER_TOKEN = "access-0123456789abcdef"  # the access token addon/access.py has the hub make
LOCAL = "local-secret-0123456789"


def make(hub_token=HUB_TOKEN, local=LOCAL, listen="localhost", server_token=SERVER_TOKEN):
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.0.0.5", jupyter_server_port="8443", jupyter_username="alice",
                  jupyter_proxy_ip_or_name=listen, jupyterhub_api_token=hub_token, jupyter_proxy_token=local)
    return dataclasses.replace(settings.resolve(values, environ={}), server_token=server_token if hub_token else None)


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


BROWSER = guard.browser_of(S)
ACCESS = guard.BrowserAccess()  # one run of the bridge
COOKIE = f"jupyterhub-bridge-8000={ACCESS.cookie}"
OURS = guard.Credential(f"token {SERVER_TOKEN}", bridges=True)  # issue 17: the access token, never the hub token


@pytest.mark.parametrize("s, headers, query_token, expected", [
    # the local secret, as a header, a query or the browser's cookie on its own host name: the bridge's client
    (S, Headers(authorization=f"token {LOCAL}"), None, OURS),
    (S, Headers(authorization=f"Bearer {LOCAL}"), None, OURS),
    (S, Headers(), LOCAL, OURS),
    (S, Headers(host=BROWSER, cookie=f"a=b; {COOKIE}"), None, OURS),
    (S, Headers(host=BROWSER, cookie=COOKIE, sec_fetch_site="same-origin"), None, OURS),
    (S, Headers(host=BROWSER, cookie=COOKIE, sec_fetch_site="none"), None, OURS),
    # another token is the client's own hub credential, never replaced, and never starts a server
    (S, Headers(authorization="token theirs"), None, guard.Credential("token theirs")),
    (S, Headers(), "theirs", guard.Credential("token theirs")),
    (S, Headers(authorization="token theirs"), LOCAL, guard.Credential("token theirs")),
    # no local secret (loopback): requests without a token get the access token
    (make(local=""), Headers(), None, OURS),
    (make(local=""), Headers(authorization="token theirs"), None, guard.Credential("token theirs")),
    # no hub token: the client's own token, moved from the URL as without injection
    (make(hub_token=""), Headers(), "theirs", guard.Credential("token theirs")),
    (make(hub_token=""), Headers(authorization="token theirs"), "url", guard.Credential(None)),
    (make(hub_token=""), Headers(), None, guard.Credential(None)),
])
def test_credential(s, headers, query_token, expected):
    assert guard.credential(headers, query_token, s, ACCESS) == expected


@pytest.mark.parametrize("headers, query_token", [
    (Headers(authorization=f"token {LOCAL}"), None), (Headers(), LOCAL), (Headers(host=BROWSER, cookie=COOKIE), None)])
def test_without_the_access_token_the_bridges_clients_get_503_never_the_hub_token(headers, query_token):
    """Issue 17: the hub could not make the access token yet: the bridge's clients wait; others go on."""
    s = make(server_token=None)
    with pytest.raises(Refused, match="no access token") as e:
        guard.credential(headers, query_token, s, ACCESS)
    assert e.value.status == 503
    assert guard.credential(Headers(authorization="token theirs"), None, s, ACCESS) == guard.Credential("token theirs")


def test_the_browser_host_is_a_secret_localhost_name():
    assert BROWSER.endswith(".localhost:8000") and len(BROWSER.split(".")[0]) == 20
    assert LOCAL not in BROWSER and BROWSER == guard.browser_of(make())
    assert guard.browser_of(make(local="other-secret-0123456789")) != BROWSER
    assert guard.browser_of(make(local="")) is None
    assert guard.browser_of(make(listen="0.0.0.0")) is None  # *.localhost would be the browser's own machine
    other_port = guard.browser_of(dataclasses.replace(S, listen_port=8001))  # a second bridge on the same login
    assert other_port.endswith(".localhost:8001") and other_port.split(":")[0] != BROWSER.split(":")[0]
    guard.check_caller(Headers(host=BROWSER, origin=f"http://{BROWSER}", sec_fetch_site="same-origin"), S)


@pytest.mark.parametrize("fetch_site", ["same-site", "cross-site", "SAME-SITE"])
def test_the_cookie_alone_is_refused_from_other_pages(fetch_site):
    """Issue 12.2: other ports of the same host name are same-site: <img>, <script>, no-cors fetch."""
    with pytest.raises(Refused, match="cookie") as e:
        guard.credential(Headers(host=BROWSER, cookie=COOKIE, sec_fetch_site=fetch_site), None, S, ACCESS)
    assert e.value.status == 403
    # with the token itself, a same-site request is what it was
    assert guard.credential(Headers(host=BROWSER, sec_fetch_site="same-site"), LOCAL, S, ACCESS) == OURS


def test_the_cookie_counts_only_on_the_browsers_host_name():
    """Issue 12.1: a cookie presented at 127.0.0.1 or localhost can only be a replay."""
    for host in ("127.0.0.1:8000", "localhost:8000"):
        with pytest.raises(Refused) as e:
            guard.credential(Headers(host=host, cookie=COOKIE), None, S, ACCESS)
        assert e.value.status == 401


NAV = {"sec_fetch_mode": "navigate", "sec_fetch_site": "none"}


def test_login_sends_a_browser_to_its_host_name_with_a_short_ticket():
    access = guard.BrowserAccess()
    plan = forward.request_changes(f"/lab/tree?reset&token={LOCAL}", Headers(host="127.0.0.1:8000", **NAV), S,
                                   access, now=1000)
    assert isinstance(plan, forward.Redirect) and plan.set_cookie is None
    prefix = f"http://{BROWSER}/lab/tree?reset&bridge-login="
    assert plan.location.startswith(prefix) and LOCAL not in plan.location
    ticket = plan.location[len(prefix):]
    assert guard.ticket_nonce(ticket, LOCAL, 1000) and guard.ticket_nonce(ticket, LOCAL, 1060)
    assert not guard.ticket_nonce(ticket, LOCAL, 1061) and not guard.ticket_nonce(ticket, "other", 1000)
    # a ticket is no credential elsewhere, nor late, nor outside a navigation (and none of these spends it)
    for headers, now in [(Headers(host="127.0.0.1:8000", **NAV), 1010), (Headers(host=BROWSER, **NAV), 2000),
                         (Headers(host=BROWSER), 1010)]:
        with pytest.raises(Refused):
            forward.request_changes(f"/lab?bridge-login={ticket}", headers, S, access, now=now)
    # there, the ticket gets the cookie and the same URL without it
    there = forward.request_changes(f"/lab/tree?reset&bridge-login={ticket}", Headers(host=BROWSER, **NAV), S,
                                    access, now=1010)
    assert there == forward.Redirect("/lab/tree?reset", access.session_cookie(S))
    assert access.cookie in there.set_cookie and LOCAL not in there.set_cookie


def test_a_ticket_gets_one_cookie_only():
    """Issue 18.6: 3 of 3 replays within the minute got the cookie."""
    access = guard.BrowserAccess()
    ticket = guard.login_ticket(LOCAL, 1000)
    first = forward.request_changes(f"/lab?bridge-login={ticket}", Headers(host=BROWSER, **NAV), S, access, now=1001)
    assert first == forward.Redirect("/lab", access.session_cookie(S))
    for now in (1002, 1059):
        with pytest.raises(Refused) as e:
            forward.request_changes(f"/lab?bridge-login={ticket}", Headers(host=BROWSER, **NAV), S, access, now=now)
        assert e.value.status == 401
    # another ticket still works, and spent tickets are forgotten once they expire
    assert access.redeem(guard.login_ticket(LOCAL, 1000), LOCAL, 1003)
    assert access.redeem(guard.login_ticket(LOCAL, 2000), LOCAL, 2000) and len(access.spent) == 1


@pytest.mark.parametrize("ticket", [
    "", "1060", "1060.", "1060.abc", "x.abc.def", f"1060.nonce.{'0' * 32}", f"9999.nonce.{'0' * 32}",
])
def test_forged_tickets_are_refused(ticket):
    assert guard.ticket_nonce(ticket, LOCAL, 1000) is None
    assert not guard.BrowserAccess().redeem(ticket, LOCAL, 1000)


def test_a_ticket_is_checked_with_the_local_token_alone():
    """`./run.sh open` makes tickets in its own process: the bridge needs nothing of it but the token."""
    made_elsewhere = guard.login_ticket(LOCAL, 1000)
    assert guard.BrowserAccess().redeem(made_elsewhere, LOCAL, 1000)
    assert not guard.BrowserAccess().redeem(made_elsewhere, "another-local-secret", 1000)
    assert made_elsewhere != guard.login_ticket(LOCAL, 1000)  # a nonce each


def test_the_cookie_is_random_per_run_and_no_function_of_the_local_token():
    """Issue 18.6: the cookie value was sha256 of the local token, the same at every start."""
    one, two = guard.BrowserAccess(), guard.BrowserAccess()
    assert one.cookie != two.cookie and len(one.cookie) == 64
    assert one.has_cookie(Headers(host=BROWSER, cookie=f"jupyterhub-bridge-8000={one.cookie}"), S)
    assert not two.has_cookie(Headers(host=BROWSER, cookie=f"jupyterhub-bridge-8000={one.cookie}"), S)


@pytest.mark.parametrize("target, location", [
    (f"/?token={LOCAL}", "/"), (f"/lab?token={LOCAL}", "/lab"), (f"/lab?a=1&token={LOCAL}&b", "/lab?a=1&b"),
])
def test_login_on_the_browsers_host_name_drops_the_token_from_the_url(target, location):
    """Issue 9.2: the local token leaves the address bar, the history and every Referer."""
    assert forward.request_changes(target, Headers(host=BROWSER, **NAV), S, ACCESS) == forward.Redirect(
        location, ACCESS.session_cookie(S))


def test_login_off_loopback_sets_the_cookie_on_the_bridges_own_name():
    s = make(listen="0.0.0.0")
    assert forward.request_changes(f"/lab?token={LOCAL}", Headers(host="0.0.0.0:8000", **NAV), s,
                                   ACCESS) == forward.Redirect("/lab", ACCESS.session_cookie(s))
    # a ticket (of ./run.sh open) counts there too, where there is no browser name
    ticket = guard.login_ticket(LOCAL, 1000)
    assert forward.request_changes(f"/lab?bridge-login={ticket}", Headers(host="0.0.0.0:8000", **NAV), s,
                                   ACCESS, now=1000) == forward.Redirect("/lab", ACCESS.session_cookie(s))


@pytest.mark.parametrize("headers, target", [
    (Headers(host="127.0.0.1:8000"), f"/lab?token={LOCAL}"),  # an IDE: no navigation
    (Headers(host="127.0.0.1:8000", **NAV), "/lab?token=theirs"),  # the client's own hub token
])
def test_no_login_without_a_navigation_with_the_local_secret(headers, target):
    plan = forward.request_changes(target, headers, S)
    assert isinstance(plan, forward.Forward) and plan.target == "/user/alice/lab"


def test_only_the_bridges_own_clients_may_start_the_server():
    """Issue 12.4: a client that brought another token gets no start made with the hub token."""
    h = Headers(host="127.0.0.1:8000")
    assert forward.request_changes(f"/api/status?token={LOCAL}", h, S).bridges
    assert not forward.request_changes("/api/status?token=bogus", h, S).bridges
    assert forward.request_changes("/api/status", h, make(local="")).bridges


@pytest.mark.parametrize("referer, upstream", [
    (f"http://127.0.0.1:8000/lab?token={LOCAL}", "https://jupyterhub:8443/user/alice/lab"),
    (f"http://127.0.0.1:8000/lab?a=1&TOKEN={LOCAL};token=x&b=2", "https://jupyterhub:8443/user/alice/lab?a=1&b=2"),
    (f"http://{BROWSER}/user/alice/lab/tree", "https://jupyterhub:8443/user/alice/lab/tree"),
    ("https://elsewhere.example/?token=abc", "https://elsewhere.example/"),
])
def test_referer_goes_up_without_tokens(referer, upstream):
    """Issue 9.2: `token` parameters leave `Referer` before a request goes upstream."""
    h = Headers(host="127.0.0.1:8000", authorization=f"token {LOCAL}", referer=referer)
    assert forward.request_changes("/api/status", h, S).headers["Referer"] == upstream


def test_a_refusal_quotes_only_the_start_of_a_huge_host():
    """Issue 12.6: a 100 KB Host made a 98 KB answer and log line."""
    with pytest.raises(Refused) as e:
        guard.check_caller(Headers(host="a" * 100_000), S)
    assert len(e.value.message) < 300 and "aaaa'…" in e.value.message


@pytest.mark.parametrize("headers, query_token", [
    (Headers(), None),
    (Headers(cookie="jupyterhub-bridge-8000=wrong"), None),
    (Headers(cookie=f"jupyterhub-bridge-8000={LOCAL}"), None),  # the cookie holds a derived value, not the secret
    (Headers(authorization="Basic dTpw"), None),
])
def test_no_credential_gets_401_saying_how_to_connect(headers, query_token):
    with pytest.raises(Refused, match=r"http://127.0.0.1:8000/\?token=<the bridge's token>") as e:
        guard.credential(headers, query_token, S, ACCESS)
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
    assert HUB_TOKEN not in repr(S) and LOCAL not in repr(S) and SERVER_TOKEN not in repr(S)


def test_redact_authorization():
    assert guard.redact_authorization(f"token {HUB_TOKEN}") == "token …cdef"


hosts = st.one_of(st.sampled_from([BROWSER, "127.0.0.1:8000", "localhost:8000", "[::1]:8000", "evil.example:8000",
                                   "127.0.0.1:8001", "127.0.0.1", "localhost.evil:8000", ""]),
                  st.text(max_size=20))
origins = st.one_of(st.none(), st.sampled_from([f"http://{BROWSER}", "http://127.0.0.1:8000", "http://localhost:8000", "null",
                                                "https://evil.example", "http://127.0.0.1:8000.evil",
                                                "http://localhost:8001", "https://127.0.0.1:8000"]),
                    st.text(max_size=20))


@given(host=hosts, origin=origins, fetch_site=st.sampled_from([None, "same-origin", "same-site", "cross-site", "none"]),
       via=st.sampled_from(["header", "query", "cookie", "none"]))
def test_only_the_bridges_own_origin_is_ever_forwarded_with_the_access_token(host, origin, fetch_site, via):
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
        headers["cookie"] = COOKIE
    try:
        plan = forward.request_changes(target, headers, S, ACCESS)
    except Refused:
        return
    assert plan.headers.get("Authorization") == f"token {SERVER_TOKEN}"  # issue 17: never the hub token
    assert host.lower() in guard.authorities(S)
    assert origin is None or origin.lower() in guard.origins(S)
    assert fetch_site != "cross-site"
    assert via != "cookie" or (host.lower() == BROWSER and fetch_site in (None, "same-origin", "none"))
    assert LOCAL not in plan.target


def test_redact_cookie():
    assert guard.redact_cookie(ACCESS.session_cookie(S)) == (
        f"jupyterhub-bridge-8000=…{ACCESS.cookie[-4:]}; Path=/; HttpOnly; SameSite=Strict")


@pytest.mark.parametrize("headers", [
    Headers(sec_fetch_dest="document", accept_encoding="gzip, br"),
    Headers(accept="text/html,application/xhtml+xml", accept_encoding="gzip"),
    Headers(accept="application/json", accept_encoding="gzip"),  # issue 18.5: which answer is a page, only
    Headers(accept="*/*", accept_encoding="gzip, deflate, br"),  # its own headers say
    Headers(authorization="token theirs", accept_encoding="gzip"),
])
def test_every_answer_is_asked_for_uncompressed_with_a_hub_token(headers):
    """Issues 12.3 and 18.5: the hub token is blanked from pages as they stream, which needs them uncompressed."""
    headers.update(host="127.0.0.1:8000")
    headers.setdefault("authorization", f"token {LOCAL}")
    assert forward.request_changes("/lab", headers, S, ACCESS).headers["Accept-Encoding"] == "identity"
    assert "Accept-Encoding" not in forward.request_changes("/lab", headers, make(hub_token=""), ACCESS).headers


def test_open_prints_a_single_use_url_on_the_browser_name():
    """Issue 18.6: `./run.sh open` gives a browser its own way in, without the IDE's permanent token."""
    from addon.commands import open as open_command
    url = open_command.login_url(S, 1000)
    assert url.startswith(f"http://{BROWSER}/lab?bridge-login=") and LOCAL not in url
    ticket = url.partition("bridge-login=")[2]
    access = guard.BrowserAccess()
    assert forward.request_changes(f"/lab?bridge-login={ticket}", Headers(host=BROWSER, **NAV), S, access,
                                   now=1001) == forward.Redirect("/lab", access.session_cookie(S))
    assert open_command.login_url(make(local=""), 1000) == "http://127.0.0.1:8000/lab"
    assert "no hub token" in open_command.cannot_open(make(hub_token=""), True)
    assert "new token at each start" in open_command.cannot_open(S, False)
    assert open_command.cannot_open(S, True) is None
