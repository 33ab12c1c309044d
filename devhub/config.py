"""Render the jupyterhub_config.py that devhub writes into its work directory."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from devhub import ADMIN_SERVICE

# Scopes of the devhub-admin service: manage users, their servers and their tokens.
ADMIN_SCOPES = [
    "admin:users",
    "admin:servers",
    "admin:auth_state",
    "tokens",
    "list:users",
    "read:users",
    "users",
    "servers",
    "access:servers",
    "proxy",
    "read:hub",
]


@dataclass
class HubSettings:
    workdir: Path
    port: int  # public (CHP, TLS)
    hub_port: int  # the hub's own plain-http port
    proxy_api_port: int  # CHP's REST API
    base_url: str  # "/" or "/prefix/"
    chp_command: str  # absolute path of configurable-http-proxy
    singleuser_command: str  # absolute path of jupyterhub-singleuser from this venv
    venv_bin: str
    cert_file: Path
    key_file: Path
    admin_token: str
    password: str
    users: list[str]
    iopub_data_rate_limit: float | None = None
    spawn_fail: list[str] = field(default_factory=list)  # users whose spawns fail
    spawn_delay: dict[str, float] = field(default_factory=dict)  # user -> seconds a spawn waits first


def render(s: HubSettings) -> str:
    args = ["--allow-root"]
    if s.iopub_data_rate_limit is not None:
        args.append(f"--ZMQChannelsWebsocketConnection.iopub_data_rate_limit={s.iopub_data_rate_limit!r}")
    home_template = str(s.workdir / "home" / "{username}")
    w = s.workdir
    lines = [
        "# Written by `python -m devhub`; regenerated on every start. Contains secrets.",
        "c = get_config()  # noqa: F821",
        "",
        "# Public side: configurable-http-proxy with TLS on 127.0.0.1.",
        "# Only bind_url is set (its path is the base_url): setting ip/port/base_url as well",
        "# would make JupyterHub rebuild bind_url from the unset ip/port.",
        f"c.JupyterHub.bind_url = {f'https://127.0.0.1:{s.port}{s.base_url}'!r}",
        f"c.JupyterHub.ssl_cert = {str(s.cert_file)!r}",
        f"c.JupyterHub.ssl_key = {str(s.key_file)!r}",
        f"c.JupyterHub.hub_bind_url = {f'http://127.0.0.1:{s.hub_port}'!r}",
        f"c.ConfigurableHTTPProxy.api_url = {f'http://127.0.0.1:{s.proxy_api_port}'!r}",
        f"c.ConfigurableHTTPProxy.command = [{s.chp_command!r}]",
        f"c.ConfigurableHTTPProxy.pid_file = {str(w / 'jupyterhub-proxy.pid')!r}",
        "c.ConfigurableHTTPProxy.should_start = True",
        "",
        "# State stays inside the work directory.",
        f"c.JupyterHub.db_url = {'sqlite:///' + str(w / 'jupyterhub.sqlite')!r}",
        f"c.JupyterHub.cookie_secret_file = {str(w / 'jupyterhub_cookie_secret')!r}",
        f"c.JupyterHub.pid_file = {str(w / 'jupyterhub.pid')!r}",
        "c.JupyterHub.cleanup_servers = True",
        "c.JupyterHub.cleanup_proxy = True",
        "c.JupyterHub.allow_named_servers = True",
        "",
        "# Users: a shared demo password.",
        "c.JupyterHub.authenticator_class = 'shared-password'",
        f"c.SharedPasswordAuthenticator.user_password = {s.password!r}",
        f"c.Authenticator.allowed_users = {set(s.users)!r}",
        "",
        "# Single-user servers: local processes, homes under the work directory.",
        "c.JupyterHub.spawner_class = 'jupyterhub.spawner.SimpleLocalProcessSpawner'",
        f"c.SimpleLocalProcessSpawner.home_dir_template = {home_template!r}",
        f"c.Spawner.cmd = [{s.singleuser_command!r}]",
        f"c.Spawner.args = {args!r}",
        "c.Spawner.ip = '127.0.0.1'",
        "c.Spawner.default_url = '/lab'",
        "c.Spawner.start_timeout = 120",
        "c.Spawner.http_timeout = 90",
        "# stopping a server: SIGINT, SIGTERM after 5 s, SIGKILL after 3 more (devhub waits 12 s)",
        "c.LocalProcessSpawner.interrupt_timeout = 5",
        "c.LocalProcessSpawner.term_timeout = 3",
        "c.LocalProcessSpawner.kill_timeout = 2",
        f"c.Spawner.environment = {{'PATH': {s.venv_bin!r} + ':' + __import__('os').environ.get('PATH', '/usr/bin:/bin'), 'JUPYTER_PLATFORM_DIRS': '1'}}",
        "",
        *spawn_hook(s),
        "# The devhub-admin service manages users, servers and tokens.",
        f"c.JupyterHub.services = [{{'name': {ADMIN_SERVICE!r}, 'api_token': {s.admin_token!r}}}]",
        f"c.JupyterHub.load_roles = [{{'name': {ADMIN_SERVICE!r}, 'description': 'devhub administration',"
        f" 'scopes': {ADMIN_SCOPES!r}, 'services': [{ADMIN_SERVICE!r}]}}]",
        "",
    ]
    return "\n".join(lines)


def spawn_hook(s: HubSettings) -> list[str]:
    """A pre-spawn hook that makes some users' spawns fail or take long (lifecycle tests)."""
    if not (s.spawn_fail or s.spawn_delay):
        return []
    return [
        "async def _devhub_pre_spawn(spawner):",
        "    import asyncio",
        f"    await asyncio.sleep({s.spawn_delay!r}.get(spawner.user.name, 0))",
        f"    if spawner.user.name in {sorted(s.spawn_fail)!r}:",
        "        raise RuntimeError(f'devhub --spawn-fail: the spawns of {spawner.user.name} fail')",
        "c.Spawner.pre_spawn_hook = _devhub_pre_spawn",
        "",
    ]
