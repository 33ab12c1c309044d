"""Who may use the bridge. A token-authenticated request skips Jupyter's own XSRF and Origin checks, so a
bridge that adds the hub token must refuse foreign Hosts and Origins itself and ask clients for a secret."""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError
from http.cookies import SimpleCookie

from addon import credentials
from addon.route import Refused
from addon.settings import Settings


def cookie_value(local_secret: str) -> str:
    """What the browser cookie holds: derived from the local secret, so the secret itself is never stored."""
    return hashlib.sha256(f"jupyterhub-bridge-cookie:{local_secret}".encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_caller(headers: Mapping[str, str], p: Settings) -> None:
    """Raise Refused(403) unless the request comes from the bridge's own names and origin.
    `headers` must look names up case-insensitively."""
    host = (headers.get("host") or "").strip().lower()
    if host not in p.own_authorities:
        raise Refused(403, f"Refused Host {host!r}: the bridge answers only to its own address "
                           f"({p.connect_url}), which protects your server from DNS rebinding.")
    origin = headers.get("origin")
    if origin is not None and origin.strip().lower() not in p.own_origins:
        raise Refused(403, f"Refused Origin {origin!r}: only the bridge's own pages ({p.connect_url}) and "
                           "clients that send no Origin (IDEs) may use it; a web page elsewhere may not.")
    if (headers.get("sec-fetch-site") or "").strip().lower() == "cross-site":
        raise Refused(403, "Refused a cross-site request: a web page on another site may not use the bridge.")


@dataclass(frozen=True)
class Credential:
    authorization: str | None  # the upstream Authorization header; None: leave the request's as it is
    set_cookie: bool  # a browser navigated here with the local secret: give it the cookie


def credential(headers: Mapping[str, str], query_token: str | None, p: Settings) -> Credential:
    """Which credential goes upstream; raise Refused(401) when the request has none.
    `query_token` is the `?token=` the client sent, already removed from the URL."""
    header = headers.get("authorization")
    presented = credentials.header_token(header) or query_token
    if p.hub_token is None:
        if header is None and query_token:
            return Credential(f"token {query_token}", False)
        return Credential(None, False)
    if presented and p.local_secret and same(presented, p.local_secret):
        navigated = query_token is not None and not credentials.header_token(header)
        return Credential(f"token {p.hub_token}", navigated)
    if presented:
        # Not the local secret: the client's own hub credential, which the hub judges.
        return Credential(header if credentials.header_token(header) else f"token {presented}", False)
    if p.local_secret and same(request_cookie(headers, p.cookie_name), cookie_value(p.local_secret)):
        return Credential(f"token {p.hub_token}", False)
    if not p.local_secret:
        return Credential(f"token {p.hub_token}", False)
    raise Refused(401, f"No valid token: connect with the URL the bridge printed at start "
                       f"({p.connect_url}?token=<the bridge's token>), or send 'Authorization: token <the "
                       "bridge's token>'. The bridge's token is JUPYTER_PROXY_TOKEN, or printed in its banner.")


def request_cookie(headers: Mapping[str, str], name: str) -> str:
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie") or "")
    except CookieError:
        return ""
    morsel = cookie.get(name)
    return morsel.value if morsel else ""


def without_cookie(cookie_header: str, name: str) -> str:
    """The Cookie header minus the bridge's own cookie, which the hub never needs to see."""
    kept = [c for c in cookie_header.split(";") if c.strip().partition("=")[0] != name]
    return ";".join(kept).strip()


def session_cookie(p: Settings) -> str:
    return f"{p.cookie_name}={cookie_value(p.local_secret)}; Path=/; HttpOnly; SameSite=Strict"


def redact_authorization(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return f"{scheme} {credentials.redact(token.strip())}"
