"""A client request as it goes upstream: its new target and the headers that change, as plain values."""

from collections.abc import Mapping
from dataclasses import dataclass

from addon import credentials
from addon import guard
from addon import route
from addon.settings import Settings


@dataclass(frozen=True)
class Forward:
    target: str
    headers: dict[str, str | None]  # header -> new value, or None to remove it
    set_cookie: str | None = None  # for the client's response


def request_changes(target: str, headers: Mapping[str, str], s: Settings) -> Forward:
    """How a request goes upstream; raises route.Refused for one the bridge answers itself.
    `headers` must look names up case-insensitively, as mitmproxy's Headers do."""
    guard.check_caller(headers, s)
    path, query = route.split_target(route.to_upstream(target, s.prefix, s.base_url))
    query, url_token = credentials.pop_query_token(query)
    credential = guard.credential(headers, url_token, s)
    changes: dict[str, str | None] = {"Host": s.hub_authority}
    if credential.authorization:
        changes["Authorization"] = credential.authorization
    if cookie := headers.get("cookie"):
        changes["Cookie"] = guard.without_cookie(cookie, s.cookie_name) or None
    if headers.get("origin"):
        changes["Origin"] = s.hub_origin  # check_caller let only the bridge's own origin through
    if referer := headers.get("referer"):
        changes["Referer"] = route.rewrite_referer(referer, s.own_origins, s.hub_origin, s.prefix)
    return Forward(path + query, changes, guard.session_cookie(s) if credential.set_cookie else None)
