"""What mitmproxy may keep of a long session (addon/history.py): pure rules, and the hooks in mitmdump."""

import pytest
from mitmproxy.test import taddons
from mitmproxy.test import tflow

from addon import history
from addon.history import History
from addon.config import Config


@pytest.mark.parametrize("sizes, max_messages, max_bytes, start", [
    ([], 5, 100, 0),
    ([10], 5, 100, 0),
    ([10, 10, 10], 5, 100, 0),
    ([10] * 10, 3, 100, 7),
    ([50, 50, 50], 5, 100, 1),
    ([10, 500], 5, 100, 1),  # the last one always stays, however big
    ([500, 10, 10], 5, 100, 1),
])
def test_first_kept(sizes, max_messages, max_bytes, start):
    assert history.first_kept(sizes, max_messages, max_bytes) == start


def test_finished_flows_keeps_the_most_recent():
    f = history.FinishedFlows(2)
    assert f.add("a", "A") == [] and f.add("b", "B") == []
    assert f.add("a", "A") == []  # the same flow again (response, then error): counted once
    assert f.add("c", "C") == ["B"]
    assert len(f) == 2


def test_mitmdump_keeps_the_last_websocket_message_and_no_flows():
    b = History(Config({}))
    with taddons.context(b):
        f = tflow.twebsocketflow()
        for _ in range(3):
            f.websocket.messages.append(f.websocket.messages[-1])
        last = f.websocket.messages[-1]
        b.websocket_message(f)
        assert f.websocket.messages == [last]
        b.websocket_end(f)
        b.response(tflow.tflow(resp=True))
        assert b.web is False and b.finished is None


def test_mitmweb_keeps_recent_messages_and_a_bounded_number_of_flows():
    from mitmproxy.addons.view import View
    view, config = View(), Config({})
    b = History(config)
    with taddons.context(view, config, b) as tctx:
        tctx.configure(config, jupyter_server_ip_or_name="10.0.0.5", jupyter_username="alice",
                       jupyter_proxy_web_flows="3", jupyter_proxy_web_ws_messages="2")
        ws = tflow.twebsocketflow()
        view.add([ws])
        b.websocket_message(ws)
        assert len(ws.websocket.messages) == 2
        b.response(ws)  # the 101 of an open WebSocket does not count as finished
        flows = [tflow.tflow(resp=True) for _ in range(5)]
        for f in flows:
            f.live = False
            view.add([f])
            b.response(f)
        assert set(view) == {ws, *flows[-3:]}  # the open WebSocket stays, whatever its age
        ws.websocket.timestamp_end = 1.0
        ws.live = False
        b.websocket_end(ws)  # ended: now it counts, as the most recently finished flow
        assert set(view) == {*flows[-2:], ws}
        later = tflow.tflow(resp=True)
        later.live = False
        view.add([later])
        b.error(later)
        assert set(view) == {flows[-1], ws, later}
