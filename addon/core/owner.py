"""Whose token is this, and what may it do? One answer, built once from the hub's model of the token's owner
(GET /hub/api/user: name, kind, groups, the token's expanded scopes), for the banner, autostart, `check`,
`servers`, `start`, `stop`, login and the renewal.

The scope forms the hub uses: unfiltered (`servers`), limited to a user (`!user=<name>`; bare `!user` is the
owner's own), to one server (`!server=<user>/<name>`, `<user>/` for the default one) or to a group's members
(`!group=<g>`); `inherit` (and `self`) stand for all the owner's own rights. JupyterHub 6 lists `start:servers`,
`delete:servers` and `read:servers` apart; `servers` (and `admin:servers`) grant all three, as on JupyterHub 5."""

from dataclasses import dataclass
from dataclasses import replace

from addon.core.errors import HubError
from addon.core.printable import has_controls
from addon.core.printable import printable

REACH = frozenset({"access:servers"})
START = frozenset({"start:servers", "servers", "admin:servers"})
STOP = frozenset({"delete:servers", "servers", "admin:servers"})
READ = frozenset({"read:servers", "servers", "admin:servers"})
SHARES = frozenset({"read:users:shares", "users:shares"})
MINT = frozenset({"tokens"})
OWN = ("access:servers", "servers", "read:users", "users:shares", "tokens")  # what `inherit` stands for, at least


@dataclass(frozen=True)
class TokenOwner:
    name: str
    kind: str = "user"  # or "service"
    scopes: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()  # the owner's groups, as far as the token may read them
    token_id: str | None = None
    expires_at: str | None = None  # the hub's timestamp; None: never, or not known (expiry_known)
    expiry_known: bool = False
    admin: bool = False  # a hub admin, or a token with admin scopes

    def covers(self, only: str, user: str, server: str | None) -> bool:
        """Whether a scope's filter (the part after '!') takes in `user`'s `server` (None: the user as such)."""
        kind, _, value = only.partition("=")
        if not only:
            return True
        if kind == "user":
            return (value or self.name) == user
        if kind == "server":
            return server is not None and value == f"{user}/{server}"
        if kind == "group":
            # Another user's groups are not the token's to read: the hub decides (a start is let try).
            return value in self.groups if user == self.name else True
        return False

    def grants(self, names: frozenset[str], user: str, server: str | None = None) -> bool:
        return any(scope.partition("!")[0] in names and self.covers(scope.partition("!")[2], user, server)
                   for scope in self.scopes)

    def may_reach(self, user: str, server: str) -> bool:
        return self.grants(REACH, user, server)

    def may_start(self, user: str, server: str) -> bool:
        return self.grants(START, user, server)

    def may_stop(self, user: str, server: str) -> bool:
        return self.grants(STOP, user, server)

    def may_read(self, user: str, server: str) -> bool:
        """May it read the server's state."""
        return self.grants(READ, user, server)

    def may_list_shares(self) -> bool:
        """May it list the servers other users shared with its owner."""
        return self.grants(SHARES, self.name)

    def may_mint(self) -> bool:
        """May it have the hub make (and revoke) tokens of its owner: login's renewal."""
        return self.grants(MINT, self.name)


def from_model(me: dict) -> TokenOwner:
    """The TokenOwner of the hub's answer to GET /hub/api/user. Raises HubError(0) for a name with control
    characters, which no JupyterHub user has: it would reach terminals, logs, URLs and token notes."""
    name = str(me.get("name") or "")
    if has_controls(name):
        raise HubError(0, f"the hub named the token's owner '{printable(name)}', with control characters: refused")
    scopes = frozenset(me.get("scopes") or ())
    if scopes & {"inherit", "self"}:
        scopes |= {f"{scope}!user={name}" for scope in OWN}
    admin = me.get("admin") is True or any(str(scope).startswith("admin") for scope in scopes)
    return TokenOwner(name=name, kind=str(me.get("kind") or "user"), scopes=scopes,
                      groups=frozenset(me.get("groups") or ()), token_id=me.get("token_id"), admin=admin)


async def whose_token(hub, expiry: bool = False) -> TokenOwner:
    """Ask the hub whose its token is (raises HubError); with `expiry` also when the token expires, when the
    token may read its own model (read:tokens)."""
    found = from_model(await hub.whoami())
    if not expiry or not found.token_id:
        return found
    try:
        model = await hub.token_model(found.name, found.token_id)
    except HubError:
        return found
    return replace(found, expires_at=model.get("expires_at"), expiry_known=True)
