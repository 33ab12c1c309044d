"""The mitmproxy addon: declares the settings as options and wires the hooks to the pure rooms."""

import json
import logging
from typing import Optional

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.proxy import server_hooks

from addon import credentials
from addon import forward
from addon import guard
from addon import route
from addon import settings
from addon.settings import Settings

logger = logging.getLogger(__name__)


def json_response(status: int, message: str) -> http.Response:
    return http.Response.make(status, json.dumps({"message": message}), {"Content-Type": "application/json"})


class Bridge:
    """Serves one user's Jupyter server behind JupyterHub as a plain Jupyter server on the loopback."""

    settings: Settings | None = None

    def load(self, loader) -> None:
        for o in settings.OPTIONS:
            if o.secret:
                loader.add_option(o.name, Optional[str], None, f"{o.help} Default: ${o.env}.")
            else:
                loader.add_option(o.name, str, o.env_default(), o.help)

    def configure(self, updated: set[str]) -> None:
        if updated & settings.OPTION_NAMES:
            try:
                self.settings = settings.resolve({name: getattr(ctx.options, name) for name in settings.OPTION_NAMES})
            except ValueError as e:
                raise exceptions.OptionsError(str(e)) from e

    def running(self) -> None:
        s = self.settings
        if s and s.hub_token and not s.local_secret:
            logger.warning("JUPYTER_PROXY_TOKEN is empty: any program of any user on this machine can use "
                           "your JupyterHub server through the bridge.")
        if s and not settings.is_loopback(s.listen_host):
            logger.warning(f"Listening on {s.listen_host!r}, not loopback: others on the network can reach "
                           "the bridge; it still asks them for its token.")

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        s = self.settings
        if s and data.server.address == (s.server_host, s.server_port):
            data.server.sni = s.tls_name  # one field sets both the SNI and the name verified

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not flow.live or flow.response or self.settings is None:
            return
        try:
            plan = forward.request_changes(flow.request.path, flow.request.headers, self.settings)
        except route.Refused as refused:
            flow.request.stream = False  # mitmproxy cannot answer a request it already streams
            flow.response = json_response(refused.status, refused.message)
            return
        flow.request.path = plan.target
        for name, value in plan.headers.items():
            if value is None:
                flow.request.headers.pop(name, None)
            else:
                flow.request.headers[name] = value
        if plan.set_cookie:
            flow.metadata["bridge_set_cookie"] = plan.set_cookie

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if not flow.live or flow.response is None or self.settings is None:
            return
        s, headers = self.settings, flow.response.headers
        if "location" in headers:
            headers["location"] = route.rewrite_location(headers["location"], s.prefix, s.hub_origins)
        if cookies := headers.get_all("set-cookie"):
            headers.set_all("set-cookie", [route.rewrite_set_cookie(c, s.prefix) for c in cookies])
        if cookie := flow.metadata.get("bridge_set_cookie"):
            headers.add("set-cookie", cookie)

    def response(self, flow: http.HTTPFlow) -> None:
        s = self.settings
        if s and s.hub_token and flow.response.content and "text/html" in flow.response.headers.get("content-type", ""):
            # JupyterHub writes the token that authenticated a page into its page config.
            flow.response.content = flow.response.content.replace(s.hub_token.encode(), b"")
        self._redact(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._redact(flow)

    def _redact(self, flow: http.HTTPFlow) -> None:
        # The request has gone upstream (or was refused): what stays in the flow (mitmweb, `-w` files, the
        # log) needs no usable token.
        if auth := flow.request.headers.get("authorization"):
            flow.request.headers["authorization"] = guard.redact_authorization(auth)
        if "token" in flow.request.path:
            flow.request.path = credentials.redact_query_tokens(flow.request.path)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        # mitmproxy keeps every message of an open WebSocket; kernels stay open for hours.
        # Keep the last one: mitmdump's own output reads it after this hook.
        assert flow.websocket is not None
        del flow.websocket.messages[:-1]
