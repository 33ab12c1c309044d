"""The bridge's settings table: every setting once, with its environment variable, default and help.

`./run.sh help` prints it (`python -m addon.core.options`), docs/settings.md's table is generated from
it (`python -m addon.core.options --markdown`; tests/unit/test_settings.py fails when they differ), mitmproxy gets each as an
option of the addon, and `settings.resolve` validates the values. To add a setting, append an `Option` below and
read it in `settings.resolve`."""

import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

from addon.core.invocation import RUN

DEFAULT_CA = "./my_sslca.cert"
IP_TLS_NAME = "jupyterhub"


@dataclass(frozen=True)
class Option:
    name: str
    env: str
    default: str
    help: str
    secret: bool = False  # read from the environment when resolved, so it never shows as a default
    shown_default: str = ""  # what an empty default means, for the help and docs/settings.md

    def env_default(self, environ: Mapping[str, str]) -> str:
        return environ.get(self.env, self.default)

    @property
    def default_text(self) -> str:
        return self.shown_default or self.default or "empty"


OPTIONS = (
    Option("jupyter_proxy_ip_or_name", "JUPYTER_PROXY_IP_OR_NAME", "localhost",
           "Where the bridge listens (localhost is 127.0.0.1)."),
    Option("jupyter_proxy_port", "JUPYTER_PROXY_PORT", "8000", "The port the bridge listens on."),
    Option("jupyter_server_ip_or_name", "JUPYTER_SERVER_IP_OR_NAME", "",
           "The JupyterHub address to dial, IP or DNS name.", shown_default="required"),
    Option("jupyter_server_port", "JUPYTER_SERVER_PORT", "8000", "The JupyterHub HTTPS port."),
    Option("jupyter_server_name", "JUPYTER_SERVER_NAME", "",
           "The TLS name: sent as SNI and checked against the hub's certificate.",
           shown_default=f"{IP_TLS_NAME} when dialling an IP, else the address"),
    Option("jupyter_username", "JUPYTER_USERNAME", "",
           "The hub user whose server is used; required without a hub token.",
           shown_default="the hub token's owner"),
    Option("jupyter_cluster_ca_cert", "JUPYTER_CLUSTER_CA_CERT", DEFAULT_CA,
           "PEM file of the cluster CA, read once at start. Left at the default and absent, or empty: what "
           f"{RUN} login pinned (the system store's CA, or a certificate trusted on first use), else the system "
           "trust store."),
    Option("jupyter_named_server", "JUPYTER_NAMED_SERVER", "",
           "A named server (/user/<name>/<server>/).", shown_default="the default server"),
    Option("jupyterhub_base_url", "JUPYTERHUB_BASE_URL", "/",
           "The hub's base URL, for hubs served under a prefix such as /jupyter/."),
    Option("jupyterhub_api_token", "JUPYTERHUB_API_TOKEN", "",
           "The hub token, for the hub's API only: with it the bridge makes the access token it sends upstream "
           "for clients that present the bridge's own token (one that may not make tokens goes as it is, to its "
           "owner's own server only). Unset: clients bring their own hub token.", secret=True, shown_default="unset"),
    Option("jupyterhub_api_token_file", "JUPYTERHUB_API_TOKEN_FILE", "",
           "A file holding the hub token, instead of JUPYTERHUB_API_TOKEN; refused if others can read it.",
           shown_default="unset"),
    Option("jupyter_proxy_token", "JUPYTER_PROXY_TOKEN", "",
           "The bridge's own token that clients present. Empty: none (only when listening on loopback).",
           secret=True, shown_default="random per run"),
    Option("jupyter_autostart", "JUPYTER_AUTOSTART", "true",
           "Start a stopped server through the Hub API (needs the hub token): true or false."),
    Option("jupyter_start_timeout", "JUPYTER_START_TIMEOUT", "300",
           "Seconds to wait for a server start before answering 503."),
    Option("jupyter_proxy_stream_bodies", "JUPYTER_PROXY_STREAM_BODIES", "1m",
           "Bodies larger than this (bytes, or with k, m or g) stream through without being held in memory; "
           "rewrites still apply. Read at start."),
    Option("jupyter_proxy_web_flows", "JUPYTER_PROXY_WEB_FLOWS", "500",
           f"{RUN} web: how many finished flows mitmweb keeps (older ones leave its list)."),
    Option("jupyter_proxy_web_ws_messages", "JUPYTER_PROXY_WEB_WS_MESSAGES", "100",
           f"{RUN} web: how many recent messages mitmweb keeps per WebSocket (at most 4 MiB of them); "
           "mitmdump keeps the last one."),
    Option("jupyter_token_lifetime", "JUPYTER_TOKEN_LIFETIME", str(30 * 86400),
           f"{RUN} login: seconds the hub token it makes stays valid (30 days); the bridge renews it when a "
           "fifth of that is left."),
    Option("jupyter_access_token_lifetime", "JUPYTER_ACCESS_TOKEN_LIFETIME", str(86400),
           "Seconds the access token stays valid (one day): the bridge makes it at start with the hub token, "
           "limited to reaching your server, sends only it to the server, renews it when a fifth of that is "
           "left and revokes it when it stops."),
    Option("jupyter_server_options", "JUPYTER_SERVER_OPTIONS", "",
           "The options a server is started with (a profile, a partition, a time limit): a JSON object such as "
           '{"profile": "gpu-small"}, or key=value pairs separated by commas.',
           shown_default="none: the hub reuses those of the last start"),
    Option("jupyter_resume_window", "JUPYTER_RESUME_WINDOW", "300",
           "Seconds a kernel or terminal WebSocket is held open while the bridge dials the server again after "
           "the connection dropped (the server replays what the kernel sent meanwhile); then the IDE's socket is "
           "closed with the reason."),
    Option("jupyter_resume_ping_interval", "JUPYTER_RESUME_PING_INTERVAL", "10",
           "Seconds of silence after which the bridge pings the server on a kernel or terminal WebSocket; a ping "
           "unanswered for twice this is a dropped connection (a sleeping laptop, a changed network)."),
    Option("jupyter_oauth_port", "JUPYTER_OAUTH_PORT", "8765",
           f"{RUN} login --browser: the port on 127.0.0.1 the sign-in comes back to, only while it waits; the "
           "hub's OAuth client has the redirect URI http://127.0.0.1:<port>/oauth_callback."),
    Option("jupyter_oauth_client_id", "JUPYTER_OAUTH_CLIENT_ID", "service-jupyterhub-bridge",
           f"{RUN} login --browser: the OAuth client id the hub's admin registered ({RUN} admin oauth-config)."),
    Option("jupyter_oauth_client_secret", "JUPYTER_OAUTH_CLIENT_SECRET", "",
           f"{RUN} login --browser: the OAuth client's secret, as the hub's admin handed it out.",
           secret=True, shown_default="unset"),
    Option("jupyter_oauth_client_secret_file", "JUPYTER_OAUTH_CLIENT_SECRET_FILE", "",
           "A file holding the OAuth client's secret, instead of JUPYTER_OAUTH_CLIENT_SECRET; refused if others "
           "can read it.", shown_default="unset"),
)
OPTION_NAMES = frozenset(o.name for o in OPTIONS)
ENV_OF = {o.name: o.env for o in OPTIONS}


def help_text(width: int = 100) -> str:
    """The settings as `./run.sh help` prints them."""
    lines = ["Settings: an environment variable, or --set <option>=<value> (which wins over the environment):"]
    for o in OPTIONS:
        lines.append(f"  {o.env}  (--set {o.name}=...)  [{o.default_text}]")
        lines += textwrap.wrap(o.help, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def markdown_table() -> str:
    """docs/settings.md's settings table."""
    rows = ["| environment | option | default | meaning |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = f"`{o.default}`" if o.default and not o.shown_default else o.default_text
        rows.append(f"| `{o.env}` | `{o.name}` | {default} | {o.help} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table() if sys.argv[1:] == ["--markdown"] else help_text())
