"""Where a request goes: client paths <-> paths on the user's server, and the URLs that come back."""

import re
from urllib.parse import unquote
from urllib.parse import urlsplit

from addon.core.errors import BridgeError


class Refused(BridgeError):
    """A request the bridge answers itself, with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def split_target(target: str) -> tuple[str, str]:
    """'/a/b?x=1' -> ('/a/b', '?x=1'); the query keeps its exact bytes."""
    path, sep, query = target.partition("?")
    return path, sep + query


def is_unsafe(path: str) -> bool:
    """True for paths the hub's proxy would resolve to somewhere else: dot segments
    (also percent-encoded, even twice), backslashes and empty segments."""
    for _ in range(3):
        if "\\" in path or "//" in path:
            return True
        if any(segment in (".", "..") for segment in path.split("/")):
            return True
        decoded = unquote(path)
        if decoded == path:
            return False
        path = decoded
    return True


def to_upstream(target: str, prefix: str, base_url: str = "/") -> str:
    """Map a client request target into the user's server at `prefix` (e.g. '/user/alice/')."""
    path, query = split_target(target)
    if not path.startswith("/") or is_unsafe(path):
        raise Refused(400, f"Refused path {path!r}: '.' or '..' segments, backslashes and '//' "
                           "are not allowed, because they would leave your server's URL space.")
    hub = f"{base_url}hub"
    if path == hub or path.startswith(hub + "/"):
        raise Refused(404, "The JupyterHub itself is not reachable through the bridge, only your server. "
                           "If a redirect sent you here, your server is probably not running: "
                           "start it from the hub's home page.")
    if path == prefix.rstrip("/") or path.startswith(prefix):
        return path + query
    return prefix + path.lstrip("/") + query


def to_client_path(path: str, prefix: str) -> str:
    """The bridge's unprefixed form of a path on the user's server; other paths are kept."""
    if path == prefix.rstrip("/"):
        return "/"
    if path.startswith(prefix):
        return "/" + path[len(prefix):]
    return path


def rewrite_location(location: str, prefix: str, hub_origins: frozenset[str]) -> str:
    """A Location from the hub, as the client should see it: relative to the bridge, no upstream address."""
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        if f"{parts.scheme}://{parts.netloc}".lower() not in hub_origins:
            return location
    path = to_client_path(parts.path, prefix)
    return path + (f"?{parts.query}" if parts.query or location.endswith("?") else "") + (
        f"#{parts.fragment}" if parts.fragment else "")


_COOKIE_PATH = re.compile(r"(;\s*path=)([^;]*)", re.IGNORECASE)


def rewrite_set_cookie(value: str, prefix: str) -> str:
    """Cookies scoped to the user's prefix are scoped to '/' on the bridge, where clients send their requests."""
    def scope(m: re.Match) -> str:
        path = m.group(2).strip()
        if path.rstrip("/") + "/" == prefix or path.startswith(prefix):
            return m.group(1) + "/"
        return m.group(0)
    return _COOKIE_PATH.sub(scope, value)


def rewrite_referer(referer: str, own_origins: frozenset[str], hub_origin: str, prefix: str) -> str | None:
    """A Referer naming the bridge, as the hub would see it from a browser; None drops it."""
    parts = urlsplit(referer)
    if f"{parts.scheme}://{parts.netloc}".lower() not in own_origins:
        return referer
    try:
        target = to_upstream(parts.path or "/", prefix)
    except Refused:
        return None
    return hub_origin + target + (f"?{parts.query}" if parts.query else "")
