"""A stopped server is a pause: when the hub answers for the user's server, start it once, send the request
again, and answer with what the server says."""

import weakref
from collections.abc import Awaitable

from mitmproxy import http

from addon.core import forward
from addon.core import guard
from addon.hub import api as hub
from addon.core import lifecycle
from addon.core import route
from addon.config import Config
from addon.rewrite import BRIDGES
from addon.rewrite import own_response
from addon.rewrite import upstream_headers


MAY_BE_STOPPED = lifecycle.STOPPED_STATUSES | {404}  # and a named server's 404 (_named_server_stopped)


def from_hub(answer: hub.Answer) -> http.Response:
    response = http.Response.make(answer.status, b"", [(k.encode(), v.encode("latin-1")) for k, v in answer.headers])
    response.raw_content = answer.body  # as sent, still in its Content-Encoding
    response.headers["content-length"] = str(len(answer.body))
    return response


def hub_answered(r: http.Response, base_url: str) -> bool:
    """The hub answered for the user's server: it is stopped, pending or crashed."""
    if r.status_code not in lifecycle.STOPPED_STATUSES:
        return False  # the server's own answer (most are): no header read
    return lifecycle.stopped_answer(r.status_code, forward.header_table(r.headers.fields),
                                    r.headers.get_all("set-cookie"), base_url)


def is_websocket(request: http.Request) -> bool:
    return request.headers.get("upgrade", "").lower() == "websocket"


def resent_headers(request: http.Request, s) -> list[tuple[str, str]]:
    """The headers of a request sent again after the start: with the access token in use now (it may have been
    renewed during the start), never another credential of the bridge's."""
    headers = upstream_headers(request)
    if not s.server_token:
        return headers
    return [(k, v) for k, v in headers if k.lower() != "authorization"] + [("Authorization", f"token {s.server_token}")]


class Autostart:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.starter: lifecycle.Starter | None = None
        # mitmproxy reads the hub's body into the flow's response after `responseheaders`, also into an answer
        # that hook put there: `response` puts the answer's own body back.
        self.bodies: weakref.WeakKeyDictionary[http.HTTPFlow, bytes] = weakref.WeakKeyDictionary()

    def configure(self, updated: set[str]) -> None:
        s = self.config.settings
        if s is not None and self.starter is None:
            # The start reads the settings when it begins: a renewed token is the one used.
            self.starter = lifecycle.Starter(
                lambda: lifecycle.start_and_wait(self.config.hub, self.config.settings), s.start_timeout)
        elif s is not None:
            self.starter.timeout = s.start_timeout

    # The hooks below have work for few flows: they return at once (no coroutine) for the others.

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """A request that arrives while a start is under way waits for it."""
        if not flow.live or flow.response or self.starter is None or not self.starter.busy:
            return None
        return self._wait_for_start(flow)

    async def _wait_for_start(self, flow: http.HTTPFlow) -> None:
        try:
            await self.starter.run()
        except lifecycle.StartFailed as e:
            flow.request.stream = False
            flow.response = own_response(flow, 503, str(e))

    def responseheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        r, s = flow.response, self.config.settings
        if not flow.live or r is None or s is None or r.status_code not in MAY_BE_STOPPED:
            return None
        return self._start_if_stopped(flow)

    async def _start_if_stopped(self, flow: http.HTTPFlow) -> None:
        s = self.config.settings
        if not (hub_answered(flow.response, s.base_url) or await self._named_server_stopped(flow.response)):
            return
        replacement = await self._after_start(flow)
        self.bodies[flow] = replacement.raw_content or b""
        flow.response = replacement

    async def _named_server_stopped(self, r: http.Response) -> bool:
        """While the user's default server runs, the hub's proxy sends a stopped named server's URLs to it, and it
        answers 404: only the hub knows that the named server is stopped."""
        s = self.config.settings
        if r.status_code != 404 or not s.named_server or not s.hub_token:
            return False
        try:
            found = await lifecycle.server_state(self.config.hub, s.username, s.named_server)
        except hub.HubError:
            return False
        return found is not None and found != "ready"

    def response(self, flow: http.HTTPFlow) -> None:
        if (body := self.bodies.pop(flow, None)) is not None and flow.response:
            flow.response.raw_content = body
            flow.response.headers["content-length"] = str(len(body))

    async def _after_start(self, flow: http.HTTPFlow) -> http.Response:
        s, request = self.config.settings, flow.request
        if why := lifecycle.cannot_start(s):
            return own_response(flow, 503, why)
        if not flow.metadata.get(BRIDGES):
            return own_response(flow, 503, guard.not_started_for_others(s))
        try:
            await self.starter.run()
        except lifecycle.StartFailed as e:
            return own_response(flow, 503, str(e))
        if request.stream or request.raw_content is None or is_websocket(request):
            return own_response(flow, 503, "Your JupyterHub server was not running; the bridge has started it. "
                                     "Send the request again (the bridge could not keep this one).")
        try:
            answer = await self.config.hub.request(request.method, request.path,
                                                   resent_headers(request, self.config.settings), request.raw_content)
        except hub.HubError as e:
            return own_response(flow, 503, f"Your JupyterHub server has been started, but sending the request to it "
                                     f"failed: {e.message}. Send it again.")
        r = from_hub(answer)
        if hub_answered(r, s.base_url):
            return own_response(flow, 503, f"Your JupyterHub server stopped again right after its start: see "
                                     f"{s.hub_home}.")
        if "text/html" in r.headers.get("content-type", ""):
            # A page: the browser loads it again through the bridge, which removes the hub token from pages.
            return http.Response.make(307, b"", {"Location": route.to_client_path(request.path, s.prefix)})
        return r
