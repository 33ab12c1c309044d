"""The stored login as typed records: the hub token the hub made, the trust the login verified the hub with, and
the `Login` that holds them with the settings and the local token. Pure but for reading a CA file's hash; the file
that keeps them is addon/store.py."""

import dataclasses
import hashlib
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timezone

from addon.core import trust as hub_trust
from addon.core.errors import SettingError
from addon.core.invocation import RUN

# The option names login stores; the bridge takes them from the file when neither --set nor the environment
# gives them.
STORED_OPTIONS = ("jupyter_server_ip_or_name", "jupyter_server_port", "jupyter_server_name",
                  "jupyter_cluster_ca_cert", "jupyterhub_base_url", "jupyter_username", "jupyter_named_server",
                  "jupyter_server_options", "jupyter_proxy_port")
LOG_IN_AGAIN = f"run {RUN} login."  # the fix for a stored token the hub no longer takes


def parse_time(value: str | None) -> datetime | None:
    """A JupyterHub timestamp ('2026-12-29T13:00:00.123456Z') as an aware datetime; None for 'never'."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class HubToken:
    """A hub token the hub made (or the user pasted), as kept: its scopes as asked for, so that the successor
    asks for the same, and its lifetime in seconds (None: unknown, not renewed)."""
    token: str = field(repr=False)
    id: str | None = None
    user: str = ""
    expires_at: str | None = None  # the hub's timestamp; None: never
    scopes: tuple[str, ...] | None = None
    lifetime: int | None = None

    def expiry_text(self, now: datetime | None = None) -> str:
        """When it expires (or expired), for the banner, login, logout and the renewal."""
        expires = parse_time(self.expires_at)
        if expires is None:
            return "never expires"
        past = expires <= (now or datetime.now(timezone.utc))
        return f"{'expired on' if past else 'expires'} {expires:%Y-%m-%d %H:%M} UTC"


def file_sha256(file: str) -> str:
    """The SHA-256 of a file's content, in hex; raises OSError."""
    with open(file, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@dataclass(frozen=True)
class Trust:
    """How `./run.sh login` verified the hub: the CA file at this absolute path with this content; or a
    certificate the user confirmed on first use (its PEM and fingerprint, as ssh's known_hosts); or the system
    trust store, pinned to the fingerprint of its CA that verified the hub (none in a login from before pins)."""
    ca_file: str | None = None
    sha256: str | None = None  # None only in a login file from before trust was stored: then the path alone
    pin: str | None = None  # 'sha256:<hex>' of the confirmed certificate's (or the system CA's) public key
    certificate: str | None = None  # PEM: the certificate confirmed on first use

    def text(self) -> str:
        if self.ca_file:
            return self.ca_file
        if self.certificate:
            return f"the certificate you trusted ({self.pin})"
        return f"{hub_trust.SYSTEM} (its CA {self.pin})" if self.pin else hub_trust.SYSTEM


@dataclass(frozen=True)
class Login:
    """The stored login; `Login()` when there is none."""
    settings: dict[str, str] = field(default_factory=dict)  # option name -> value, STORED_OPTIONS only
    hub_token: HubToken | None = None
    local_token: str | None = field(default=None, repr=False)  # the token clients present to the bridge
    trust: Trust | None = None  # None: a login file from before trust was stored (its CA setting says it)

    def kept_trust(self) -> Trust:
        return self.trust or Trust(self.settings.get("jupyter_cluster_ca_cert") or None)

    def values(self) -> dict[str, str]:
        """The stored option values, by option name (the settings the login found; no secrets). The CA is the
        stored trust, empty for the system store: a ./my_sslca.cert in the current folder is never taken for it."""
        kept = {**self.settings, "jupyter_cluster_ca_cert": self.kept_trust().ca_file or ""} if self.settings else {}
        return {name: str(kept[name]) for name in STORED_OPTIONS if kept.get(name) is not None}

    def same_peer(self, server_host: str, server_port: int, tls_name: str) -> str | None:
        """Why this address and TLS name are not the login's (None: they are)."""
        kept = self.settings
        if (kept.get("jupyter_server_ip_or_name"), str(kept.get("jupyter_server_port"))) != (server_host,
                                                                                           str(server_port)):
            return f"it was made for {kept.get('jupyter_server_ip_or_name')}:{kept.get('jupyter_server_port')}"
        if kept.get("jupyter_server_name", tls_name) != tls_name:
            return (f"the TLS name {tls_name!r} (JUPYTER_SERVER_NAME) is not the one {RUN} login verified "
                    f"({kept['jupyter_server_name']!r})")
        return None

    def refusal(self, server_host: str, server_port: int, tls_name: str, ca_file: str | None, base_url: str,
                ca_sha256: str | None = None) -> str | None:
        """Why the stored hub token must not go to this peer (None: it may, or there is none): it goes only to
        the hub, base URL, TLS name and trust the login verified (another base URL on the same host can be a
        user's server: field note 49). Raises SettingError when the CA file it trusted changed (`ca_sha256`: of
        the file's content as the caller loaded it, once, at start; else the file is read)."""
        if not (self.hub_token and self.hub_token.token):
            return None
        trust = self.kept_trust()
        if why := self.same_peer(server_host, server_port, tls_name):
            return why
        if self.settings.get("jupyterhub_base_url", "/") != base_url:
            return (f"the base URL {base_url} (JUPYTERHUB_BASE_URL) is not the one {RUN} login verified "
                    f"({self.settings.get('jupyterhub_base_url', '/')})")
        if trust.ca_file != ca_file:
            return (f"JUPYTER_CLUSTER_CA_CERT ({ca_file or hub_trust.SYSTEM}) is not what {RUN} login "
                    f"verified the hub with ({trust.text()})")
        if ca_file and trust.sha256 and (ca_sha256 or sha256_or_none(ca_file)) != trust.sha256:
            raise SettingError(f"{ca_file}, the CA file {RUN} login verified the hub with, has changed since "
                               f"(its SHA-256 differs): if you trust the new file, run {RUN} login to accept it.")
        return None

    def hub_token_for(self, server_host: str, server_port: int, tls_name: str, ca_file: str | None, base_url: str,
                      ca_sha256: str | None = None) -> HubToken | None:
        """The stored hub token, only for the hub, base URL, TLS name and trust it was made for (never sent to
        another peer); raises SettingError when the trusted CA file changed."""
        if not (self.hub_token and self.hub_token.token):
            return None
        refused = self.refusal(server_host, server_port, tls_name, ca_file, base_url, ca_sha256)
        return None if refused else self.hub_token

    def anchors(self, server_host: str, server_port: int, tls_name: str, ca_file: str | None,
                ca_content: bytes | None) -> hub_trust.Anchors:
        """What verifies the hub in this run, loaded once: the CA file's content as read (and, when the login
        trusted that file, unchanged since); else, for the login's own hub, the certificate confirmed on first
        use or the system store's CA pinned at login; else the system store. Raises SettingError when the pin
        no longer holds."""
        if ca_file:  # a trusted file that changed stops first: that is the news
            self.refusal(server_host, server_port, tls_name, ca_file, self.settings.get("jupyterhub_base_url", "/"),
                         hashlib.sha256(ca_content or b"").hexdigest())
            return hub_trust.from_ca_file(ca_file, ca_content or b"")
        trust = self.kept_trust()
        if not trust.pin or self.same_peer(server_host, server_port, tls_name):
            return hub_trust.Anchors()
        if trust.certificate:
            return hub_trust.from_pinned(trust.certificate, trust.pin, f"{server_host}:{server_port}")
        return hub_trust.from_system_store(trust.pin, f"{server_host}:{server_port}")

    def holds(self, hub_token: str | None) -> HubToken | None:
        """The stored record of this hub token, when it is the stored one."""
        return self.hub_token if hub_token and self.hub_token and self.hub_token.token == hub_token else None


def sha256_or_none(ca_file: str) -> str | None:
    try:
        return file_sha256(ca_file)
    except OSError:
        return None


def to_json(login: Login) -> dict:
    return dataclasses.asdict(login)


def from_json(data: object) -> Login:
    """A Login from the file's JSON; raises TypeError (or ValueError) for anything else."""
    if not isinstance(data, dict) or not set(data) <= {f.name for f in dataclasses.fields(Login)}:
        raise TypeError("not a login")
    token = data.get("hub_token")
    if token is not None:
        token = HubToken(**{**token, "scopes": tuple(token["scopes"]) if token.get("scopes") else None})
    trust = Trust(**data["trust"]) if data.get("trust") is not None else None
    return Login(settings=dict(data.get("settings") or {}), hub_token=token, local_token=data.get("local_token"),
                 trust=trust)


def refused_token_advice(record: HubToken | None, now: datetime | None = None) -> str:
    """What to tell a user whose server refused the hub token, when it is the one `./run.sh login` stored
    (`record`); empty otherwise."""
    if record is None:
        return ""
    expires = parse_time(record.expires_at)
    if expires and expires <= (now or datetime.now(timezone.utc)):
        return f"Your hub token expired on {expires:%Y-%m-%d %H:%M} UTC: {LOG_IN_AGAIN}"
    return f"Your hub token was revoked (or lost its rights) on the hub: {LOG_IN_AGAIN}"
