"""The bridge's settings: raw option values (the table is in addon/core/options.py) validated into one frozen
`Settings`, with one clear message for each bad value."""

import ipaddress
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from urllib.parse import quote

from addon.core import login_record
from addon.core import option_values
from addon.core.errors import SettingError
from addon.core.invocation import RUN
from addon.core import spawn_options
from addon.core.trust import Anchors

from addon.core.options import DEFAULT_CA  # noqa: F401
from addon.core.options import ENV_OF
from addon.core.options import IP_TLS_NAME
from addon.core.options import OPTION_NAMES  # noqa: F401  (the table's names stay importable from here)
from addon.core.options import OPTIONS
from addon.core.options import Option  # noqa: F401


@dataclass(frozen=True)
class Settings:
    listen_host: str
    listen_port: int
    server_host: str
    server_port: int
    tls_name: str
    username: str
    named_server: str
    ca_file: str | None
    base_url: str
    hub_token: str | None = field(default=None, repr=False)  # the login token: only for the hub's API
    # What goes to the server for the bridge's own clients: the access token (addon/access.py), None until made.
    server_token: str | None = field(default=None, repr=False)
    local_secret: str = field(default="", repr=False)
    autostart: bool = True
    start_timeout: float = 300.0
    stream_bodies: int = 1024 * 1024  # bytes: larger bodies stream through mitmproxy
    web_flows: int = 500
    web_ws_messages: int = 100
    token_lifetime: int = 30 * 86400
    access_token_lifetime: int = 86400
    server_options: dict = field(default_factory=dict, hash=False)  # JUPYTER_SERVER_OPTIONS
    resume_window: float = 300.0  # seconds a kernel or terminal WebSocket waits for a new upstream connection
    resume_ping_interval: float = 10.0
    # What verifies the hub, loaded once here: the Hub client and mitmproxy get these bytes, never the file again.
    trust: Anchors = field(default=Anchors(), repr=False)

    @cached_property
    def prefix(self) -> str:
        """The user's server as JupyterHub names it, escaped the way JupyterHub escapes names."""
        server = f"{quote(self.named_server, safe='@~')}/" if self.named_server else ""
        return f"{self.base_url}user/{quote(self.username, safe='@~')}/{server}"

    @cached_property
    def hub_authority(self) -> str:
        return f"{self.tls_name}:{self.server_port}"

    @cached_property
    def hub_origin(self) -> str:
        return f"https://{self.hub_authority}"

    @cached_property
    def hub_home(self) -> str:
        """The hub's home page (start and stop servers, tokens) under the name its certificate carries."""
        return f"{self.hub_origin}{self.base_url}hub/home"

    @cached_property
    def hub_origins(self) -> frozenset[str]:
        """Every origin under which the hub may name itself in a redirect."""
        hosts = {self.tls_name, host_in_url(self.server_host)}
        ports = {f":{self.server_port}"} | ({""} if self.server_port == 443 else set())
        return frozenset(f"https://{h}{p}".lower() for h in hosts for p in ports)

    @cached_property
    def own_authorities(self) -> frozenset[str]:
        """The Host values under which clients reach the bridge."""
        hosts = {"localhost", "127.0.0.1", "[::1]", host_in_url(self.listen_host)}
        return frozenset(f"{h}:{self.listen_port}".lower() for h in hosts)

    @cached_property
    def own_origins(self) -> frozenset[str]:
        return frozenset(f"http://{a}" for a in self.own_authorities)

    @cached_property
    def cookie_name(self) -> str:
        # Browsers share cookies across ports: one name per bridge port.
        return f"jupyterhub-bridge-{self.listen_port}"

    @cached_property
    def dial_url(self) -> str:
        return f"https://{host_in_url(self.server_host)}:{self.server_port}/"

    @cached_property
    def connect_url(self) -> str:
        host = "127.0.0.1" if self.listen_host in ("localhost", "") else self.listen_host
        return f"http://{host_in_url(host)}:{self.listen_port}/"


def is_loopback(host: str) -> bool:
    return host == "localhost" or (is_ip(host) and ipaddress.ip_address(host).is_loopback)


def host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _hub_token(values: dict[str, str | None], environ) -> str | None:
    token = (values["jupyterhub_api_token"] or environ.get("JUPYTERHUB_API_TOKEN") or "").strip()
    raw = (values["jupyterhub_api_token_file"] or "").strip()
    if token or not raw:
        return token or None
    token = option_values.private_file(raw, "JUPYTERHUB_API_TOKEN_FILE")
    if not token:
        raise SettingError(f"JUPYTERHUB_API_TOKEN_FILE={raw!r}: the file is empty: put your JupyterHub API token "
                           "in it.")
    return token


def _local_secret(values: dict[str, str | None], environ, listen_host: str, hub_token: str | None,
                  stored: login_record.Login, record: login_record.HubToken | None) -> str:
    secret = values["jupyter_proxy_token"]
    if secret is None:
        secret = environ.get("JUPYTER_PROXY_TOKEN")
    if secret is None and record is not None and record.token == hub_token:
        # made by ./run.sh login: the IDE's URL survives restarts; only with the stored hub token, else the IDE's
        # token would let anyone who has it use another hub token
        secret = stored.local_token or None
    if secret is None:
        return secrets.token_urlsafe(24)
    if not secret.strip() and hub_token and not is_loopback(listen_host):
        raise SettingError(f"JUPYTER_PROXY_TOKEN is empty while the bridge listens on {listen_host!r}, "
                         "which others can reach: set a token, or listen on localhost.")
    return secret.strip()


def resolve(values: dict[str, str | None], environ: Mapping[str, str], stored: login_record.Login = login_record.Login()) -> Settings:
    """Validate raw option values (keyed by option name; None for a secret means: from `environ`, which
    the entry points give as os.environ, else from the `stored` login); raise SettingError (a ValueError) with a
    message a user can act on. Reads no file but the ones the values name (a CA file, a token file)."""
    if not values["jupyter_server_ip_or_name"].strip():  # nothing set, no login stored: a newcomer's first words
        raise SettingError(f"Sign in once: {RUN} login https://<your hub>/ . To set it by hand instead: "
                           f"JUPYTER_SERVER_IP_OR_NAME, the address of your JupyterHub, and the others of {RUN} help.")
    server_host = values["jupyter_server_ip_or_name"].strip()
    server_host = server_host.strip("[]")
    tls_name = values["jupyter_server_name"].strip() or (IP_TLS_NAME if is_ip(server_host) else server_host)
    listen_host = values["jupyter_proxy_ip_or_name"].strip().strip("[]") or "localhost"
    server_port = option_values.port(values, "jupyter_server_port")
    ca_file, ca_content = option_values.ca_file_content(values["jupyter_cluster_ca_cert"])
    base_url = option_values.base_url(values["jupyterhub_base_url"])
    trust = stored.anchors(server_host, server_port, tls_name, ca_file, ca_content)
    record = stored.hub_token_for(server_host, server_port, tls_name, ca_file, base_url, trust.sha256)
    hub_token = _hub_token(values, environ) or (record.token if record else None)
    return Settings(
        listen_host=listen_host,
        listen_port=option_values.port(values, "jupyter_proxy_port"),
        server_host=server_host,
        server_port=server_port,
        tls_name=tls_name,
        # With a token the launcher asks the hub whose it is.
        username=values["jupyter_username"].strip() if hub_token else option_values.required(
            values, "jupyter_username", "your JupyterHub user name (or set JUPYTERHUB_API_TOKEN)"),
        named_server=values["jupyter_named_server"].strip().strip("/"),
        ca_file=ca_file,
        base_url=base_url,
        hub_token=hub_token,
        local_secret=_local_secret(values, environ, listen_host, hub_token, stored, record),
        autostart=option_values.flag(values, "jupyter_autostart"),
        start_timeout=option_values.seconds(values, "jupyter_start_timeout"),
        stream_bodies=option_values.size(values, "jupyter_proxy_stream_bodies"),
        web_flows=option_values.count(values, "jupyter_proxy_web_flows"),
        web_ws_messages=option_values.count(values, "jupyter_proxy_web_ws_messages"),
        token_lifetime=int(option_values.seconds(values, "jupyter_token_lifetime")),
        access_token_lifetime=int(option_values.seconds(values, "jupyter_access_token_lifetime")),
        server_options=spawn_options.parse(values["jupyter_server_options"]),
        resume_window=option_values.seconds(values, "jupyter_resume_window"),
        resume_ping_interval=option_values.seconds(values, "jupyter_resume_ping_interval"),
        trust=trust,
    )


def with_stored(environ: Mapping[str, str], stored: login_record.Login) -> dict[str, str]:
    """The environment over the settings `./run.sh login` stored, as environment variables."""
    return {**{ENV_OF[name]: value for name, value in stored.values().items()}, **environ}


def from_environment(environ: Mapping[str, str], overrides: dict[str, str] | None = None,
                     stored: login_record.Login = login_record.Login()) -> Settings:
    """The entry points' settings: --set over the environment over the stored login (which the entry points read
    from its file, addon/store.py, and pass in)."""
    environ = with_stored(environ, stored)
    values = {o.name: None if o.secret else o.env_default(environ) for o in OPTIONS}
    values.update(overrides or {})
    return resolve(values, environ, stored)
