"""A client request as it goes upstream: its new target and the headers that change, as plain values."""

from collections.abc import Mapping

from addon import credentials
from addon import route
from addon.settings import Settings


def request_changes(target: str, headers: Mapping[str, str], s: Settings) -> tuple[str, dict[str, str | None]]:
    """(upstream target, {header: new value, or None to remove}); raises route.Refused.
    `headers` must look names up case-insensitively, as mitmproxy's Headers do."""
    path, query = route.split_target(route.to_upstream(target, s.prefix, s.base_url))
    query, url_token = credentials.pop_query_token(query)
    changes: dict[str, str | None] = {"Host": s.hub_authority}
    if url_token and not headers.get("authorization"):
        changes["Authorization"] = f"token {url_token}"
    origin = headers.get("origin")
    if origin and origin.lower() in s.own_origins:
        changes["Origin"] = s.hub_origin
    referer = headers.get("referer")
    if referer:
        changes["Referer"] = route.rewrite_referer(referer, s.own_origins, s.hub_origin, s.prefix)
    return path + query, changes
