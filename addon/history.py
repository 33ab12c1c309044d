"""What mitmproxy may keep of a long session: WebSocket message history and, in mitmweb, finished flows.

mitmproxy keeps every message of an open WebSocket in `flow.websocket.messages`, and mitmweb's View keeps
every flow until the user clears it. A kernel WebSocket stays open for hours, so both are trimmed here:
- mitmdump: the last message only (its own output reads it after our hook; never trim to zero);
- mitmweb: the last `jupyter_proxy_web_ws_messages` messages (at most WEB_WS_BYTES of them) per WebSocket,
  and the last `jupyter_proxy_web_flows` finished flows (removed with the View's `view.flows.remove`)."""

import collections
from collections.abc import Sequence

from mitmproxy import ctx
from mitmproxy import http

from addon.config import Config

WEB_WS_BYTES = 4 * 1024 * 1024  # mitmweb's recent history of one WebSocket, in bytes of content
REMOVE_COMMAND = "view.flows.remove"  # exists only where there is a View (mitmweb)


def first_kept(sizes: Sequence[int], max_messages: int, max_bytes: int) -> int:
    """Index of the oldest message to keep: the most recent ones, at most max_messages of them and at most
    max_bytes together, but always the last one."""
    n = len(sizes)
    start, total = n - 1, sizes[-1] if n else 0
    floor = max(0, n - max_messages)
    while start > floor and total + sizes[start - 1] <= max_bytes:
        start -= 1
        total += sizes[start]
    return max(start, 0)


class FinishedFlows:
    """The most recent finished flows, oldest first; add() returns the ones that fell out."""

    def __init__(self, limit: int):
        self.limit = limit
        self._flows: collections.OrderedDict[str, object] = collections.OrderedDict()

    def add(self, flow_id: str, flow: object) -> list:
        self._flows[flow_id] = flow
        self._flows.move_to_end(flow_id)
        evicted = []
        while len(self._flows) > self.limit:
            evicted.append(self._flows.popitem(last=False)[1])
        return evicted

    def __len__(self) -> int:
        return len(self._flows)


class History:
    """Trims what mitmproxy keeps; decides on first use whether it runs under mitmweb."""

    web: bool | None = None
    ws_messages: int = 1
    finished: FinishedFlows | None = None

    def __init__(self, config: Config) -> None:
        self.config = config

    def _start(self) -> None:
        self.web = REMOVE_COMMAND in ctx.master.commands.commands
        if self.web:
            s = self.config.settings
            self.ws_messages = s.web_ws_messages
            self.finished = FinishedFlows(s.web_flows)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        messages = flow.websocket.messages
        if self.web is None:
            self._start()
        if not self.web:
            del messages[:-1]
        elif len(messages) > 1:
            recent = messages[-self.ws_messages:]
            del messages[:len(messages) - len(recent) + first_kept([len(m.content) for m in recent],
                                                                    self.ws_messages, WEB_WS_BYTES)]

    def response(self, flow: http.HTTPFlow) -> None:
        self.flow_finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self.flow_finished(flow)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self.flow_finished(flow)

    def flow_finished(self, flow: http.HTTPFlow) -> None:
        """After `response` (not for a WebSocket's 101), `error` and `websocket_end`."""
        if self.web is None:
            self._start()
        if not self.web or (flow.websocket is not None and flow.websocket.timestamp_end is None):
            return  # a WebSocket's 101: it finishes at websocket_end
        evicted = [f for f in self.finished.add(flow.id, flow) if not f.live]
        if evicted:
            ctx.master.commands.call(REMOVE_COMMAND, evicted)
