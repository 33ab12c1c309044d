"""The mitmproxy addon: declares the settings as options and wires the hooks to the pure rooms."""

import json
import logging
import weakref
from collections.abc import Awaitable
from typing import Optional

from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy import tls
from mitmproxy.proxy import server_hooks

from addon import credentials
from addon import diagnose
from addon import forward
from addon import guard
from addon import history
from addon import hub
from addon import lifecycle
from addon import route
from addon import settings
from addon.settings import Settings

logger = logging.getLogger(__name__)


def json_response(status: int, message: str) -> http.Response:
    return http.Response.make(status, json.dumps({"message": message}),
                              {"Content-Type": "application/json", "Server": diagnose.OWN_SERVER})


def answer(flow: http.HTTPFlow, own_body: bytes | None = None) -> diagnose.Answer:
    """A failed flow's response as the diagnosis reads it."""
    r = flow.response
    assert r is not None
    if own_body is not None:
        body = own_body.decode(errors="replace")
    else:
        body = r.get_text(strict=False)[:8192] if r.content else ""
    return diagnose.Answer(r.status_code, r.headers, body or "", method=flow.request.method,
                           websocket=flow.request.headers.get("upgrade", "").lower() == "websocket",
                           credential="authorization" in flow.request.headers,
                           origin="origin" in flow.request.headers)


def from_hub(answer: hub.Answer) -> http.Response:
    response = http.Response.make(answer.status, b"", [(k.encode(), v.encode("latin-1")) for k, v in answer.headers])
    response.raw_content = answer.body  # as sent, still in its Content-Encoding
    response.headers["content-length"] = str(len(answer.body))
    return response


def hub_answered(r: http.Response, s: Settings) -> bool:
    """The hub answered for the user's server: it is stopped, pending or crashed."""
    return lifecycle.stopped_answer(r.status_code, r.headers, r.headers.get_all("set-cookie"), s.base_url)


class RestoreBody:
    """Puts back the body of an answer the bridge made in `responseheaders`: mitmproxy reads the hub's body into
    the flow's response after that hook, and `response` is the first hook after the read."""

    def __init__(self) -> None:
        self.bodies: weakref.WeakKeyDictionary[http.HTTPFlow, bytes] = weakref.WeakKeyDictionary()

    def response(self, flow: http.HTTPFlow) -> None:
        if (body := self.bodies.pop(flow, None)) is not None and flow.response:
            flow.response.raw_content = body
            flow.response.headers["content-length"] = str(len(body))


class Bridge:
    """Serves one user's Jupyter server behind JupyterHub as a plain Jupyter server on the loopback."""

    settings: Settings | None = None

    def __init__(self) -> None:
        self.history = history.History()
        self.warned = diagnose.Once()  # one log line per cause and minute: IDEs retry in a loop
        self.hub_cert = None  # (address, certificate) of the last failed TLS handshake
        self.restore = RestoreBody()
        self.addons = [self.restore]  # its `response` runs after this addon's
        self.starter: lifecycle.Starter | None = None

    def load(self, loader) -> None:
        for o in settings.OPTIONS:
            if o.secret:
                loader.add_option(o.name, Optional[str], None, f"{o.help} Default: ${o.env}.")
            else:
                loader.add_option(o.name, str, o.env_default(), o.help)

    def configure(self, updated: set[str]) -> None:
        if updated & settings.OPTION_NAMES:
            try:
                s = settings.resolve({name: getattr(ctx.options, name) for name in settings.OPTION_NAMES})
            except ValueError as e:
                raise exceptions.OptionsError(str(e)) from e
            if not s.username:
                raise exceptions.OptionsError("JUPYTER_USERNAME is not set: start the bridge with ./run.sh, which "
                                              "asks the hub whose token JUPYTERHUB_API_TOKEN is, or set it.")
            self.settings, self.hub_api = s, hub.Hub(s)
            self.starter = lifecycle.Starter(lambda: lifecycle.start_and_wait(self.hub_api, s), s.start_timeout)

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

    # The two hooks below return a coroutine only when they must wait for a server start (mitmproxy awaits what
    # a hook returns), so that every other request passes without a trip through the event loop.
    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
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
        if self.starter and self.starter.busy:
            return self._wait_for_start(flow)
        return None

    async def _wait_for_start(self, flow: http.HTTPFlow) -> None:
        try:
            await self.starter.run()
        except lifecycle.StartFailed as e:
            flow.request.stream = False
            flow.response = json_response(503, str(e))

    def responseheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        if not flow.live or flow.response is None or self.settings is None:
            return None
        if hub_answered(flow.response, self.settings):
            return self._answer_stopped_server(flow)
        s, headers = self.settings, flow.response.headers
        if "location" in headers:
            headers["location"] = route.rewrite_location(headers["location"], s.prefix, s.hub_origins)
        if cookies := headers.get_all("set-cookie"):
            headers.set_all("set-cookie", [route.rewrite_set_cookie(c, s.prefix) for c in cookies])
        if cookie := flow.metadata.get("bridge_set_cookie"):
            headers.add("set-cookie", cookie)
        return None

    async def _answer_stopped_server(self, flow: http.HTTPFlow) -> None:
        """The hub answered for a server that is not running: start it, send the request again, answer with that."""
        replacement = await self._after_start(flow)
        self.restore.bodies[flow] = replacement.raw_content or b""
        flow.response = replacement
        self.responseheaders(flow)

    async def _after_start(self, flow: http.HTTPFlow) -> http.Response:
        s, request = self.settings, flow.request
        if why := lifecycle.cannot_start(s):
            return json_response(503, why)
        try:
            await self.starter.run()
        except lifecycle.StartFailed as e:
            return json_response(503, str(e))
        if request.stream or request.raw_content is None or request.headers.get("upgrade", "").lower() == "websocket":
            return json_response(503, "Your JupyterHub server was not running; the bridge has started it. "
                                      "Send the request again (the bridge could not keep this one).")
        try:
            answer = await self.hub_api.request(request.method, request.path, list(request.headers.items(multi=True)),
                                            request.raw_content)
        except hub.HubError as e:
            return json_response(503, f"Your JupyterHub server has been started, but sending the request to it "
                                      f"failed: {e.message}. Send it again.")
        r = from_hub(answer)
        if hub_answered(r, s):
            return json_response(503, f"Your JupyterHub server stopped again right after its start: see "
                                      f"{lifecycle.hub_home(s)}.")
        if "text/html" in r.headers.get("content-type", ""):
            # A page: the browser loads it again through the bridge, which removes the hub token from pages.
            return http.Response.make(307, b"", {"Location": route.to_client_path(request.path, s.prefix)})
        return r

    def response(self, flow: http.HTTPFlow) -> None:
        s = self.settings
        if s and s.hub_token and "text/html" in flow.response.headers.get("content-type", "") and flow.response.content:
            # JupyterHub writes the token that authenticated a page into its page config.
            flow.response.content = flow.response.content.replace(s.hub_token.encode(), b"")
        self._redact(flow)
        if flow.response.status_code >= 300:
            # An answer the bridge made in `responseheaders` gets its body back only after this hook.
            self._diagnose(flow, answer(flow, self.restore.bodies.get(flow)))
        self.history.flow_finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._redact(flow)
        if flow.response is None and flow.error:
            self._diagnose(flow, diagnose.Answer(None, error=flow.error.msg, method=flow.request.method))
        self.history.flow_finished(flow)

    def tls_failed_server(self, data: tls.TlsData) -> None:
        # OpenSSL keeps the chain it did not trust: the diagnosis names its issuer and names.
        chain = data.ssl_conn.get_peer_cert_chain() if data.ssl_conn else None
        if chain:
            self.hub_cert = (data.conn.address, chain[0].to_cryptography())

    def _diagnose_output(self, flow: http.HTTPFlow) -> None:
        assert flow.websocket is not None
        last = flow.websocket.messages[-1]
        if not last.from_client and (at := last.content.find(diagnose.IOPUB_MARK)) >= 0:
            text = last.content[at:at + 600].decode(errors="replace")
            self._diagnose(flow, diagnose.Answer(101, body=text, websocket=True))

    def _diagnose(self, flow: http.HTTPFlow, answer: diagnose.Answer) -> None:
        if self.settings is None:
            return
        address, cert = self.hub_cert or (None, None)
        facts = diagnose.facts(self.settings, cert if address == (flow.request.host, flow.request.port) else None)
        found = diagnose.diagnose(answer, facts)
        if found is None:
            return
        flow.comment = found.text
        flow.marked = ":warning:"
        if self.warned(found.key):
            logger.warning(f"{flow.request.method} {flow.request.path}: {found.text}")

    def _redact(self, flow: http.HTTPFlow) -> None:
        # The request has gone upstream (or was refused): what stays in the flow (mitmweb, `-w` files, the
        # log) needs no usable token.
        if auth := flow.request.headers.get("authorization"):
            flow.request.headers["authorization"] = guard.redact_authorization(auth)
        if "token" in flow.request.path:
            flow.request.path = credentials.redact_query_tokens(flow.request.path)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        # mitmproxy keeps every message of an open WebSocket; kernels stay open for hours.
        self._diagnose_output(flow)
        self.history.websocket_message(flow)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self.history.flow_finished(flow)
