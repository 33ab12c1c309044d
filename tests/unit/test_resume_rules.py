"""The rules of a resuming kernel or terminal WebSocket (addon/core/resume.py), without a network."""

import json

import pytest
from kernel_client import execute_request
from kernel_client import to_v1

from addon.core import resume
from addon.core.resume import Channel

PREFIX = "/user/alice/"


@pytest.mark.parametrize("path, held", [
    ("/user/alice/api/kernels/k-1/channels", Channel("kernel", "k-1")),
    ("/user/alice/api/kernels/k-1/channels?session_id=s", Channel("kernel", "k-1")),
    ("/user/alice/terminals/websocket/3", Channel("terminal", "3")),
    ("/user/alice/api/kernels/k-1/channels/x", None),
    ("/user/alice/api/kernels/k-1", None),
    ("/user/alice/api/events/subscribe", None),
    ("/user/bob/api/kernels/k-1/channels", None),  # not this bridge's server
    ("/user/alice/x/api/kernels/k-1/channels", None),
])
def test_held_channel(path, held):
    assert resume.held_channel(path, PREFIX) == held


@pytest.mark.parametrize("method, path, kernel", [
    ("POST", "/user/alice/api/kernels/k-1/restart", "k-1"),
    ("POST", "/user/alice/api/kernels/k-1/restart?x=1", "k-1"),
    ("GET", "/user/alice/api/kernels/k-1/restart", None),
    ("POST", "/user/alice/api/kernels/k-1/interrupt", None),
    ("POST", "/user/bob/api/kernels/k-1/restart", None),
])
def test_restarted_kernel(method, path, kernel):
    assert resume.restarted_kernel(method, path, PREFIX) == kernel


@pytest.mark.parametrize("target, expected, session", [
    ("/k/channels", "/k/channels?session_id=new", "new"),
    ("/k/channels?a=1", "/k/channels?a=1&session_id=new", "new"),
    ("/k/channels?session_id=mine&a=1", "/k/channels?session_id=mine&a=1", "mine"),
    ("/k/channels?session_id=", "/k/channels?session_id=&session_id=new", "new"),  # an empty one is none
])
def test_with_session_id(target, expected, session):
    assert resume.with_session_id(target, "new") == (expected, session)


def test_a_session_id_is_made_when_none_is_given():
    _, made = resume.with_session_id("/k/channels")
    assert len(made) == 32 and made != resume.with_session_id("/k/channels")[1]


def status(state: str, channel: str = "iopub") -> dict:
    msg = execute_request("")
    msg["header"]["msg_type"], msg["channel"], msg["content"] = "status", channel, {"execution_state": state}
    return msg


@pytest.mark.parametrize("msg, restarting", [
    (status("restarting"), True),
    (status("busy"), False),
    (status("restarting", "shell"), False),
    ({**execute_request('print("restarting")'), "channel": "iopub"}, False),
])
@pytest.mark.parametrize("v1", [False, True])
def test_is_restarting(msg, restarting, v1):
    data = to_v1(msg) if v1 else json.dumps(msg)
    assert resume.is_restarting(data, v1) is restarting


@pytest.mark.parametrize("data", [b"", b'"restarting"', b'{"restarting"', b"\xff" * 8 + b'"restarting"',
                                  b'"restarting"' + b" " * resume.RESTARTING_BYTES])
@pytest.mark.parametrize("v1", [False, True])
def test_is_restarting_never_raises(data, v1):
    assert resume.is_restarting(data, v1) is False


def test_backoff_starts_at_half_a_second_and_is_bounded():
    assert [resume.backoff(i) for i in range(6)] == [0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_outbox_keeps_order_within_its_bounds():
    box = resume.Outbox(max_messages=3, max_bytes=10)
    assert box.add("abc") and box.add(b"defg")
    assert not box.add("12345")  # 12 bytes: refused, nothing held of it
    assert box.add("xyz")
    assert not box.add("")  # the fourth message
    assert len(box) == 3 and box.take() == ["abc", b"defg", "xyz"]
    assert len(box) == 0 and box.size == 0 and box.add("12345")


@pytest.mark.parametrize("code", [resume.GONE, resume.REFUSED, resume.WINDOW_OVER, resume.TOO_MUCH, resume.LOGGED_OUT, 4999])
def test_close_reasons_fit_a_close_frame_and_escape_the_name(code):
    channel = Channel("terminal", "\x1b[31m" + "x" * 200)
    reason = resume.close_reason(code, channel, 300)
    assert len(reason.encode()) <= 123 and "\x1b" not in reason and reason.startswith("jupyterhub-bridge: ")


def test_log_lines_escape_what_came_from_outside():
    channel = Channel("kernel", "\x1b]0;evil\x07-kernel-id")
    for line in (resume.drop_line(channel, "reset\nby peer", 300), resume.resume_line(channel, 5.04, 12, 3),
                 resume.given_up_line(channel, "gone\r")):
        assert "\x1b" not in line and "\n" not in line and "\r" not in line and "\x07" not in line
    assert "after 5.0 s away: 12 messages" in resume.resume_line(Channel("kernel", "k"), 5.04, 12, 3)


def frames_of(messages: list[tuple[int, bytes]], masked: bool, fragment: int = 0) -> list[bytes]:
    """Each message's frames as wsproto writes them (the client's masked), cut into `fragment`-byte frames."""
    import wsproto.frame_protocol as fp
    proto = fp.FrameProtocol(client=masked, extensions=[])
    out = []
    for opcode, data in messages:
        if opcode == resume.PING:
            out.append(proto.ping(data))
            continue
        pieces = [data[i:i + fragment] for i in range(0, len(data), fragment)] if fragment and data else [data]
        out.append(b"".join(proto.send_data(p if opcode == resume.BINARY else p.decode(), i == len(pieces) - 1)
                            for i, p in enumerate(pieces)))
    return out


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("fragment", [0, 7])
@pytest.mark.parametrize("chunk", [1, 3, 64, 100000])
def test_frame_reader_gives_whole_messages_as_they_came(masked, fragment, chunk):
    import wsproto.frame_protocol as fp
    messages = [(resume.TEXT, b'{"a": 1}'), (resume.BINARY, bytes(range(256)) * 300), (resume.PING, b"hi"),
                (resume.TEXT, b"x" * 70000), (resume.TEXT, b"")]
    each = frames_of(messages, masked, fragment)
    wire = b"".join(each)
    reader, found = resume.FrameReader(masked), []
    for i in range(0, len(wire), chunk):
        found += reader.feed(wire[i:i + chunk])
    assert [opcode for opcode, _ in found] == [resume.TEXT, resume.BINARY, resume.PING, resume.TEXT, resume.TEXT]
    assert [raw for opcode, raw in found if opcode != resume.PING] == [each[i] for i in (0, 1, 3, 4)]  # as they came
    assert found[2][1] == b"hi"
    # what a peer reads from them: the same messages
    peer = fp.FrameProtocol(client=not masked, extensions=[])
    peer.receive_bytes(b"".join(raw for opcode, raw in found if opcode != resume.PING))
    got, parts = [], []
    for frame in peer.received_frames():
        parts.append(frame.payload if isinstance(frame.payload, bytes) else frame.payload.encode())
        if frame.message_finished:
            got.append(b"".join(parts))
            parts = []
    assert got == [data for opcode, data in messages if opcode != resume.PING]


@pytest.mark.parametrize("masked, wire", [(False, b"\x81\x85abcdhello"), (True, b"\x81\x05hello"), (False, b"\xc1\x01x")])
def test_frame_reader_refuses_frames_it_cannot_pass_on(masked, wire):
    with pytest.raises(resume.BadFrame):
        resume.FrameReader(masked).feed(wire)


def test_payload_of_a_frame():
    assert resume.payload(frames_of([(resume.TEXT, b"abc")], False)[0]) == b"abc"
    assert resume.payload(frames_of([(resume.TEXT, b"y" * 300)], False)[0]) == b"y" * 300


@pytest.mark.parametrize(("target", "channel", "path"), [
    ("/user/alice/api/kernels/k1/channels?session_id=s", resume.Channel("kernel", "k1"), "/user/alice/api/kernels/k1"),
    ("/jupyter/user/alice/gpu/terminals/websocket/3", resume.Channel("terminal", "3"),
     "/jupyter/user/alice/gpu/api/terminals/3"),
])
def test_the_rest_path_of_a_held_socket(target, channel, path):
    assert resume.rest_path(target, channel) == path


@pytest.mark.parametrize(("status", "body", "gone"), [
    (404, {"message": "Kernel does not exist: k1", "reason": None}, True),  # the single-user server's own
    (404, {}, False),  # an HTML page (Answer.json gives {}): the hub's error page for a route not there yet
    (200, {"id": "k1"}, False),
    (503, {"message": "the proxy is restarting"}, False),
    (404, ["message"], False),
])
def test_only_the_servers_own_404_says_a_kernel_is_gone(status, body, gone):
    assert resume.server_says_gone(status, body) is gone
