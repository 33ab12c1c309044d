"""The token requests of `./run.sh login` and of the renewal, and what is kept of a token the hub made. Pure."""

import re

from addon import store
from addon.hub import api as hub

# The scopes login asks for, each limited to the user's own account (`!user=<name>`), and what needs it: the
# fewest that let every subcommand work on what login stored. `servers` is start:, delete: and read:servers
# (JupyterHub 6 lists them apart; 5 grants them with `servers`). The renewal asks for the same again.
SCOPES = (
    ("access:servers", "the bridge and `check`: reach your servers (without it the token is of no use)"),
    ("servers", "`start`, `stop`, `servers`, `check` and the bridge's autostart: start, stop and see your servers"),
    ("read:users", "`servers` and `check`: read your own user model (the list of your servers)"),
    ("read:users:shares", "`servers`: list the servers other users shared with you"),
    ("tokens", "the renewal: make the successor and revoke the old token; `check`: when it expires; `logout`"),
)
ACCESS = SCOPES[0][0]  # the one scope a token must keep


def wanted_scopes(user: str) -> list[str]:
    return [f"{scope}!user={user}" for scope, _ in SCOPES]


def token_request(note: str, expires_in: int | None, scopes: list[str] | None) -> dict:
    """The body of a token request (POST /users/<user>/tokens)."""
    return {"note": note, "expires_in": expires_in, "scopes": scopes}


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
    if refused and kept and kept[0].startswith(ACCESS):
        return {**request, "scopes": kept}, f"the hub does not grant {', '.join(sorted(refused))}: asking without"
    return None, f"the hub refused to make a token: {message}"


def record(model: dict, request: dict, user: str) -> store.HubToken:
    """What is kept of a token the hub made (its scopes as asked for: the successor asks for the same)."""
    scopes = request.get("scopes", model.get("scopes"))
    return store.HubToken(token=model["token"], id=model.get("id"), user=user, expires_at=model.get("expires_at"),
                          scopes=tuple(scopes) if scopes else None, lifetime=request.get("expires_in"))
