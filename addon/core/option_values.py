"""Raw option text to typed values: each bad value is refused with one message that names its environment
variable and says what to write instead. `settings.resolve` reads the options through these."""

import os
import re
import stat
from urllib.parse import unquote

from addon.core.errors import SettingError
from addon.core.options import DEFAULT_CA
from addon.core.options import ENV_OF


def port(values: dict[str, str], name: str) -> int:
    raw = values[name].strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SettingError(f"{ENV_OF[name]}={raw!r} is not a port: use a number from 1 to 65535.")
    return int(raw)


def required(values: dict[str, str], name: str, what: str) -> str:
    value = values[name].strip()
    if not value:
        raise SettingError(f"{ENV_OF[name]} is not set: set it to {what}.")
    return value


def ca_file(raw: str) -> str | None:
    """The CA file's absolute path; None for the system trust store (empty, as a system-store login stores it,
    or the default file absent)."""
    return ca_file_content(raw)[0]


def ca_file_content(raw: str) -> tuple[str | None, bytes | None]:
    """The CA file's absolute path and its content, read once: what is checked is what is trusted. (None, None)
    for the system trust store."""
    if not raw.strip():
        return None, None
    path = os.path.abspath(os.path.expanduser(raw.strip()))
    if raw.strip() == DEFAULT_CA and not os.path.exists(path):
        return None, None
    name = f"JUPYTER_CLUSTER_CA_CERT={raw!r}"
    if not os.path.isfile(path):
        raise SettingError(f"{name}: no such file. Point it at the PEM file of your cluster's CA.")
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise SettingError(f"{name}: cannot read it ({e.strerror}). Check its permissions.") from e
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise SettingError(f"{name}: not a PEM certificate (no 'BEGIN CERTIFICATE' line). "
                         "Export the CA certificate in PEM format.")
    return path, pem


def flag(values: dict[str, str], name: str) -> bool:
    raw = values[name].strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise SettingError(f"{ENV_OF[name]}={values[name]!r} is not a switch: use true or false.")
    return raw in ("true", "1", "yes", "on")


def seconds(values: dict[str, str], name: str) -> float:
    raw = values[name].strip()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise SettingError(f"{ENV_OF[name]}={raw!r} is not a number of seconds: use a number above 0, e.g. 300.")
    return seconds


SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}  # 1024-based, as mitmproxy reads sizes


def size(values: dict[str, str], name: str) -> int:
    """Bytes, from a number with an optional k, m or g: mitmproxy gets bytes (mitmweb shows "1m" as NaN)."""
    found = re.fullmatch(r"([0-9]+)([kmg]?)b?", values[name].strip().lower())
    if not found or int(found[1]) == 0:
        raise SettingError(f"{ENV_OF[name]}={values[name]!r} is not a size: use bytes, or a number with k, m or g, "
                         "e.g. 512k, 1m or 20m.")
    return int(found[1]) * SIZE_UNITS[found[2]]


def count(values: dict[str, str], name: str) -> int:
    """A whole number of at least 1."""
    raw = values[name]
    if not raw.strip().isdigit() or int(raw) < 1:
        raise SettingError(f"{ENV_OF[name]}={raw!r} is not a number of at least 1.")
    return int(raw)


# Path segments under which JupyterHub's proxy routes to users' servers and to services, whose code their owners
# control (field note 49): a base URL with one of them is inside such a server, which would receive the password
# and the hub token. `hub` is the hub's own folder: as the base URL's last segment it can be a hub's prefix
# (/hub/hub/api), before it the rest is a page of the hub.
RESERVED_SEGMENTS = ("user", "users", "services")


def base_url(raw: str) -> str:
    parts = [p for p in raw.strip().split("/") if p]
    if any(unquote(p) in (".", "..") for p in parts):
        raise SettingError(f"JUPYTERHUB_BASE_URL={raw!r} must not contain '.' or '..' segments.")
    for i, part in enumerate(parts):
        name = unquote(part).lower()  # as the proxy may read it: %75ser, User
        if name in RESERVED_SEGMENTS or (name == "hub" and i < len(parts) - 1):
            hub = "/" + "".join(f"{p}/" for p in parts[:i])
            where = "the hub's own pages" if name == "hub" else "users' servers and services, whose owners see " \
                                                                "what is sent there"
            raise SettingError(f"JUPYTERHUB_BASE_URL={raw!r} is inside /{part}/, where JupyterHub keeps {where}, not "
                               f"the hub: use the hub's own URL, https://<your hub>{hub} (base URL {hub}).")
    return "/" + "".join(f"{p}/" for p in parts)


def private_file(raw: str, name: str) -> str:
    """The stripped text of the file `raw` names (a secret: a token, a client secret), refused when others can
    read it; `name` is the setting that names it, for the message."""
    where = f"{name}={raw!r}"
    try:
        path = os.path.expanduser(raw)
        if (mode := os.stat(path).st_mode) & (stat.S_IRWXG | stat.S_IRWXO):
            raise SettingError(f"{where}: others can read it (mode {stat.filemode(mode)}):", f"run 'chmod 600 {raw}'.")
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise SettingError(f"{where}: cannot read it ({e.strerror}).") from e
