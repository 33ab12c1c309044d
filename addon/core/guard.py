"""Who may use the bridge. A token-authenticated request skips Jupyter's own XSRF and Origin checks, so a
bridge that adds the hub token must refuse foreign Hosts and Origins itself and ask clients for a secret.

Browsers get a credential of their own: a cookie on a host name derived from the local secret
(`<random>.localhost`, which browsers resolve to loopback). Cookies are scoped by host name, not by port, so a
page on another port of 127.0.0.1 or localhost never receives it; the connect URL sends the browser there."""

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from http.cookies import CookieError
from http.cookies import SimpleCookie

from addon.core import credentials
from addon.core.invocation import RUN
from addon.core.route import Refused
from addon.core.settings import Settings
from addon.core.settings import is_loopback

TICKET_SECONDS = 60
COOKIE_FETCH_SITES = (None, "same-origin", "none")  # a cookie comes only with the browser's own requests


def _mac(secret: str, purpose: str) -> str:
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=8)
def browser_authority(local_secret: str, listen_host: str, port: int) -> str | None:
    """The browser's own address for this bridge; None where browsers use the bridge's address (no local
    secret, or not on loopback, where `*.localhost` would name the browser's machine)."""
    if not local_secret or not is_loopback(listen_host):
        return None
    # One name per port: two bridges on one login (one local secret) on one name would each get the other's
    # cookie from the browser, which scopes cookies by host name, not port, and forward it to its own server.
    return f"{_mac(local_secret, f'browser-host:{port}')[:20]}.localhost:{port}"


def browser_of(s: Settings) -> str | None:
    return browser_authority(s.local_secret, s.listen_host, s.listen_port)


def authorities(s: Settings) -> frozenset[str]:
    return with_one_more(s.own_authorities, browser_of(s))


def origins(s: Settings) -> frozenset[str]:
    browser = browser_of(s)
    return with_one_more(s.own_origins, f"http://{browser}" if browser else None)


@lru_cache(maxsize=8)
def with_one_more(names: frozenset[str], name: str | None) -> frozenset[str]:
    """Made once per settings, not per request."""
    return names | {name} if name else names


def login_ticket(local_secret: str, now: float) -> str:
    """A browser's pass to its cookie, for one use within TICKET_SECONDS. The local secret alone makes and checks
    it: `./run.sh open` makes them in its own process, and the running bridge takes each once."""
    expires, nonce = int(now) + TICKET_SECONDS, secrets.token_hex(8)
    return f"{expires}.{nonce}.{_ticket_mac(local_secret, expires, nonce)}"


def _ticket_mac(local_secret: str, expires: int, nonce: str) -> str:
    return _mac(local_secret, f"login:{expires}.{nonce}")[:32]


def ticket_nonce(ticket: str, local_secret: str, now: float) -> tuple[str, int] | None:
    """The nonce and expiry of a genuine ticket that has not expired; None for any other text."""
    expires, nonce, mac = (ticket.split(".", 2) + ["", ""])[:3]
    if not expires.isdigit() or not now <= int(expires) <= now + TICKET_SECONDS or not nonce:
        return None
    return (nonce, int(expires)) if same(mac, _ticket_mac(local_secret, int(expires), nonce)) else None


class BrowserAccess:
    """The browser's way in for one run of the bridge: the cookie's value, random per run (so no copy of it
    outlives the run, and it is no function of the local token), and the tickets spent, each kept until it
    expires so that a ticket gets one cookie only."""

    def __init__(self) -> None:
        self.cookie = secrets.token_hex(32)
        self.spent: dict[str, int] = {}  # nonce -> expiry

    def redeem(self, ticket: str, local_secret: str, now: float) -> bool:
        found = ticket_nonce(ticket, local_secret, now)
        self.spent = {nonce: expires for nonce, expires in self.spent.items() if expires >= now}
        if found is None or found[0] in self.spent:
            return False
        self.spent[found[0]] = found[1]
        return True

    def has_cookie(self, headers: Mapping[str, str], s: Settings) -> bool:
        """The browser's cookie, on the browser's own host name (elsewhere it can only be a replay)."""
        browser = browser_of(s)
        if browser and (headers.get("host") or "").strip().lower() != browser:
            return False
        return same(request_cookie(headers, s.cookie_name), self.cookie)

    def session_cookie(self, s: Settings) -> str:
        return f"{s.cookie_name}={self.cookie}; Path=/; HttpOnly; SameSite=Strict"


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def check_caller(headers: Mapping[str, str], s: Settings) -> None:
    """Raise Refused(403) unless the request comes from the bridge's own names and origin.
    `headers` by lower-case name (forward.header_table; mitmproxy's Headers also do)."""
    host = (headers.get("host") or "").strip().lower()
    if host not in authorities(s):
        raise Refused(403, f"Refused Host {credentials.quoted(host)}: the bridge answers only to its own address "
                           f"({s.connect_url}), which protects your server from DNS rebinding.")
    origin = headers.get("origin")
    if origin is not None and origin.strip().lower() not in origins(s):
        raise Refused(403, f"Refused Origin {credentials.quoted(origin)}: only the bridge's own pages "
                           f"({s.connect_url}) and clients that send no Origin (IDEs) may use it; a web page "
                           "elsewhere may not.")
    if fetch_site(headers) == "cross-site":
        raise Refused(403, "Refused a cross-site request: a web page on another site may not use the bridge.")


def fetch_site(headers: Mapping[str, str]) -> str | None:
    site = headers.get("sec-fetch-site")
    return site.strip().lower() if site is not None else None


@dataclass(frozen=True)
class Credential:
    authorization: str | None  # the upstream Authorization header; None: leave the request's as it is
    bridges: bool = False  # the bridge's own client (its token or cookie): the access token goes up, and a
    # stopped server may be started for it


def credential(headers: Mapping[str, str], query_token: str | None, s: Settings,
               access: BrowserAccess) -> Credential:
    """Which credential goes upstream; raise Refused(401) when the request has none.
    `query_token` is the `?token=` the client sent, already removed from the URL."""
    header = headers.get("authorization")
    presented = credentials.header_token(header) or (query_token or "").strip() or None
    if s.hub_token is None:
        if header is None and presented:
            return Credential(f"token {presented}")
        return Credential(None)
    if presented and s.local_secret and same(presented, s.local_secret):
        return ours(s)
    if presented:
        # Not the local secret: the client's own hub credential, which the hub judges.
        return Credential(header if credentials.header_token(header) else f"token {presented}")
    if not s.local_secret:
        return ours(s)
    if access.has_cookie(headers, s):
        if fetch_site(headers) not in COOKIE_FETCH_SITES:
            raise Refused(403, "Refused a request that only the browser's cookie authenticates from a page that "
                               "is not the bridge's own (Sec-Fetch-Site: same-site).")
        return ours(s)
    raise Refused(401, f"No valid token: connect with the URL the bridge printed at start "
                       f"({s.connect_url}?token=<the bridge's token>), or send 'Authorization: token <the "
                       "bridge's token>'. The bridge's token is JUPYTER_PROXY_TOKEN, or printed in its banner. "
                       f"A browser: run '{RUN} open' for a URL of its own.")


class NoAccessToken(Refused):
    """The bridge's own client came while the hub has made no access token (addon/access.py)."""

    def __init__(self) -> None:
        super().__init__(503, "The bridge has no access token for your server yet: the hub did not make one (its "
                              f"log says why). It asks again with a later request; {RUN} check tells what is wrong.")

    @staticmethod
    def because(why: str) -> str:
        """The message when the hub's reason is known (the words Access logged): the client reads it too."""
        return f"The bridge has no access token for your server: {why} It asks the hub again with a later request."


def ours(s: Settings) -> Credential:
    """The bridge's own client's credential: the access token, never the hub token (addon/access.py)."""
    if not s.server_token:
        raise NoAccessToken()
    return Credential(f"token {s.server_token}", bridges=True)


@dataclass(frozen=True)
class BrowserLogin:
    """A browser navigated here with the local secret (or a ticket): send it on without the secret in its URL."""
    origin: str  # where it goes next: the browser's own host name with a ticket, or "" (here, with the cookie)


def browser_login(headers: Mapping[str, str], query_token: str | None, ticket: str | None, s: Settings,
                  access: BrowserAccess, now: float) -> BrowserLogin | None:
    """A navigation that presents the local secret gets its cookie, on the browser's own host name, and a
    redirect to the same URL without the secret (as Jupyter's own login does)."""
    if (headers.get("sec-fetch-mode") or "").strip().lower() != "navigate" or not s.hub_token or not s.local_secret:
        return None
    host = (headers.get("host") or "").strip().lower()
    browser = browser_of(s)
    if not (query_token and same(query_token, s.local_secret)
            or ticket and host == (browser or host) and access.redeem(ticket, s.local_secret, now)):
        return None
    if browser and host != browser:
        return BrowserLogin(f"http://{browser}")
    return BrowserLogin("")


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


def redact_cookie(set_cookie: str) -> str:
    """The bridge's Set-Cookie as a flow shows it: the value's last four characters."""
    name, _, rest = set_cookie.partition("=")
    value, sep, attributes = rest.partition(";")
    return f"{name}={credentials.redact(value)}{sep}{attributes}"


def redact_authorization(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return f"{scheme} {credentials.redact(token.strip())}"


def not_started_for_others(s: Settings) -> str:
    """A stopped server, for a client that brought its own credential: the bridge's token starts no server
    for it."""
    return (f"Your JupyterHub server is not running. The bridge starts it only for clients that present the "
            f"bridge's own token ({s.connect_url}?token=<the bridge's token>); or start it at {s.hub_home}.")
