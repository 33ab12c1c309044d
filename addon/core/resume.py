"""The rules of a resuming kernel or terminal WebSocket (addon/relay.py does the networking): which upgrades are
held, the session_id that lets the server keep what a dropped connection missed, when to dial again, what the IDE
may send meanwhile, and what the bridge says about it. No network, no mitmproxy."""

import json
import re
import struct
import uuid
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import parse_qsl

from addon.core.invocation import RUN
from addon.core.printable import printable

# What the IDE sends while upstream is away is held, in order, up to these bounds; past them its socket is closed
# (a client that sends this much with no answer is not waiting for one).
QUEUE_MESSAGES = 1000
QUEUE_BYTES = 16 * 2**20
BACKOFF = (0.5, 1.0, 2.0)  # seconds between dials of one drop, then the last one again
RESTARTING_BYTES = 4096  # a status message is small: larger messages (output) are not searched
RESTARTING = b'"restarting"'

# Close codes the IDE sees when the bridge gives up (RFC 6455: 4000-4999 are the application's own).
GONE = 4404  # the server answered 404: the kernel or terminal no longer exists
REFUSED = 4403  # the server answered 403: the credential may no longer reach it
WINDOW_OVER = 1001  # going away: no connection within JUPYTER_RESUME_WINDOW seconds
TOO_MUCH = 1009  # the IDE sent more than QUEUE_MESSAGES / QUEUE_BYTES while upstream was away
STOPPING = 1001  # the bridge stops
LOGGED_OUT = 4401  # the login the bridge served with was removed (./run.sh logout)


@dataclass(frozen=True)
class Channel:
    """A WebSocket the bridge holds across upstream drops."""
    kind: str  # "kernel" or "terminal"
    name: str  # the kernel id or terminal name, as in the path

    @property
    def short(self) -> str:
        """For log lines: a kernel id's first 8 characters, escaped (it comes from the client)."""
        return printable(self.name[:8] if self.kind == "kernel" else self.name, 40)


_KERNEL = re.compile(r"api/kernels/([^/?]+)/channels")
_TERMINAL = re.compile(r"terminals/websocket/([^/?]+)")
_RESTART = re.compile(r"api/kernels/([^/?]+)/restart")


def held_channel(upstream_path: str, prefix: str) -> Channel | None:
    """The kernel or terminal of an upgrade to `upstream_path` (already in the user's `prefix`), or None."""
    path = upstream_path.partition("?")[0]
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix):]
    if m := _KERNEL.fullmatch(rest):
        return Channel("kernel", m.group(1))
    if m := _TERMINAL.fullmatch(rest):
        return Channel("terminal", m.group(1))
    return None


def rest_path(upgrade_target: str, channel: Channel) -> str:
    """The REST path of a held socket's kernel or terminal, from its upgrade's (`<prefix>api/kernels/<id>/channels`,
    `<prefix>terminals/websocket/<name>`): `<prefix>api/kernels/<id>`, `<prefix>api/terminals/<name>`."""
    path = upgrade_target.partition("?")[0]
    if channel.kind == "kernel":
        return path.removesuffix("/channels")
    return f"{path.removesuffix(f'terminals/websocket/{channel.name}')}api/terminals/{channel.name}"


def server_says_gone(status: int, message: object) -> bool:
    """Whether a GET of rest_path says the kernel or terminal is gone: the single-user server's own 404, a JSON
    object with its message. An upgrade's 404 alone is not enough: while the hub's proxy has no route for the
    server (a restarted proxy, before the hub adds it again) the hub answers 404 with an HTML error page."""
    return status == 404 and isinstance(message, dict) and "message" in message


def restarted_kernel(method: str, upstream_path: str, prefix: str) -> str | None:
    """The kernel id of a REST restart (`POST <prefix>api/kernels/<id>/restart`), or None."""
    path = upstream_path.partition("?")[0]
    if method != "POST" or not path.startswith(prefix):
        return None
    m = _RESTART.fullmatch(path[len(prefix):])
    return m.group(1) if m else None


def with_session_id(target: str, new: str | None = None) -> tuple[str, str]:
    """The target with a `session_id` (the server keeps what a dropped connection missed under
    `<kernel>:<session_id>`, field note 48): the client's own, or one added here. Returns (target, session_id)."""
    path, sep, query = target.partition("?")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "session_id" and value:
            return target, value
    session = new or uuid.uuid4().hex
    return f"{path}?{query}&session_id={session}" if query else f"{path}?session_id={session}", session


def is_restarting(data: bytes | str, v1: bool) -> bool:
    """Whether a message from the server is IOPub's status `restarting` (the kernel died and the server restarts
    it). Cheap for the many other messages: a size and a substring check first."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > RESTARTING_BYTES or RESTARTING not in raw:
        return False
    try:
        if v1:
            (count,) = struct.unpack_from("<Q", raw)
            offsets = struct.unpack_from(f"<{count}Q", raw, 8)
            channel = raw[offsets[0]:offsets[1]].decode()
            header, content = (json.loads(raw[offsets[i]:offsets[i + 1]]) for i in (1, 4))
        else:
            msg = json.loads(raw)
            channel, header, content = msg.get("channel"), msg["header"], msg["content"]
        return (channel == "iopub" and header.get("msg_type") == "status"
                and content.get("execution_state") == "restarting")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, struct.error, UnicodeDecodeError):
        return False


TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class BadFrame(ValueError):
    """Bytes that are no WebSocket frame the relay takes (an extension's bits, a mask where none belongs)."""


class FrameReader:
    """The frames of one direction of a WebSocket, from the bytes as they arrive, passed on as they came: each data
    message whole, as the raw bytes of its frames (fragments kept, a client's masks kept), and each control frame
    apart with its payload unmasked. Both sides of the relay speak the same direction (the hub and the relay send
    unmasked frames to their clients; mitmproxy and the relay send masked ones), so a message's bytes go on
    unchanged: no decoding, no new framing. Bytes are joined only once a frame is complete."""

    def __init__(self, masked: bool) -> None:
        self.masked = masked  # frames from a client are masked, from a server never (RFC 6455, 5.1)
        self.chunks: list[bytes] = []
        self.held = 0
        self.need = 2  # bytes that must be held before a frame can be complete
        self.parts: list[bytes] = []  # the frames of the message under way
        self.opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """(opcode, the message's raw frames) for each data message completed, (opcode, payload) for each control
        frame. Raises BadFrame."""
        self.chunks.append(data)
        self.held += len(data)
        if self.held < self.need:
            return []
        buf = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        found, pos, n = [], 0, len(buf)
        while True:
            head, length = frame_size(buf, pos, n)
            if head == 0 or pos + head + length > n:
                self.need = head + length if head else header_length(buf, pos, n)
                break
            b0, end = buf[pos], pos + head + length
            if b0 & 0x70 or bool(buf[pos + 1] & 0x80) != self.masked:
                raise BadFrame("a frame with extension bits, or masked the wrong way")
            opcode = b0 & 0x0F
            if opcode >= CLOSE:
                found.append((opcode, unmask(buf[pos + head - 4:pos + head], buf[pos + head:end])
                              if self.masked else buf[pos + head:end]))
            else:
                if opcode:
                    self.opcode = opcode
                self.parts.append(buf[pos:end] if pos or end != n else buf)  # the whole buffer: no copy
                if b0 & 0x80:
                    parts, self.parts = self.parts, []
                    found.append((self.opcode, parts[0] if len(parts) == 1 else b"".join(parts)))
            pos = end
        rest = buf[pos:] if pos else buf
        self.chunks, self.held = ([rest], len(rest)) if rest else ([], 0)
        return found


def header_length(buf: bytes, pos: int, n: int) -> int:
    """The length of the header of the frame at `pos` (2 while its second byte has not come)."""
    if n - pos < 2:
        return 2
    length = buf[pos + 1] & 0x7F
    return 2 + (4 if buf[pos + 1] & 0x80 else 0) + (2 if length == 126 else 8 if length == 127 else 0)


def frame_size(buf: bytes, pos: int, n: int) -> tuple[int, int]:
    """(header length, payload length) of the frame at `pos`; (0, 0) while its header is incomplete."""
    head = header_length(buf, pos, n)
    if n - pos < head:
        return 0, 0
    length = buf[pos + 1] & 0x7F
    if length >= 126:
        length = int.from_bytes(buf[pos + 2:pos + (4 if length == 126 else 10)], "big")
    return head, length


def unmask(key: bytes, payload: bytes) -> bytes:
    """A control frame's payload (at most 125 bytes) unmasked."""
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def payload(frame: bytes) -> bytes:
    """The payload of one unmasked frame."""
    return frame[frame_size(frame, 0, len(frame))[0]:]


def backoff(attempt: int) -> float:
    """Seconds before dial number `attempt` (0: the first after a drop) of one drop."""
    return BACKOFF[min(attempt, len(BACKOFF) - 1)]


@dataclass
class Outbox:
    """What the IDE sent while upstream was away, in order, within QUEUE_MESSAGES and QUEUE_BYTES."""
    messages: deque = field(default_factory=deque)
    size: int = 0
    max_messages: int = QUEUE_MESSAGES
    max_bytes: int = QUEUE_BYTES

    def add(self, message: bytes | str) -> bool:
        """Hold it; False (and nothing held) when that would pass a bound."""
        n = len(message)
        if len(self.messages) >= self.max_messages or self.size + n > self.max_bytes:
            return False
        self.messages.append(message)
        self.size += n
        return True

    def take(self) -> list:
        held, self.messages, self.size = list(self.messages), deque(), 0
        return held

    def __len__(self) -> int:
        return len(self.messages)


def close_reason(code: int, channel: Channel, window: float = 0.0) -> str:
    """What the IDE's log and mitmweb show when the bridge closes a held socket (at most 123 bytes, RFC 6455)."""
    what = f"{channel.kind} {channel.short}"
    text = {
        GONE: f"jupyterhub-bridge: {what} no longer exists on the server (404)",
        REFUSED: f"jupyterhub-bridge: the server refused {what} (403): run {RUN} check",
        WINDOW_OVER: f"jupyterhub-bridge: no connection to the server for {window:g} s: {what} given up",
        TOO_MUCH: f"jupyterhub-bridge: too much sent while the server was away ({what})",
        LOGGED_OUT: f"jupyterhub-bridge: you logged out: run {RUN} login, then start the bridge again",
    }.get(code, f"jupyterhub-bridge: {what} closed")
    return text.encode()[:123].decode(errors="ignore")


def drop_line(channel: Channel, why: str, window: float) -> str:
    return printable(f"{channel.kind} {channel.short}: the connection to the server dropped ({why}); dialling "
                     f"again for up to {window:g} s, the IDE's socket stays open", 500)


def resume_line(channel: Channel, gap: float, arrived: int, sent: int, restart: bool = False) -> str:
    why = "after the kernel's restart" if restart else f"after {gap:.1f} s away"
    return printable(f"{channel.kind} {channel.short}: resumed on a new connection {why}: {arrived} messages "
                     f"from the server in its first second (what it kept meanwhile and new ones), {sent} the IDE "
                     "sent meanwhile forwarded", 500)


def given_up_line(channel: Channel, reason: str) -> str:
    return printable(f"{channel.kind} {channel.short}: closed the IDE's socket: {reason}", 500)
