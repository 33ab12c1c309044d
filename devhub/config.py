"""The settings.json that devhub writes into its work directory, next to a copy of the static
jupyterhub_config.py that reads it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from devhub import ADMIN_SERVICE

STATIC_CONFIG = Path(__file__).resolve().with_name("jupyterhub_config.py")

# Scopes of the devhub-admin service: manage users, their servers and their tokens.
ADMIN_SCOPES = [
    "admin:users", "admin:servers", "admin:auth_state", "tokens", "list:users", "read:users", "users",
    "servers", "access:servers", "proxy", "read:hub",
]
# Profiles a spawn may ask for in its user options ({"profile": ...}); any other is refused with 400.
PROFILES = ["small", "gpu-small"]


def hub_settings(*, workdir: Path, ports: dict[str, int], base_url: str, commands: dict[str, str],
                 certs: dict[str, Path], admin_token: str, password: str | None, options: dict) -> dict:
    """The JSON settings of jupyterhub_config.py. ``ports``: port, hub_port, proxy_api_port;
    ``commands``: chp_command, singleuser_command, venv_bin; ``options``: authenticator, users,
    iopub_data_rate_limit, spawn_fail, spawn_delay, sharing (from the command line)."""
    return {
        "workdir": str(workdir), **ports, "base_url": base_url, **commands,
        "cert_file": str(certs["cert_file"]), "key_file": str(certs["key_file"]),
        "admin_service": ADMIN_SERVICE, "admin_token": admin_token, "admin_scopes": ADMIN_SCOPES,
        "password": password, "profiles": PROFILES, **options,
    }


def write_config(workdir: Path, settings: dict) -> Path:
    """settings.json (0600: secrets) and the static config next to it; returns the config's path."""
    fd = os.open(workdir / "settings.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(settings, f, indent=2)
    config = workdir / "jupyterhub_config.py"
    shutil.copyfile(STATIC_CONFIG, config)
    return config
