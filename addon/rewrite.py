"""The bridge's rewriting of each exchange: a request on its way up (guard, route, credentials), the answer on
its way back (Location, cookies, the hub token out of pages), and what stays of both in a flow."""

import json
import logging

from mitmproxy import http
from mitmproxy.proxy import server_hooks

from addon.core import credentials
from addon.core import diagnose
from addon.core import forward
from addon.core import guard
from addon.core import route
from addon.config import Config


def own_response(status: int, message: str) -> http.Response:
    """An answer the bridge gives itself, as Jupyter's JSON errors look."""
    return http.Response.make(status, json.dumps({"message": message}),
                              {"Content-Type": "application/json", "Server": diagnose.OWN_SERVER})


BRIDGES = "bridge_client"  # flow.metadata: the client presented the bridge's own token or browser cookie


def login_response(plan: forward.Redirect) -> http.Response:
    """A browser's login: on to the same URL without the local token in it, with the cookie where it belongs."""
    response = http.Response.make(302, b"", {"Location": plan.location, "Cache-Control": "no-store",
                                             "Referrer-Policy": "no-referrer", "Server": diagnose.OWN_SERVER})
    if plan.set_cookie:
        response.headers = WireHeaders(response.headers.fields, "Set-Cookie", plan.set_cookie,
                                       guard.redact_cookie(plan.set_cookie))
    return response


class WireHeaders(http.Headers):
    """Headers with one credential (a request's Authorization, the browser's cookie) redacted for every reader
    of the flow (mitmweb's views, `-w` files and the log, also while the request is in flight) and in full only
    in the bytes that mitmproxy sends, which it assembles with `bytes(headers)`."""

    def __init__(self, fields: tuple[tuple[bytes, bytes], ...], name: str, value: str, shown: str) -> None:
        super().__init__(fields)
        self.name, self.value = name, value
        self[name] = shown

    def on_the_wire(self) -> http.Headers:
        wire = http.Headers(self.fields)
        wire[self.name] = self.value
        return wire

    def __bytes__(self) -> bytes:
        return bytes(self.on_the_wire())


def upstream_headers(request: http.Request) -> list[tuple[str, str]]:
    """A request's headers as they go upstream, credential included (to send it again)."""
    headers = request.headers
    return list((headers.on_the_wire() if isinstance(headers, WireHeaders) else headers).items(multi=True))


def one_line_for_trailers(record: logging.LogRecord) -> bool:
    """mitmproxy cannot read an HTTP/1 request's trailers: it leaves the request unanswered and logs a
    traceback (as "mitmproxy has crashed!"). One line says it."""
    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, NotImplementedError) and "trailers" in str(error):
        record.msg, record.args, record.exc_info, record.exc_text = (
            "A client sent a chunked request with trailers, which mitmproxy cannot read: it is not answered.",
            (), None, None)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True


class RewriteRequest:
    """Who may use the bridge, and where and with which credential a request goes upstream."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def load(self, loader) -> None:
        logging.getLogger("mitmproxy.proxy.server").addFilter(one_line_for_trailers)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        s = self.config.settings
        if s and data.server.address == (s.server_host, s.server_port):
            data.server.sni = s.tls_name  # one field sets both the SNI and the name verified

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        s = self.config.settings
        if not flow.live or flow.response or s is None:
            return
        try:
            plan = forward.request_changes(flow.request.path, flow.request.headers, s)
        except route.Refused as refused:
            flow.request.stream = False  # mitmproxy cannot answer a request it already streams
            flow.response = own_response(refused.status, refused.message)
            return
        if isinstance(plan, forward.Redirect):
            flow.request.stream = False
            flow.response = login_response(plan)
            return
        flow.request.path = plan.target
        for name, value in plan.headers.items():
            if value is None:
                flow.request.headers.pop(name, None)
            else:
                flow.request.headers[name] = value
        if authorization := flow.request.headers.get("authorization"):
            flow.request.headers = WireHeaders(flow.request.headers.fields, "Authorization", authorization,
                                               guard.redact_authorization(authorization))
        flow.metadata[BRIDGES] = plan.bridges  # Autostart starts a stopped server only for the bridge's clients


class RewriteResponse:
    """Answers as a client of the bridge must see them: its own URLs, and no hub token."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        s = self.config.settings
        if not flow.live or flow.response is None or s is None:
            return
        headers = flow.response.headers
        if "location" in headers:
            headers["location"] = route.rewrite_location(headers["location"], s.prefix, s.hub_origins)
        if cookies := headers.get_all("set-cookie"):
            headers.set_all("set-cookie", [route.rewrite_set_cookie(c, s.prefix) for c in cookies])
        if s.hub_token and "text/html" in headers.get("content-type", "") and flow.response.status_code < 400:
            # JupyterHub writes the token that authenticated a page into its page config. A page larger than
            # JUPYTER_PROXY_STREAM_BODIES would stream past `response`: every page goes through the filter,
            # which needs it uncompressed (pages are asked for so); a compressed one is left to `response`.
            if headers.get("content-encoding", "identity").lower() == "identity":
                flow.response.stream = credentials.BodyFilter(s.hub_token)
            headers["Referrer-Policy"] = "same-origin"  # the browser's host name stays with the bridge

    def response(self, flow: http.HTTPFlow) -> None:
        s = self.config.settings
        if s and s.hub_token and "text/html" in flow.response.headers.get("content-type", "") and flow.response.content:
            # JupyterHub writes the token that authenticated a page into its page config.
            flow.response.content = flow.response.content.replace(s.hub_token.encode(), b"")


class Redact:
    """The request has gone upstream (or was refused): what stays in the flow (mitmweb, `-w` files, the log)
    needs no usable token."""

    def response(self, flow: http.HTTPFlow) -> None:
        redact(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        redact(flow)


def redact(flow: http.HTTPFlow) -> None:
    if auth := flow.request.headers.get("authorization"):
        flow.request.headers["authorization"] = guard.redact_authorization(auth)
    if "token" in flow.request.path.lower():
        flow.request.path = credentials.redact_query_tokens(flow.request.path)
    if "token" in (referer := flow.request.headers.get("referer", "")).lower():  # of a request refused
        flow.request.headers["referer"] = credentials.redact_query_tokens(referer)
