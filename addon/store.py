"""What `./run.sh login` keeps: the hub's settings, the hub token and the bridge's own (local) token, in one
JSON file only its owner can read. Pure: no mitmproxy, no network.

The file: `$JUPYTERHUB_BRIDGE_HOME/login.json`, else `$XDG_CONFIG_HOME/jupyterhub-bridge/login.json`
(`~/.config/...`). Its shape:
  {"settings": {<option name>: <value as a string>, ...},
   "hub_token": {"token", "id", "expires_at", "scopes", "lifetime", "user"},
   "local_token": "<the token clients present to the bridge>"}
"""

import json
import os
import stat
import tempfile
from datetime import datetime
from datetime import timezone
from pathlib import Path

from addon.core.errors import SettingError

FILE_NAME = "login.json"
LOG_IN_AGAIN = "run ./run.sh login."  # the fix for a stored token the hub no longer takes
# The option names login stores; the bridge takes them from the file when neither --set nor the environment
# gives them.
STORED_OPTIONS = ("jupyter_server_ip_or_name", "jupyter_server_port", "jupyter_server_name",
                  "jupyter_cluster_ca_cert", "jupyterhub_base_url", "jupyter_username", "jupyter_named_server",
                  "jupyter_server_options")


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


def load(environ=os.environ, private: bool = True) -> dict:
    """The stored login, {} when there is none. Raises ValueError (with the fix) for a file others can read
    (unless private=False: logout revokes its token) or one that is not the bridge's JSON."""
    file = path(environ)
    if file is None:
        return {}
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise SettingError(f"{file}: cannot read it ({e.strerror}).") from e
    with os.fdopen(fd) as f:
        mode = os.fstat(f.fileno()).st_mode
        if private and mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SettingError(f"{file} holds your hub token and others can read it (mode {stat.filemode(mode)}): "
                             f"run 'chmod 600 {file}', or './run.sh logout' and log in again.")
        text = f.read()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SettingError(f"{file} is not the bridge's login file: run './run.sh logout', then './run.sh login'.")
    return data


def save(data: dict, environ=os.environ) -> Path:
    """Write the login at once (a reader sees the old file or the new one, never half of one): a 0600 temporary
    file in a 0700 folder, then os.replace."""
    target = path(environ)
    if target is None:
        raise SettingError("HOME is not set: set it, or JUPYTERHUB_BRIDGE_HOME, to the folder for the login file.")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target.parent, 0o700)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".login-", suffix=".tmp")  # created 0600
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return target


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


def values(environ=os.environ) -> dict[str, str]:
    """The stored option values, by option name (the settings the login found; no secrets)."""
    stored = load(environ).get("settings", {})
    return {name: str(stored[name]) for name in STORED_OPTIONS if stored.get(name) is not None}


def hub_token(data: dict, server_host: str, server_port: int) -> str | None:
    """The stored hub token, only for the hub it was made for (never sent to another hub)."""
    stored = data.get("settings", {})
    token = data.get("hub_token", {}).get("token")
    same_hub = (stored.get("jupyter_server_ip_or_name"), str(stored.get("jupyter_server_port"))) == \
        (server_host, str(server_port))
    return token if token and same_hub else None


def local_token(environ=os.environ) -> str | None:
    return load(environ).get("local_token") or None


def parse_time(value: str | None) -> datetime | None:
    """A JupyterHub timestamp ('2026-12-29T13:00:00.123456Z') as an aware datetime; None for 'never'."""
    if not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def expiry_text(data: dict, now: datetime | None = None) -> str:
    """When the stored hub token expires (or expired), for the banner, login, logout and the renewal."""
    expires = parse_time(data.get("hub_token", {}).get("expires_at"))
    if expires is None:
        return "never expires"
    past = expires <= (now or datetime.now(timezone.utc))
    return f"{'expired on' if past else 'expires'} {expires:%Y-%m-%d %H:%M} UTC"


def origin_lines(environ, overrides: dict[str, str], env_of: dict[str, str], hub_token: str | None,
                 local_token: str) -> list[str]:
    """For the banner: the settings that came from --set or from the stored login rather than the environment,
    and when the stored hub token expires."""
    lines = [f"  set with --set: {', '.join(sorted(overrides))}"] if overrides else []
    data = load(environ)
    taken = [env_of[name] for name in values(environ) if name not in overrides and env_of[name] not in environ]
    if hub_token and hub_token == data.get("hub_token", {}).get("token"):
        taken.append(f"the hub token ({expiry_text(data)})")
    if local_token and local_token == data.get("local_token"):
        taken.append("the bridge's token")
    if taken:
        lines.append(f"  from {path(environ)} (./run.sh login): {', '.join(taken)}")
    return lines


def refused_token_advice(hub_token: str | None, environ=os.environ, now: datetime | None = None) -> str:
    """What to tell a user whose server refused the hub token, when it is the one `./run.sh login` stored;
    empty otherwise."""
    try:
        stored = load(environ).get("hub_token", {})
    except ValueError:
        return ""
    if not hub_token or stored.get("token") != hub_token:
        return ""
    expires = parse_time(stored.get("expires_at"))
    if expires and expires <= (now or datetime.now(timezone.utc)):
        return f"Your hub token expired on {expires:%Y-%m-%d %H:%M} UTC: {LOG_IN_AGAIN}"
    return f"Your hub token was revoked (or lost its rights) on the hub: {LOG_IN_AGAIN}"
