"""The mitmproxy addon: declares the settings as options and wires the hooks to the pure rooms."""

import json
import logging

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.proxy import server_hooks

from addon import forward
from addon import route
from addon import settings
from addon.settings import Settings

logger = logging.getLogger(__name__)


def json_response(status: int, message: str) -> http.Response:
    return http.Response.make(status, json.dumps({"message": message}), {"Content-Type": "application/json"})


class Bridge:
    """Serves one user's Jupyter server behind JupyterHub as a plain Jupyter server."""

    settings: Settings | None = None

    def load(self, loader) -> None:
        for option in settings.OPTIONS:
            loader.add_option(option.name, str, option.env_default(), option.help)

    def configure(self, updated: set[str]) -> None:
        if updated & settings.OPTION_NAMES:
            try:
                self.settings = settings.resolve({name: getattr(ctx.options, name) for name in settings.OPTION_NAMES})
            except ValueError as e:
                raise exceptions.OptionsError(str(e)) from e

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        s = self.settings
        if s and data.server.address == (s.server_host, s.server_port):
            data.server.sni = s.tls_name  # one field sets both the SNI and the name verified

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not flow.live or flow.response or self.settings is None:
            return
        try:
            target, changes = forward.request_changes(flow.request.path, flow.request.headers, self.settings)
        except route.Refused as refused:
            flow.request.stream = False  # mitmproxy cannot answer a request it already streams
            flow.response = json_response(refused.status, refused.message)
            return
        flow.request.path = target
        for name, value in changes.items():
            if value is None:
                flow.request.headers.pop(name, None)
            else:
                flow.request.headers[name] = value

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if not flow.live or flow.response is None or self.settings is None:
            return
        s, headers = self.settings, flow.response.headers
        if "location" in headers:
            headers["location"] = route.rewrite_location(headers["location"], s.prefix, s.hub_origins)
        if cookies := headers.get_all("set-cookie"):
            headers.set_all("set-cookie", [route.rewrite_set_cookie(c, s.prefix) for c in cookies])

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        # mitmproxy keeps every message of an open WebSocket; kernels stay open for hours.
        # Keep the last one: mitmdump's own output reads it after this hook.
        assert flow.websocket is not None
        del flow.websocket.messages[:-1]
