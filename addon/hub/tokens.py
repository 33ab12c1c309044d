"""The token requests of `./run.sh login`, of the renewal and of the access token, and what is kept of a token
the hub made; `access_token` has the hub make the access token (the rest is pure)."""

import os
import re
import socket

from addon.core import hub_versions
from addon.core import login_record
from addon.core.invocation import RUN
from addon.core.errors import BridgeError
from addon.hub import api as hub
from addon.core import owner

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


def wanted_scopes(user: str, hub_version: str = "") -> list[str]:
    """The scopes to ask for, those this hub's version defines (all when it does not say its version)."""
    return [f"{scope}!user={user}" for scope, _ in SCOPES if hub_versions.defines(hub_version, scope)]


def undefined_note(hub_version: str) -> str | None:
    """The one line that says which scopes the bridge does not ask this hub for, or None."""
    missing = [scope for scope, _ in SCOPES if not hub_versions.defines(hub_version, scope)]
    if not missing:
        return None
    return f"JupyterHub {hub_version} does not define {', '.join(missing)}: asking without"


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


MAX_MINT_TRIES = 3
WRONG_PASSWORD = "password"  # make_own's why when the hub refused the name and password it was given


async def make_own(h: hub.Hub, user: str, lifetime: int, auth: dict | None = None,
                   say=lambda note: None) -> tuple[login_record.HubToken | None, str]:
    """The bridge's own token for `user`, with the fewest scopes, narrowed after a refusal (each step told to
    `say`); made with `h`'s token, or with `auth` (the user's name and password). (None, why) when the hub made
    none; why is WRONG_PASSWORD when it refused `auth`."""
    version = await h.version()
    if note := undefined_note(version):
        say(note)
    request = token_request(f"jupyterhub-bridge on {socket.gethostname()}", lifetime, wanted_scopes(user, version))
    for _ in range(MAX_MINT_TRIES):
        answer = await h.mint_token(user, {**request, **({"auth": auth} if auth else {})})
        if answer.status == 201:
            return record(answer.json(), request, user), ""
        if answer.status == 403 and auth:
            return None, WRONG_PASSWORD
        request, why = narrowed(request, answer)
        if request is None:
            return None, why
        say(why)
    return None, "the hub kept refusing the token request"


def record(model: dict, request: dict, user: str) -> login_record.HubToken:
    """What is kept of a token the hub made (its scopes as asked for: the successor asks for the same)."""
    scopes = request.get("scopes", model.get("scopes"))
    return login_record.HubToken(token=model["token"], id=model.get("id"), user=user, expires_at=model.get("expires_at"),
                          scopes=tuple(scopes) if scopes else None, lifetime=request.get("expires_in"))


def access_scope(user: str, server: str) -> str:
    """The one scope of the access token: reach this server (`<user>/` is the default one), nothing else."""
    return f"access:servers!server={user}/{server}"


def access_request(user: str, server: str, lifetime: int, why: str = "", made_by: str | None = None) -> dict:
    # The note says which process made it, with which hub token (its id): a bridge that ended without revoking it
    # (killed, a crash) leaves it behind, and the next start, or the login's `logout`, finds it by this note.
    by = f", by token {made_by}" if made_by else ""
    note = f"jupyterhub-bridge on {socket.gethostname()} (pid {os.getpid()}{by}): access to {user}/{server}{why}"
    return token_request(note, lifetime, [access_scope(user, server)])


ACCESS_NOTE = re.compile(r"jupyterhub-bridge on (?P<host>.+?) \(pid (?P<pid>[0-9]+)(?:, by token (?P<by>[^)]+))?\): "
                         r"access to ")


def access_leftover(note: str, host: str, alive, made_by: str | None = None) -> bool:
    """Is a token with this note an access token a bridge on `host` made and left: its process is not `alive(pid)`;
    or (made_by, for logout) one made with that hub token, in use or not. Another machine's is never touched."""
    found = ACCESS_NOTE.match(note or "")
    if not found or found["host"] != host:
        return False
    if made_by:
        return found["by"] == made_by
    return int(found["pid"]) != os.getpid() and not alive(int(found["pid"]))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


async def revoke_leftovers(h: hub.Hub, user: str, made_by: str | None = None) -> tuple[int, str]:
    """Revoke `user`'s access tokens that bridges on this machine made and no longer use (made_by, for logout: all
    those made with that hub token); (how many were revoked, what went wrong or ''). Needs read:tokens and tokens
    (a login's token has them)."""
    answer = await h.api("GET", hub.token_path(user))
    if answer.status != 200:
        return 0, hub.hub_message(answer.status, answer.body)
    host, revoked, trouble = socket.gethostname(), 0, ""
    for model in answer.json().get("api_tokens") or []:
        if isinstance(model, dict) and access_leftover(str(model.get("note") or ""), host, process_alive, made_by):
            gone = await h.revoke_token(user, str(model.get("id") or ""))
            if gone.status in (204, 404):
                revoked += gone.status == 204
            else:
                trouble = hub.hub_message(gone.status, gone.body)
    return revoked, trouble


def cannot_send(me: owner.TokenOwner, user: str) -> str | None:
    """Why a hub token that may not make the access token must not go to `user`'s server either, or None (a
    token without `tokens`, sent to its owner's own server, as a server would see it anyway)."""
    if me.may_mint() or me.name == user:
        return None
    return (f"the hub token of '{me.name}' may not make tokens (scope tokens!user={me.name}), so the bridge would "
            f"have to send it itself to the server of '{user}', whose code can read it")


async def access_token(h: hub.Hub, user: str, server: str, lifetime: int, why: str = "") -> login_record.HubToken:
    """The token to send to `user`'s `server`: made by the hub with the hub token (one scope, `lifetime`
    seconds), or the hub token itself when it may not make tokens and the server is its owner's (its record then
    has no id: nothing to renew nor revoke). Raises HubError, or BridgeError with what to do."""
    me = await owner.whose_token(h)
    if why_not := cannot_send(me, user):
        raise BridgeError(f"{why_not}.", f"Run {RUN} login, or give a hub token with the scope tokens.")
    if not me.may_mint():
        return login_record.HubToken(token=h.settings.hub_token or "", user=me.name)
    request = access_request(user, server, lifetime, why, me.token_id)
    answer = await h.mint_token(me.name, request)
    if answer.status != 201:
        raise BridgeError(f"the hub did not make an access token for the server: "
                          f"{hub.hub_message(answer.status, answer.body)}.", f"Run {RUN} check.")
    return record(answer.json(), request, me.name)


async def revoke_access(h: hub.Hub, token: login_record.HubToken) -> str | None:
    """Revoke a made access token; what went wrong, or None."""
    if token.id is None:
        return None  # the hub token itself: not ours to revoke
    try:
        answer = await h.revoke_token(token.user, token.id)
    except hub.HubError as e:
        return e.message
    return None if answer.status in (204, 404) else hub.hub_message(answer.status, answer.body)
