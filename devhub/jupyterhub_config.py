"""JupyterHub configuration of devhub: static, it reads the settings.json that devhub writes next to it.

devhub copies this file into its work directory; ``jupyterhub -f <workdir>/jupyterhub_config.py`` then runs
the same hub by hand. settings.json holds secrets (mode 0600); see devhub/config.py for its keys.
"""

import json
import os
from pathlib import Path

from jupyterhub import version_info
from jupyterhub.auth import Authenticator
from jupyterhub.scopes import scope_definitions
from tornado import web

c = get_config()  # noqa: F821
s = json.loads(Path(__file__).with_name("settings.json").read_text())  # noqa: F821 (__file__: traitlets)
w = Path(s["workdir"])


class SSOAuthenticator(Authenticator):
    """Stands in for an OAuth/SSO sign-in: the login page shows a button, no password field, and
    credentials sent in a body (login form, token API's {"auth": ...}) never sign anyone in."""

    login_service = "devhub SSO"

    async def authenticate(self, handler, data):
        return None


def check_profile(spawner, user_options):
    """Refuse a spawn whose profile is not offered, as a KubeSpawner profile list does (HTTP 400)."""
    profile = (user_options or {}).get("profile")
    if profile is not None and profile not in s["profiles"]:
        raise web.HTTPError(400, f"devhub: profile {profile!r} is not one of {', '.join(s['profiles'])}")


async def pre_spawn(spawner):
    """Some users' spawns fail, are rejected or take long (lifecycle tests)."""
    import asyncio

    await asyncio.sleep(s["spawn_delay"].get(spawner.user.name, 0))
    if spawner.user.name in s["spawn_fail"]:
        raise RuntimeError(f"devhub --spawn-fail: the spawns of {spawner.user.name} fail")
    if spawner.user.name in s["spawn_reject"]:
        # A refusal by the hub's policy (capacity, quota): JupyterHub 6 has SpawnException for it, and before it a
        # spawner raised an HTTPError below 500; either way the start request is answered 400.
        why = f"devhub --spawn-reject: no capacity for {spawner.user.name}"
        if HUB >= (6, 0):
            from jupyterhub.spawner import SpawnException
            raise SpawnException(why, reason="capacity")
        raise web.HTTPError(400, why)


# Public side: configurable-http-proxy with TLS on 127.0.0.1. Only bind_url is set (its path is the
# base_url): setting ip/port/base_url as well would make JupyterHub rebuild bind_url from the unset ip/port.
c.JupyterHub.bind_url = f"https://127.0.0.1:{s['port']}{s['base_url']}"
c.JupyterHub.ssl_cert = s["cert_file"]
c.JupyterHub.ssl_key = s["key_file"]
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s['hub_port']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [s["chp_command"]]
c.ConfigurableHTTPProxy.pid_file = str(w / "jupyterhub-proxy.pid")
c.ConfigurableHTTPProxy.should_start = True

# State stays inside the work directory.
c.JupyterHub.db_url = "sqlite:///" + str(w / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(w / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(w / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.allow_named_servers = True

# devhub runs the hub of the venv it runs in (devhub/launcher.py HUB_VENVS): 6.x, 5.5.x or 4.1.x. What an older one
# lacks is left out here, and devhub refuses the options that need it (devhub/hub.py).
HUB = version_info[:2]


def defined(scopes):
    """The scopes this hub defines (4.1 has no admin:services, no read:users:shares), filters kept."""
    return [scope for scope in scopes if scope.split("!", 1)[0] in scope_definitions]

# Users: a shared demo password, or a sign-in that takes no password.
if s["authenticator"] == "password" and HUB >= (5, 3):
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = s["password"]
elif s["authenticator"] == "password":  # SharedPasswordAuthenticator came in 5.3
    c.JupyterHub.authenticator_class = "dummy"
    c.DummyAuthenticator.password = s["password"]
else:
    c.JupyterHub.authenticator_class = SSOAuthenticator
c.Authenticator.allowed_users = set(s["users"])

# Single-user servers: local processes, homes under the work directory.
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = str(w / "home" / "{username}")
c.Spawner.cmd = [s["singleuser_command"]]
c.Spawner.args = ["--allow-root"] + (
    [] if s["iopub_data_rate_limit"] is None
    else [f"--ZMQChannelsWebsocketConnection.iopub_data_rate_limit={s['iopub_data_rate_limit']!r}"])
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 90
# stopping a server: SIGINT, SIGTERM after 5 s, SIGKILL after 3 more (devhub waits 12 s)
c.LocalProcessSpawner.interrupt_timeout = 5
c.LocalProcessSpawner.term_timeout = 3
c.LocalProcessSpawner.kill_timeout = 2
c.Spawner.environment = {
    "PATH": s["venv_bin"] + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
    "JUPYTER_PLATFORM_DIRS": "1",
    # the options the server was started with, where a kernel can read them
    "DEVHUB_USER_OPTIONS": lambda spawner: json.dumps(spawner.user_options or {}),
}
if s["record_auth"]:  # each server records the Authorization header of every request (record_auth_config.py)
    c.Spawner.environment["JUPYTER_CONFIG_PATH"] = s["record_auth_dir"]
    c.Spawner.environment["DEVHUB_AUTH_RECORD"] = lambda spawner: str(
        Path(s["record_auth_dir"]) / f"{spawner.user.name}.jsonl")
if HUB >= (5, 3):  # apply_user_options came in 5.3; an older hub takes any profile
    c.Spawner.apply_user_options = check_profile
if s["spawn_fail"] or s["spawn_delay"] or s["spawn_reject"]:
    c.Spawner.pre_spawn_hook = pre_spawn

# The devhub-admin service manages users, servers and tokens; with sharing, users may share their servers.
c.JupyterHub.services = [{"name": s["admin_service"], "api_token": s["admin_token"]}]
# An OAuth client (--oauth-client): its secret is its API token and it has no roles, so that token can do nothing;
# users need access:services!service=<name> to authorize it (JupyterHub 6: extra_user_scopes; older hubs: in the
# user role below).
oauth = s["oauth_client"]
OAUTH_USER_SCOPES = [f"access:services!service={oauth['name']}"] if oauth else []
if oauth:
    c.JupyterHub.services.append({
        "name": oauth["name"], "api_token": oauth["client_secret"], "oauth_client_id": oauth["client_id"],
        "oauth_redirect_uri": oauth["redirect_uri"], "oauth_client_allowed_scopes": defined(oauth["allowed_scopes"])})
    if HUB >= (6, 0):  # extra_user_scopes and oauth_require_pkce came in 6.0 (5.x takes PKCE but cannot require it)
        c.JupyterHub.extra_user_scopes = set(OAUTH_USER_SCOPES)
        c.JupyterHub.oauth_require_pkce = oauth["require_pkce"]
# Sharing (5.0+) needs the shares scope on one's own servers and the names of those one shares with. A user role
# given here replaces the default one, so extra_user_scopes would be ignored: the OAuth scope goes in it too.
USER_SCOPES = ["self", *(["shares!user", "read:users:name", "read:groups:name"] if s["sharing"] else []),
               *OAUTH_USER_SCOPES]
c.JupyterHub.load_roles = [
    {"name": s["admin_service"], "description": "devhub administration", "scopes": defined(s["admin_scopes"]),
     "services": [s["admin_service"]]},
    *([{"name": "user", "scopes": USER_SCOPES}] if s["sharing"] or (oauth and HUB < (6, 0)) else []),
]
