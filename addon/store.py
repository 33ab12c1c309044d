"""What `./run.sh login` keeps: the hub's settings, the hub token and the bridge's own (local) token, as one typed
`Login`, in one JSON file only its owner can read. Only persistence here: no mitmproxy, no network.

The file: `$JUPYTERHUB_BRIDGE_HOME/login.json`, else `$XDG_CONFIG_HOME/jupyterhub-bridge/login.json`
(`~/.config/...`); its shape is `Login`'s, field for field. Like ssh, the bridge refuses a file or folder that is
not the user's own, a folder that is a symbolic link or that others may write to, and a file others can read.
"""

import dataclasses
import hashlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timezone
from pathlib import Path

from addon.core.errors import SettingError

try:
    import fcntl
except ImportError:  # Windows: no flock; the stored login is not expected to work there (README, Install)
    fcntl = None

FILE_NAME = "login.json"
LOCK_NAME = "login.lock"  # beside the file: whoever holds flock on it may read, change and write the login
LOG_IN_AGAIN = "run ./run.sh login."  # the fix for a stored token the hub no longer takes
# The option names login stores; the bridge takes them from the file when neither --set nor the environment
# gives them.
STORED_OPTIONS = ("jupyter_server_ip_or_name", "jupyter_server_port", "jupyter_server_name",
                  "jupyter_cluster_ca_cert", "jupyterhub_base_url", "jupyter_username", "jupyter_named_server",
                  "jupyter_server_options")


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
    """How `./run.sh login` verified the hub: the system trust store (ca_file None), or the CA file at this
    absolute path with this content."""
    ca_file: str | None = None
    sha256: str | None = None  # None only in a login file from before trust was stored: then the path alone

    def text(self) -> str:
        return self.ca_file or "the system trust store"


def trust_of(ca_file: str | None) -> Trust:
    """The trust to store for the CA file the login verified the hub with (None: the system store)."""
    return Trust(ca_file, file_sha256(ca_file)) if ca_file else Trust()


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

    def refusal(self, server_host: str, server_port: int, tls_name: str, ca_file: str | None) -> str | None:
        """Why the stored hub token must not go to this peer (None: it may, or there is none): it goes only to
        the hub, TLS name and trust the login verified. Raises SettingError when the CA file it trusted changed."""
        if not (self.hub_token and self.hub_token.token):
            return None
        kept, trust = self.settings, self.kept_trust()
        if (kept.get("jupyter_server_ip_or_name"), str(kept.get("jupyter_server_port"))) != (server_host,
                                                                                           str(server_port)):
            return f"it was made for {kept.get('jupyter_server_ip_or_name')}:{kept.get('jupyter_server_port')}"
        if kept.get("jupyter_server_name", tls_name) != tls_name:
            return (f"the TLS name {tls_name!r} (JUPYTER_SERVER_NAME) is not the one ./run.sh login verified "
                    f"({kept['jupyter_server_name']!r})")
        if trust.ca_file != ca_file:
            return (f"JUPYTER_CLUSTER_CA_CERT ({ca_file or 'the system trust store'}) is not what ./run.sh login "
                    f"verified the hub with ({trust.text()})")
        if ca_file and trust.sha256 and changed(ca_file, trust.sha256):
            raise SettingError(f"{ca_file}, the CA file ./run.sh login verified the hub with, has changed since "
                               "(its SHA-256 differs): if you trust the new file, run ./run.sh login to accept it.")
        return None

    def hub_token_for(self, server_host: str, server_port: int, tls_name: str, ca_file: str | None) -> HubToken | None:
        """The stored hub token, only for the hub, TLS name and trust it was made for (never sent to another
        peer); raises SettingError when the trusted CA file changed."""
        if not (self.hub_token and self.hub_token.token):
            return None
        return None if self.refusal(server_host, server_port, tls_name, ca_file) else self.hub_token

    def holds(self, hub_token: str | None) -> HubToken | None:
        """The stored record of this hub token, when it is the stored one."""
        return self.hub_token if hub_token and self.hub_token and self.hub_token.token == hub_token else None


def changed(ca_file: str, sha256: str) -> bool:
    try:
        return file_sha256(ca_file) != sha256
    except OSError:
        return True


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


def folder(environ=os.environ) -> Path | None:
    """None for an environment without a home (as the tests give): then nothing is stored, rather than the
    login of whoever runs them."""
    if home := environ.get("JUPYTERHUB_BRIDGE_HOME", "").strip():
        return Path(home).expanduser()
    if config := environ.get("XDG_CONFIG_HOME", "").strip():
        return Path(config).expanduser() / "jupyterhub-bridge"
    if home := environ.get("HOME", "").strip():
        return Path(home) / ".config" / "jupyterhub-bridge"
    return None


def path(environ=os.environ) -> Path | None:
    return None if (where := folder(environ)) is None else where / FILE_NAME


def check_folder(where: Path, private: bool = True) -> None:
    """Refuse a folder that is a symbolic link, is not the user's, or that others may write to (they could swap
    the file); the message says the command that fixes it."""
    try:
        found = os.lstat(where)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(found.st_mode) or not stat.S_ISDIR(found.st_mode):
        raise SettingError(f"{where}, the folder of your login file, is a symbolic link or not a folder: run "
                           f"'rm {where}', then ./run.sh login.")
    if found.st_uid != os.getuid():
        raise SettingError(f"{where}, the folder of your login file, belongs to another user (uid {found.st_uid}): "
                           f"run 'sudo chown {os.getuid()} {where}', or set JUPYTERHUB_BRIDGE_HOME to a folder "
                           "of yours.")
    if private and found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise SettingError(f"{where}, the folder of your login file, is writable by others (mode "
                           f"{stat.filemode(found.st_mode)}): run 'chmod 700 {where}'.")


def check_file(file: Path, found: os.stat_result, private: bool = True) -> None:
    if found.st_uid != os.getuid():
        raise SettingError(f"{file} belongs to another user (uid {found.st_uid}), not to you: run 'rm {file}' "
                           "(as root if need be), then ./run.sh login.")
    if private and found.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingError(f"{file} holds your hub token and others can read it (mode "
                           f"{stat.filemode(found.st_mode)}): run 'chmod 600 {file}', or './run.sh logout' and "
                           "log in again.")


def load(environ=os.environ, private: bool = True) -> Login:
    """The stored login, Login() when there is none. Raises SettingError (with the fix) for a file or folder
    that is not the user's own, a file others can read or a folder others can write to (unless private=False:
    logout revokes its token), or one that is not the bridge's JSON."""
    file = path(environ)
    if file is None:
        return Login()
    check_folder(file.parent, private)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return Login()
    except OSError as e:
        raise SettingError(f"{file}: cannot read it ({e.strerror}).") from e
    with os.fdopen(fd) as f:
        check_file(file, os.fstat(f.fileno()), private)
        text = f.read()
    try:
        return from_json(json.loads(text))
    except (ValueError, TypeError, KeyError):
        raise SettingError(f"{file} is not the bridge's login file: run './run.sh logout', then "
                           "'./run.sh login'.") from None


def save(login: Login, environ=os.environ) -> Path:
    """Write the login at once (a reader sees the old file or the new one, never half of one): a 0600 temporary
    file in a 0700 folder, then os.replace."""
    target = path(environ)
    if target is None:
        raise SettingError("HOME is not set: set it, or JUPYTERHUB_BRIDGE_HOME, to the folder for the login file.")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_folder(target.parent, private=False)  # a folder of the user's own, not a link: then made private
    os.chmod(target.parent, 0o700)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".login-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(to_json(login), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


def stamp(environ=os.environ) -> tuple[int, int, int] | None:
    """What tells one version of the file from the next (save() makes a new file each time): compared every few
    seconds by a running bridge, a stat rather than a read. None when there is no file."""
    file = path(environ)
    try:
        found = os.stat(file) if file else None
    except OSError:
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size) if found else None


def open_lock(environ=os.environ) -> int:
    """The login's lock file, opened (0600, in the login's private folder); closing it releases the lock. Two
    bridges on one login take it in turn to re-read the file, renew the token and write its successor, so that
    neither revokes the token the other has just stored."""
    target = path(environ)
    if target is None:
        raise SettingError("HOME is not set: set it, or JUPYTERHUB_BRIDGE_HOME, to the folder for the login file.")
    check_folder(target.parent)
    return os.open(target.parent / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)


def take_lock(fd: int) -> bool:
    """Try once to take the lock of open_lock (never waits: the caller decides how long to try)."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def delete(environ=os.environ) -> bool:
    """Remove the stored login; False when there was none."""
    file = path(environ)
    if file is None:
        return False
    try:
        file.unlink()
    except FileNotFoundError:
        return False
    return True


def origin_lines(login: Login, environ, overrides: dict[str, str], env_of: dict[str, str], hub_token: str | None,
                 local_token: str) -> list[str]:
    """For the banner: the settings that came from --set or from the stored login rather than the environment,
    and when the stored hub token expires."""
    lines = [f"  set with --set: {', '.join(sorted(overrides))}"] if overrides else []
    taken = [env_of[name] for name in login.values() if name not in overrides and env_of[name] not in environ]
    if record := login.holds(hub_token):
        taken.append(f"the hub token ({record.expiry_text()})")
    if local_token and local_token == login.local_token:
        taken.append("the bridge's token")
    if taken:
        lines.append(f"  from {path(environ)} (./run.sh login): {', '.join(taken)}")
    return lines


def refused_token_advice(record: HubToken | None, now: datetime | None = None) -> str:
    """What to tell a user whose server refused the hub token, when it is the one `./run.sh login` stored
    (`record`); empty otherwise."""
    if record is None:
        return ""
    expires = parse_time(record.expires_at)
    if expires and expires <= (now or datetime.now(timezone.utc)):
        return f"Your hub token expired on {expires:%Y-%m-%d %H:%M} UTC: {LOG_IN_AGAIN}"
    return f"Your hub token was revoked (or lost its rights) on the hub: {LOG_IN_AGAIN}"
