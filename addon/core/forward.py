"""A client request as it goes upstream: its new target and the headers that change, as plain values."""

import time
from collections.abc import Mapping
from dataclasses import dataclass

from addon.core import credentials
from addon.core import guard
from addon.core import route
from addon.core.settings import Settings


@dataclass(frozen=True)
class Forward:
    target: str
    headers: dict[str, str | None]  # header -> new value, or None to remove it
    bridges: bool = False  # the bridge's own client: it may have a stopped server started for it


@dataclass(frozen=True)
class Redirect:
    """The bridge's own answer to a browser's login: where it goes, and the cookie it gets, if any."""
    location: str
    set_cookie: str | None


def request_changes(target: str, headers: Mapping[str, str], s: Settings, access: guard.BrowserAccess | None = None,
                    now: float | None = None) -> Forward | Redirect:
    """How a request goes upstream, or the redirect that answers a browser's login; raises route.Refused for a
    request the bridge refuses. `headers` by lower-case name (`header_table`; mitmproxy's Headers also do).
    `access`: the running bridge's browser cookie and spent tickets (None: no browser session, as in `check`)."""
    access = access or guard.BrowserAccess()
    guard.check_caller(headers, s)
    path, query = route.split_target(route.to_upstream(target, s.prefix, s.base_url))
    query, url_token = credentials.pop_query_token(query)
    query, ticket = credentials.pop_param(query, credentials.LOGIN)
    now = time.time() if now is None else now
    if login := guard.browser_login(headers, url_token, ticket, s, access, now):
        return login_redirect(target, login, s, access, now)
    credential = guard.credential(headers, url_token, s, access)
    changes: dict[str, str | None] = {"Host": s.hub_authority}
    if credential.authorization:
        changes["Authorization"] = credential.authorization
    if cookie := headers.get("cookie"):
        changes["Cookie"] = guard.without_cookie(cookie, s.cookie_name) or None
    if headers.get("origin"):
        changes["Origin"] = s.hub_origin  # check_caller let only the bridge's own origin through
    if s.hub_token:
        # Answers come uncompressed, so that the hub token can be blanked from pages as they stream through
        # (which answer is a page, only its headers say).
        changes["Accept-Encoding"] = "identity"
    if referer := headers.get("referer"):
        upstream = route.rewrite_referer(referer, guard.origins(s), s.hub_origin, s.prefix)
        changes["Referer"] = credentials.without_query_tokens(upstream) if upstream else None
    return Forward(path + query, changes, credential.bridges)


def wants_access_token(target: str, headers: Mapping[str, str], s: Settings, access: guard.BrowserAccess) -> bool:
    """Whether this request, while the bridge has no access token, is one of the bridge's own clients' (its local
    token, the browser's cookie; any client when it has no local token) that the guard lets through: only those
    wait for the access token, or have the bridge ask the hub for it. The others are answered without the hub:
    20 requests without a credential made 40 Hub API calls with the login token (issue 28). Ticket redemption
    (which spends a ticket) is request_changes' alone."""
    try:
        guard.check_caller(headers, s)
        _, query = route.split_target(route.to_upstream(target, s.prefix, s.base_url))
        guard.credential(headers, credentials.pop_query_token(query)[1], s, access)
    except guard.NoAccessToken:
        return True
    except route.Refused:
        return False
    return False  # the client's own hub credential: no access token of the bridge's goes up


def login_redirect(target: str, login: guard.BrowserLogin, s: Settings, access: guard.BrowserAccess,
                   now: float) -> Redirect:
    """The same URL without the local secret: on the browser's host name with a ticket, or here with the cookie."""
    path, query = route.split_target(target)
    query, _ = credentials.pop_query_token(query)
    query, _ = credentials.pop_param(query, credentials.LOGIN)
    if login.origin:
        ticket = f"{credentials.LOGIN}={guard.login_ticket(s.local_secret, now)}"
        return Redirect(f"{login.origin}{path}{query}{'&' if query else '?'}{ticket}", None)
    return Redirect(path + query, access.session_cookie(s))


def changed_fields(fields: tuple[tuple[bytes, bytes], ...],
                   changes: Mapping[str, str | None]) -> tuple[tuple[bytes, bytes], ...]:
    """Header fields with `changes` made in one pass, as mitmproxy's `headers[name] = value` and
    `headers.pop(name)` make them one by one: a value takes the place of the name's first field (the others go)
    or comes last; None removes every field of the name."""
    wanted = {name.lower().encode(): (name.encode(), value) for name, value in changes.items()}
    kept, done = [], set()
    for name, value in fields:
        key = name.lower()
        if key not in wanted:
            kept.append((name, value))
        elif key not in done and wanted[key][1] is not None:
            done.add(key)
            kept.append((name, wanted[key][1].encode("utf-8", "surrogateescape")))
    kept += [(name, value.encode("utf-8", "surrogateescape"))
             for key, (name, value) in wanted.items() if key not in done and value is not None]
    return tuple(kept)


def header_table(fields: tuple[tuple[bytes, bytes], ...]) -> dict[str, str]:
    """Header fields by lower-case name, a repeated one folded with ', ' as mitmproxy's Headers read it, in one
    pass: each lookup in mitmproxy's Headers lowers every field's name."""
    table: dict[str, str] = {}
    for name, value in fields:
        key, text = name.lower().decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape")
        table[key] = f"{table[key]}, {text}" if key in table else text
    return table
