"""The bridge's rewriting of each exchange: a request on its way up (guard, route, credentials), the answer on
its way back (Location, cookies, the hub token out of pages), and what stays of both in a flow."""

import json
import logging

from mitmproxy import ctx
from mitmproxy import http
from mitmproxy import tls
from mitmproxy.proxy import server_hooks
from OpenSSL import crypto
from mitmproxy.utils import human

from addon.core import credentials
from addon.core import forward
from addon.core import guard
from addon.core import route
from addon.config import Config


SERVER = "jupyterhub-bridge"  # the Server header of the bridge's own answers, for people; an upstream one is dropped
OWN = "bridge_answer"  # flow.metadata: the bridge made this flow's answer itself (the diagnosis trusts no header)
BRIDGES = "bridge_client"  # flow.metadata: the client presented the bridge's own token or browser cookie
PAGE = "bridge_page"  # flow.metadata: whether RewriteResponse took the answer for a page


def own_response(flow: http.HTTPFlow, status: int, message: str) -> http.Response:
    """An answer the bridge gives itself, as Jupyter's JSON errors look; the flow is marked as answered by it."""
    flow.metadata[OWN] = True
    return http.Response.make(status, json.dumps({"message": message}),
                              {"Content-Type": "application/json", "Server": SERVER})


def login_response(plan: forward.Redirect) -> http.Response:
    """A browser's login: on to the same URL without the local token in it (with a ticket, which flows show
    redacted), with the cookie where it belongs."""
    response = http.Response.make(302, b"", {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                             "Server": SERVER})
    secrets = {"Location": (plan.location, credentials.redact_query_tokens(plan.location))}
    if plan.set_cookie:
        secrets["Set-Cookie"] = (plan.set_cookie, guard.redact_cookie(plan.set_cookie))
    response.headers = WireHeaders(response.headers.fields, secrets)
    return response


class WireHeaders(http.Headers):
    """Headers with credentials (a request's Authorization, the browser's cookie and ticket) redacted for every
    reader of the flow (mitmweb's views, `-w` files and the log, also while the request is in flight) and in
    full only in the bytes that mitmproxy sends, which it assembles with `bytes(headers)`."""

    def __init__(self, fields: tuple[tuple[bytes, bytes], ...], secrets: dict[str, tuple[str, str]]) -> None:
        """`secrets`: header name -> (its value on the wire, the value shown); each is set as `headers[name] =`
        sets it."""
        super().__init__(forward.changed_fields(fields, {name: shown for name, (_, shown) in secrets.items()}))
        # (lower-case name, value shown) -> the value sent: a field still showing it is sent with the secret
        self.wire = {(name.lower().encode(), wire_bytes(shown)): wire_bytes(value)
                     for name, (value, shown) in secrets.items()}

    def wire_fields(self) -> tuple[tuple[bytes, bytes], ...]:
        wire = self.wire
        return tuple((name, wire.get((name.lower(), value), value)) for name, value in self.fields)

    def on_the_wire(self) -> http.Headers:
        return http.Headers(self.wire_fields())

    def __bytes__(self) -> bytes:
        """As `http.Headers` assembles itself, with the secrets in, and without a second Headers object."""
        fields = self.wire_fields()
        return b"\r\n".join(b": ".join(field) for field in fields) + b"\r\n" if fields else b""


def wire_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")  # as mitmproxy's Headers store a str


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

    def __init__(self, config: Config, browsers: guard.BrowserAccess | None = None) -> None:
        self.config = config
        self.browsers = browsers or guard.BrowserAccess()  # this run's browser cookie and spent tickets

    def load(self, loader) -> None:
        logging.getLogger("mitmproxy.proxy.server").addFilter(one_line_for_trailers)

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        s = self.config.settings
        if s and data.server.address == (s.server_host, s.server_port):
            data.server.sni = s.tls_name  # one field sets both the SNI and the name verified

    def tls_start_server(self, data: tls.TlsData) -> None:
        """A pinned certificate that is not a root (the hub's own, or an intermediate) is an anchor as it is, as
        for the Hub client (addon/hub/api.py): the upstream context mitmproxy's TlsConfig made just before."""
        if data.ssl_conn is not None:
            data.ssl_conn.get_context().get_cert_store().set_flags(crypto.X509StoreFlags.PARTIAL_CHAIN)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        s = self.config.settings
        if not flow.live or flow.response or s is None:
            return
        headers = forward.header_table(flow.request.headers.fields)  # one pass; each Headers lookup lowers all names
        try:
            plan = forward.request_changes(flow.request.path, headers, s, self.browsers)
        except route.Refused as refused:
            flow.request.stream = False  # mitmproxy cannot answer a request it already streams
            message = refused.message
            if isinstance(refused, guard.NoAccessToken) and self.config.access_problem:
                message = refused.because(self.config.access_problem)  # the hub's reason, as the log says it
            flow.response = own_response(flow, refused.status, message)
            return
        if isinstance(plan, forward.Redirect):
            flow.request.stream = False
            flow.response = login_response(plan)
            flow.metadata[OWN] = True
            return
        flow.request.path = plan.target
        fields = forward.changed_fields(flow.request.headers.fields, plan.headers)  # one pass, one new tuple
        if authorization := plan.headers.get("Authorization") or headers.get("authorization"):
            flow.request.headers = WireHeaders(fields, {
                "Authorization": (authorization, guard.redact_authorization(authorization))})
        else:
            flow.request.headers.fields = fields
        flow.metadata[BRIDGES] = plan.bridges  # Autostart starts a stopped server only for the bridge's clients


class RewriteResponse:
    """Answers as a client of the bridge must see them: its own URLs, and no hub token."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        s = self.config.settings
        if not flow.live or flow.response is None or s is None:
            return
        headers, table = flow.response.headers, forward.header_table(flow.response.headers.fields)
        if "server" in table and not flow.metadata.get(OWN) and SERVER in table["server"].lower():
            headers.pop("server")  # upstream, posing as the bridge: its messages are not the bridge's
        if "location" in table:
            headers["location"] = route.rewrite_location(table["location"], s.prefix, s.hub_origins)
        if "set-cookie" in table:
            cookies = headers.get_all("set-cookie")  # each one apart: cookies are not folded
            headers.set_all("set-cookie", [route.rewrite_set_cookie(c, s.prefix) for c in cookies])
        flow.metadata[PAGE] = page = credentials.is_page(table.get("content-type", ""))
        if s.hub_token and page:
            headers["Referrer-Policy"] = "same-origin"  # the browser's host name stays with the bridge
            if flow.response.raw_content is None and streams(headers):  # a body to come, which mitmproxy streams
                flow.response.stream = page_stream(flow, page_token(s))

    def response(self, flow: http.HTTPFlow) -> None:
        """A page held whole (or an answer an addon made): the token sent upstream out, decoded first."""
        s, r = self.config.settings, flow.response
        if not (s and s.hub_token and r.raw_content):
            return
        page = flow.metadata.get(PAGE)  # responseheaders' answer; an answer that had no such hook is looked at
        if not (credentials.is_page(r.headers.get("content-type", "")) if page is None else page):
            return
        try:
            content = credentials.decoded(r.headers.get("content-encoding", ""), r.raw_content)
        except ValueError:
            flow.response = own_response(flow, 502, undecodable(r.headers.get("content-encoding", "")))
            return
        if (token := page_token(s).encode()) in content:
            r.headers.pop("content-encoding", None)
            r.content = content.replace(token, b"")  # Content-Length follows


def page_token(s) -> str:
    """The token a page may carry: the one that authenticated it upstream, the access token (the hub token
    never goes upstream; before the access token is there, no request of the bridge's goes)."""
    return s.server_token or s.hub_token


def streams(headers: http.Headers) -> bool:
    """Whether mitmproxy streams this body (`stream_large_bodies`): when it is larger, or of unknown length
    (mitmproxy would start streaming it midway, where no hook sees it)."""
    limit = human.parse_size(ctx.options.stream_large_bodies)
    length = headers.get("content-length", "")
    return limit is not None and not (length.isdigit() and int(length) <= limit)


def page_stream(flow: http.HTTPFlow, hub_token: str):
    """The filter a streaming page passes through: the hub token blanked (JupyterHub writes the token that
    authenticated a page into its page config), decoded first when the hub compressed it although asked for
    identity. A page in a coding the bridge cannot undo becomes a 502."""
    response = flow.response
    try:
        decode = credentials.decoder(response.headers.get("content-encoding", ""))
    except ValueError:
        return refusal_stream(flow, undecodable(response.headers.get("content-encoding", "")))
    if decode:
        response.headers.pop("content-encoding")
        response.headers.pop("content-length", None)
        response.headers["transfer-encoding"] = "chunked"
    blank = credentials.BodyFilter(hub_token, decode)
    # An empty chunk would end a chunked body: mitmproxy sends each chunk it is given.
    return lambda chunk: [out] if (out := blank(chunk)) else []


def undecodable(content_encoding: str) -> str:
    return (f"The hub sent a page in a Content-Encoding the bridge cannot undo ({credentials.quoted(content_encoding)}"
            "), so it cannot remove your hub token from it. Ask the hub's admins why it ignores "
            "'Accept-Encoding: identity'.")


def refusal_stream(flow: http.HTTPFlow, message: str):
    """A streaming answer replaced, headers and body, by the bridge's own."""
    response, own = flow.response, own_response(flow, 502, message)
    response.status_code, response.reason, response.headers = own.status_code, own.reason, own.headers
    return lambda chunk: [] if chunk else [own.content]


class Redact:
    """The request has gone upstream (or was refused): what stays in the flow (mitmweb, `-w` files, the log)
    needs no usable token."""

    def response(self, flow: http.HTTPFlow) -> None:
        redact_flow(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        redact_flow(flow)


def redact_flow(flow: http.HTTPFlow) -> None:
    if "?" in flow.request.path:
        flow.request.path = credentials.redact_query_tokens(flow.request.path)
    if isinstance(flow.request.headers, WireHeaders):
        return  # forwarded by RewriteRequest: its Authorization shown redacted, its Referer without tokens
    if auth := flow.request.headers.get("authorization"):
        flow.request.headers["authorization"] = guard.redact_authorization(auth)
    if "?" in (referer := flow.request.headers.get("referer", "")):  # of a request refused
        flow.request.headers["referer"] = credentials.redact_query_tokens(referer)
