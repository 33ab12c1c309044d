"""The token requests of `./run.sh login` and of the renewal, and what is kept of a token the hub made. Pure."""

import re

from addon.hub import api as hub


def wanted_scopes(user: str) -> list[str]:
    """The fewest the bridge needs: reach the user's servers, start and stop them, read the user's own model,
    and manage the user's own tokens (the renewal mints the successor with the token itself)."""
    return [f"access:servers!user={user}", f"servers!user={user}", f"read:users!user={user}", f"tokens!user={user}"]


def refused_scopes(message: str) -> set[str]:
    """The scopes a hub named in 'Not assigning requested scopes a,b not held by User alice'."""
    found = re.search(r"requested scopes (\S+) not held by", message)
    return set(found.group(1).split(",")) if found else set()


def lifetime_limit(message: str) -> int | None:
    """The hub's longest token lifetime, from 'token expires_in: 9999 must not exceed 3600'."""
    found = re.search(r"expires_in: \d+ must not exceed (\d+)", message)
    return int(found.group(1)) if found else None


def narrowed(request: dict, answer: hub.Answer) -> tuple[dict | None, str]:
    """The request to send again after a 400, and what to tell the user; (None, why) when there is none. Scopes
    are only ever dropped, never widened: without `access:servers` the token is of no use to the bridge."""
    message = hub.hub_message(answer.status, answer.body)
    if (limit := lifetime_limit(message)) and limit < request["expires_in"]:
        return {**request, "expires_in": limit}, f"the hub allows tokens of at most {limit} s: asking for that"
    refused = refused_scopes(message) & set(request["scopes"])
    kept = [scope for scope in request["scopes"] if scope not in refused]
    if refused and kept and kept[0].startswith("access:servers"):
        return {**request, "scopes": kept}, f"the hub does not grant {', '.join(sorted(refused))}: asking without"
    return None, f"the hub refused to make a token: {message}"


def record(model: dict, request: dict, user: str) -> dict:
    """What is kept of a token the hub made (its scopes as asked for: the successor asks for the same)."""
    return {"token": model["token"], "id": model.get("id"), "user": user, "expires_at": model.get("expires_at"),
            "scopes": request.get("scopes", model.get("scopes")), "lifetime": request.get("expires_in")}
