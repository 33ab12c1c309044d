"""The bridge's settings: names, environment defaults, and validation with one clear message each."""

import ipaddress
import os
import secrets
import stat
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from urllib.parse import quote

DEFAULT_CA = "./my_sslca.cert"
IP_TLS_NAME = "jupyterhub"


@dataclass(frozen=True)
class Option:
    name: str
    env: str
    default: str
    help: str
    secret: bool = False  # read from the environment when resolved, so it never shows as a default

    def env_default(self, environ=os.environ) -> str:
        return environ.get(self.env, self.default)


OPTIONS = (
    Option("jupyter_proxy_ip_or_name", "JUPYTER_PROXY_IP_OR_NAME", "localhost",
           "Where the bridge listens (loopback by default)."),
    Option("jupyter_proxy_port", "JUPYTER_PROXY_PORT", "8000", "The port the bridge listens on."),
    Option("jupyter_server_ip_or_name", "JUPYTER_SERVER_IP_OR_NAME", "",
           "The JupyterHub address to dial, IP or DNS name (required)."),
    Option("jupyter_server_port", "JUPYTER_SERVER_PORT", "8000", "The JupyterHub HTTPS port."),
    Option("jupyter_server_name", "JUPYTER_SERVER_NAME", "",
           f"The TLS name sent as SNI and checked against the hub's certificate. "
           f"Empty: '{IP_TLS_NAME}' when dialling an IP, else the server's name."),
    Option("jupyter_username", "JUPYTER_USERNAME", "",
           "The hub user whose server is used. Required without a hub token; with one, empty: the token's owner."),
    Option("jupyter_cluster_ca_cert", "JUPYTER_CLUSTER_CA_CERT", DEFAULT_CA,
           "PEM file of the cluster CA. Left at the default and absent: the system trust store."),
    Option("jupyter_named_server", "JUPYTER_NAMED_SERVER", "",
           "A named server (/user/<name>/<server>/); empty is the default server."),
    Option("jupyterhub_base_url", "JUPYTERHUB_BASE_URL", "/",
           "The hub's base URL, for hubs served under a prefix such as /jupyter/."),
    Option("jupyterhub_api_token", "JUPYTERHUB_API_TOKEN", "",
           "The hub token the bridge sends upstream for clients that present the bridge's own token. "
           "Unset: clients bring their own hub token.", secret=True),
    Option("jupyterhub_api_token_file", "JUPYTERHUB_API_TOKEN_FILE", "",
           "A file holding the hub token (readable by its owner only), instead of JUPYTERHUB_API_TOKEN."),
    Option("jupyter_proxy_token", "JUPYTER_PROXY_TOKEN", "",
           "The bridge's own token that clients present. Unset: a random one per run. "
           "Empty: none (only when listening on loopback).", secret=True),
    Option("jupyter_proxy_web_flows", "JUPYTER_PROXY_WEB_FLOWS", "500",
           "./run.sh web: how many finished flows mitmweb keeps (older ones are removed from its list)."),
    Option("jupyter_proxy_web_ws_messages", "JUPYTER_PROXY_WEB_WS_MESSAGES", "100",
           "./run.sh web: how many recent messages mitmweb keeps per WebSocket (at most 4 MiB of them)."),
    Option("jupyter_autostart", "JUPYTER_AUTOSTART", "true",
           "Start a stopped server through the Hub API (needs the hub token), then answer the request: true or false."),
    Option("jupyter_start_timeout", "JUPYTER_START_TIMEOUT", "300",
           "Seconds to wait for a server start before answering 503."),
)
OPTION_NAMES = frozenset(o.name for o in OPTIONS)
ENV_OF = {o.name: o.env for o in OPTIONS}


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
    hub_token: str | None = field(default=None, repr=False)
    local_secret: str = field(default="", repr=False)
    autostart: bool = True
    start_timeout: float = 300.0

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


def _port(values: dict[str, str], name: str) -> int:
    raw = values[name].strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ValueError(f"{ENV_OF[name]}={raw!r} is not a port: use a number from 1 to 65535.")
    return int(raw)


def _required(values: dict[str, str], name: str, what: str) -> str:
    value = values[name].strip()
    if not value:
        raise ValueError(f"{ENV_OF[name]} is not set: set it to {what}.")
    return value


def _ca_file(raw: str) -> str | None:
    path = os.path.abspath(os.path.expanduser(raw.strip()))
    if raw.strip() == DEFAULT_CA and not os.path.exists(path):
        return None
    name = f"JUPYTER_CLUSTER_CA_CERT={raw!r}"
    if not os.path.isfile(path):
        raise ValueError(f"{name}: no such file. Point it at the PEM file of your cluster's CA.")
    try:
        with open(path, "rb") as f:
            pem = f.read()
    except OSError as e:
        raise ValueError(f"{name}: cannot read it ({e.strerror}). Check its permissions.") from e
    if b"-----BEGIN CERTIFICATE-----" not in pem:
        raise ValueError(f"{name}: not a PEM certificate (no 'BEGIN CERTIFICATE' line). "
                         "Export the CA certificate in PEM format.")
    return path


def _flag(values: dict[str, str], name: str) -> bool:
    raw = values[name].strip().lower()
    if raw not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"{ENV_OF[name]}={values[name]!r} is not a switch: use true or false.")
    return raw in ("true", "1", "yes", "on")


def _seconds(values: dict[str, str], name: str) -> float:
    raw = values[name].strip()
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{ENV_OF[name]}={raw!r} is not a number of seconds: use a number above 0, e.g. 300.")
    return seconds


def _base_url(raw: str) -> str:
    parts = [p for p in raw.strip().split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"JUPYTERHUB_BASE_URL={raw!r} must not contain '.' or '..' segments.")
    return "/" + "".join(f"{p}/" for p in parts)


def _hub_token(values: dict[str, str | None], environ) -> str | None:
    token = (values["jupyterhub_api_token"] or environ.get("JUPYTERHUB_API_TOKEN") or "").strip()
    raw = (values["jupyterhub_api_token_file"] or "").strip()
    if token or not raw:
        return token or None
    path = os.path.expanduser(raw)
    name = f"JUPYTERHUB_API_TOKEN_FILE={raw!r}"
    try:
        mode = os.stat(path).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"{name}: others can read it (mode {stat.filemode(mode)}): run 'chmod 600 {raw}'.")
        with open(path) as f:
            token = f.read().strip()
    except OSError as e:
        raise ValueError(f"{name}: cannot read it ({e.strerror}).") from e
    if not token:
        raise ValueError(f"{name}: the file is empty: put your JupyterHub API token in it.")
    return token


def _local_secret(values: dict[str, str | None], environ, listen_host: str, hub_token: str | None) -> str:
    secret = values["jupyter_proxy_token"]
    if secret is None:
        secret = environ.get("JUPYTER_PROXY_TOKEN")
    if secret is None:
        return secrets.token_urlsafe(24)
    if not secret.strip() and hub_token and not is_loopback(listen_host):
        raise ValueError(f"JUPYTER_PROXY_TOKEN is empty while the bridge listens on {listen_host!r}, "
                         "which others can reach: set a token, or listen on localhost.")
    return secret.strip()


def resolve(values: dict[str, str | None], environ=os.environ) -> Settings:
    """Validate raw option values (keyed by option name; None for a secret means: from the environment);
    raise ValueError with a message a user can act on."""
    server_host = _required(values, "jupyter_server_ip_or_name", "the address of your JupyterHub (IP or DNS name)")
    server_host = server_host.strip("[]")
    tls_name = values["jupyter_server_name"].strip() or (IP_TLS_NAME if is_ip(server_host) else server_host)
    listen_host = values["jupyter_proxy_ip_or_name"].strip().strip("[]") or "localhost"
    hub_token = _hub_token(values, environ)
    return Settings(
        listen_host=listen_host,
        listen_port=_port(values, "jupyter_proxy_port"),
        server_host=server_host,
        server_port=_port(values, "jupyter_server_port"),
        tls_name=tls_name,
        # With a token the launcher asks the hub whose it is.
        username=values["jupyter_username"].strip() if hub_token else _required(
            values, "jupyter_username", "your JupyterHub user name (or set JUPYTERHUB_API_TOKEN)"),
        named_server=values["jupyter_named_server"].strip().strip("/"),
        ca_file=_ca_file(values["jupyter_cluster_ca_cert"]),
        base_url=_base_url(values["jupyterhub_base_url"]),
        hub_token=hub_token,
        local_secret=_local_secret(values, environ, listen_host, hub_token),
        autostart=_flag(values, "jupyter_autostart"),
        start_timeout=_seconds(values, "jupyter_start_timeout"),
    )


def from_environment(environ=os.environ, overrides: dict[str, str] | None = None) -> Settings:
    values = {o.name: None if o.secret else o.env_default(environ) for o in OPTIONS}
    values.update(overrides or {})
    return resolve(values, environ)
