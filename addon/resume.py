"""Kernel and terminal WebSockets the bridge holds across upstream drops and kernel restarts (issue 30): their
upgrades go to the bridge's own relay on 127.0.0.1 (addon/relay.py says why, and why what the IDE gets is right);
a kernel restarted through the bridge moves its held sockets to new connections before the IDE hears the 200."""

import asyncio
import time
from collections.abc import Awaitable

from mitmproxy import http

from addon import relay
from addon.autostart import is_websocket
from addon.config import Config
from addon.core import resume
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.rewrite import BRIDGES
from addon.rewrite import WireHeaders
from addon.rewrite import upstream_headers

RELAYED = "bridge_relayed"  # flow.metadata: the upgrade went to the relay
SHOWN_TICKET = "(single-use, redacted)"


class Resume:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.relay: relay.Relay | None = None

    async def running(self) -> None:
        self.relay = relay.Relay(lambda: self.config.settings, lambda: self.config.hub.tls,
                                 lambda: self.config.logged_out)
        await self.relay.start()

    async def done(self) -> None:
        if self.relay:
            await self.relay.stop()

    def request(self, flow: http.HTTPFlow) -> None:
        """An upgrade to a kernel's channels or a terminal: to the relay, with a ticket and without the credential
        (the relay adds it when it dials the hub)."""
        s, request = self.config.settings, flow.request
        if self.relay is None or s is None or not flow.live or flow.response or not is_websocket(request):
            return
        channel = resume.held_channel(request.path, s.prefix)
        if channel is None:
            return
        target = resume.with_session_id(request.path)[0] if channel.kind == "kernel" else request.path
        sent = upstream_headers(request)
        authorization = next((v for k, v in sent if k.lower() == "authorization"), None)
        access = bool(flow.metadata.get(BRIDGES)) and authorization == f"token {s.server_token}"
        ticket = self.relay.admit(relay.Admission(
            channel, target, [(k, v) for k, v in sent if k.lower() not in relay.NOT_FORWARDED],
            None if access else authorization, access, note(flow), time.monotonic()))
        # What goes to the relay, and what flows show: the credential redacted, the ticket too.
        request.headers = WireHeaders(request.headers.fields, {relay.TICKET_HEADER: (ticket, SHOWN_TICKET)})
        request.data.scheme, request.data.host, request.data.port = b"http", "127.0.0.1", self.relay.port
        flow.metadata[RELAYED] = (s.server_host, s.server_port)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """The flow names the hub again, as for every other request (the relay's address is no one's business)."""
        if hub := flow.metadata.pop(RELAYED, None):
            flow.request.data.scheme, (flow.request.data.host, flow.request.data.port) = b"https", hub

    def response(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        s, r = self.config.settings, flow.response
        if self.relay is None or s is None or r is None or r.status_code != 200 or flow.request.method != "POST":
            return None
        kernel = resume.restarted_kernel(flow.request.method, flow.request.path, s.prefix)
        return self._restarted(kernel) if kernel else None

    async def _restarted(self, kernel: str) -> None:
        """The IDE hears the restart's 200 once its held sockets are on new connections: its next cell goes to
        channels that work."""
        try:
            await asyncio.wait_for(self.relay.restarted(kernel), relay.RESTART_DIAL + relay.DRAIN_OLD)
        except TimeoutError:
            pass  # the old connections stay; the pings judge them


def note(flow: http.HTTPFlow):
    """What the relay says about a held socket, as the flow's comment (mitmweb)."""
    def say(text: str) -> None:
        flow.comment = printable(text, LINE)
    return say
