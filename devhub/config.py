"""The settings.json that devhub writes into its work directory, next to a copy of the static
jupyterhub_config.py that reads it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from devhub import ADMIN_SERVICE

STATIC_CONFIG = Path(__file__).resolve().with_name("jupyterhub_config.py")
# --record-auth: the single-user servers' jupyter_server_config.py (in the folder JUPYTER_CONFIG_PATH names).
RECORD_AUTH_CONFIG = Path(__file__).resolve().with_name("record_auth_config.py")
RECORD_AUTH_DIR = "auth-records"

# Scopes of the devhub-admin service: manage users, their servers and their tokens.
ADMIN_SCOPES = [
    "admin:users", "admin:servers", "admin:auth_state", "tokens", "list:users", "read:users", "users",
    "servers", "access:servers", "proxy", "read:hub", "admin:services",
]
# Profiles a spawn may ask for in its user options ({"profile": ...}); any other is refused with 400.
PROFILES = ["small", "gpu-small"]
# --oauth-client: what a bridge login may do with the OAuth token (addon/hub/tokens.py SCOPES; minting its own
# tokens needs `tokens`), each on the signed-in user's own account. The token gets these ∩ requested ∩ the user's.
OAUTH_ALLOWED_SCOPES = ["access:servers!user", "servers!user", "read:users!user", "read:users:shares!user",
                        "tokens!user"]


def oauth_client(name: str | None, port: int, require_pkce: bool) -> dict | None:
    """The OAuth client service of --oauth-client NAME (None without): its secret is the service's API token."""
    if not name:
        return None
    return {"name": name, "client_id": f"service-{name}", "client_secret": secrets.token_hex(32),
            "redirect_uri": f"http://127.0.0.1:{port}/oauth_callback", "allowed_scopes": OAUTH_ALLOWED_SCOPES,
            "require_pkce": require_pkce}


def missing_features(version: str, args) -> str | None:
    """Why this hub's version cannot run with these options (sharing came in 5.0, oauth_require_pkce in 6.0)."""
    major = int(version.split(".", 1)[0])
    if args.sharing and major < 5:
        return f"--sharing: JupyterHub {version} has no sharing (5.0 and later)"
    if args.oauth_require_pkce and major < 6:
        return f"--oauth-require-pkce: JupyterHub {version} cannot require PKCE (6.0 and later)"
    return None


def auth_record(workdir: Path, user: str) -> Path:
    """Where --record-auth's servers of ``user`` append what they received."""
    return workdir / RECORD_AUTH_DIR / f"{user}.jsonl"


def hub_settings(*, workdir: Path, ports: dict[str, int], base_url: str, commands: dict[str, str],
                 certs: dict[str, Path], admin_token: str, password: str | None, options: dict) -> dict:
    """The JSON settings of jupyterhub_config.py. ``ports``: port, hub_port, proxy_api_port;
    ``commands``: chp_command, singleuser_command, venv_bin; ``options``: authenticator, users,
    iopub_data_rate_limit, spawn_fail, spawn_reject, spawn_delay, sharing, record_auth (from the command line) and
    oauth_client (``oauth_client()``)."""
    return {
        "workdir": str(workdir), **ports, "base_url": base_url, **commands,
        "cert_file": str(certs["cert_file"]), "key_file": str(certs["key_file"]),
        "admin_service": ADMIN_SERVICE, "admin_token": admin_token, "admin_scopes": ADMIN_SCOPES,
        "password": password, "profiles": PROFILES, "record_auth_dir": str(workdir / RECORD_AUTH_DIR), **options,
    }


def write_config(workdir: Path, settings: dict) -> Path:
    """settings.json (0600: secrets) and the static config next to it; returns the config's path."""
    fd = os.open(workdir / "settings.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(settings, f, indent=2)
    config = workdir / "jupyterhub_config.py"
    shutil.copyfile(STATIC_CONFIG, config)
    if settings.get("record_auth"):
        records = Path(settings["record_auth_dir"])
        records.mkdir(mode=0o700, exist_ok=True)
        shutil.copyfile(RECORD_AUTH_CONFIG, records / "jupyter_server_config.py")
    return config
