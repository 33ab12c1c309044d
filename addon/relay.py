"""Kernel and terminal WebSockets that outlive their upstream connection (issue 30).

Why a relay of the bridge's own: mitmproxy's WebSocket layer (mitmproxy/proxy/layers/websocket.py) relays one
client connection to one server connection, and when the server side ends (a close frame, or a reset, which wsproto
turns into close code 1006) it closes the client too; it has no way to put another server connection under a live
flow. So the bridge sends the upgrade of `/api/kernels/<id>/channels` and `/terminals/websocket/<name>` (addon/
resume.py) to this relay on 127.0.0.1, in the same process. mitmproxy's flow IDE ↔ relay never breaks and mitmweb
shows every message of it, as before; the relay holds that connection and dials the hub itself (wsproto, which
mitmproxy pins, for the handshakes and control frames; TLS verified as the bridge verifies the hub, wire.connect),
again whenever the upstream connection is lost. Messages pass through as the frames they came in
(core/resume.FrameReader): the relay neither decodes nor frames them again, which keeps its cost in the benchmark's
noise. Only mitmproxy reaches the relay: each upgrade carries a single-use ticket that the addon made for it (in
a header that flows show redacted); anything else is refused with 403. The credential never travels on that hop:
the relay adds it when it dials (for the bridge's own clients the access token in use at that moment, so a renewed
one is taken).

Why what the IDE sees is right (field note 48):
- One session: the relay dials with the IDE's `session_id`, or one it adds at the first dial. When a kernel
  WebSocket goes away, jupyter_server buffers the kernel's messages for `<kernel>:<session_id>` and replays them,
  in order, to the next connection with that key; a new connection with the key replaces a stale one that is still
  open ("Replacing stale connection").
- Order: the IDE gets messages of one upstream connection at a time, each whole (a message's frames go on together
  once its last one has come, so a drop never leaves half a message), in the order the server sent them. After a
  drop everything comes from the new connection: the server's replay first, then new messages. The old one is
  read until then when it went silent (a line that was only asleep still delivers what it holds), and after a
  kernel restart it is read to its end (the server closes it when the new one arrives) before the new one's
  messages go on: the old connection's messages always come first.
- No duplicates: the server buffers only what it had not written to the old connection, so the replay repeats
  nothing the IDE got.
- What can be lost: messages the server wrote to the old connection that never arrived (in flight when the line
  went down: in the kernel's output, typically one line per drop); and on a terminal, what the shell printed
  while no connection was open (terminado keeps no buffer for a client).
- What the IDE sends while no connection is open is held, in order (at most QUEUE_MESSAGES / QUEUE_BYTES), and
  sent on the new connection before anything it sends later. A message sent into a connection that then dropped
  may be lost, as with any network; the IDE's own timeouts see that.
- Liveness: the relay pings upstream and takes a ping unanswered for 2 x JUPYTER_RESUME_PING_INTERVAL for a drop
  (a sleeping laptop, a changed Wi-Fi: no FIN, no RST); after a pause of its own (SIGSTOP) it pings afresh before it
  judges. It answers the IDE's pings itself and pings the IDE every DOWN_PING s (mitmproxy closes a connection idle
  for 600 s). After JUPYTER_RESUME_WINDOW s without a connection, a 403 to a dial, or a 404 that the server's REST
  API confirms (a restarted proxy answers 404 too until the hub adds its routes again), the IDE's socket is closed
  with a close code and a reason (core/resume.py) and one log line."""

import asyncio
import json
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import wsproto
from wsproto import events as ws
from wsproto.utilities import RemoteProtocolError

from addon.core import resume
from addon.core.errors import HubError
from addon.core.settings import Settings
from addon.hub import wire

logger = logging.getLogger(__name__)

TICKET_HEADER = "X-Bridge-Relay"
TICKET_LIFETIME = 60.0  # seconds an unused ticket stays valid (mitmproxy dials the relay at once)
MAX_TICKETS = 1000
HANDSHAKE_TIMEOUT = 10.0  # seconds for mitmproxy's upgrade request, and for one dial of the hub
HANDSHAKE_BYTES = 64 * 1024
REFUSAL_BODY = 64 * 1024  # of a refused dial's answer, passed on to the IDE
DOWN_PING = 30.0
DRAIN_OLD = 3.0  # seconds the old connection is read to its end after a restart's new one opened
RESTART_DIAL = 20.0  # seconds a restart's new connection may take
READ = 65536
# Handshake fields wsproto writes itself; hop-by-hop fields belong to the other connection.
NOT_FORWARDED = wire.HOP_BY_HOP | {"host", "authorization", "sec-websocket-key", "sec-websocket-version",
                                   "sec-websocket-protocol", "sec-websocket-extensions", TICKET_HEADER.lower()}


@dataclass
class Admission:
    """What the addon knows of an upgrade it sent to the relay."""
    channel: resume.Channel
    target: str  # the upstream path and query, session_id included
    headers: list[tuple[str, str]]  # to send upstream, without handshake fields and credential
    authorization: str | None  # the client's own credential, sent as it is
    access: bool  # the bridge's own client: the access token in use at each dial (a renewed one is taken)
    note: Callable[[str], None]  # says what happened on the flow (mitmweb)
    made: float


class Refusal(Exception):
    """The hub answered a dial with this status instead of 101."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(status)
        self.status, self.headers, self.body = status, headers, body


class Upstream:
    """One connection to the hub for a held socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: wsproto.WSConnection,
                 subprotocol: str | None) -> None:
        self.reader, self.writer, self.conn, self.subprotocol = reader, writer, conn, subprotocol
        self.heard = time.monotonic()  # the last time anything came from the hub on it
        self.unanswered: float | None = None  # when a ping went unanswered since
        self.received = 0
        self.task: asyncio.Task | None = None

    def send(self, event: ws.Event) -> None:
        if self.conn.state is wsproto.ConnectionState.OPEN:
            self.writer.write(self.conn.send(event))

    def abort(self) -> None:
        if (transport := self.writer.transport) is not None:
            transport.abort()


class Relay:
    def __init__(self, settings: Callable[[], Settings | None], tls: Callable[[], ssl.SSLContext],
                 logged_out: Callable[[], bool] = lambda: False) -> None:
        """`logged_out`: whether the login the bridge serves with was removed (Renew finds it): the held sockets
        end then, as the bridge's other requests do, instead of going on with an access token it no longer renews."""
        self.settings, self.tls, self.logged_out = settings, tls, logged_out
        self.tickets: dict[str, Admission] = {}
        self.links: set[Link] = set()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server:
            self.server.close()
        for link in list(self.links):
            await link.give_up(resume.STOPPING, "jupyterhub-bridge is stopping", log=False)

    def admit(self, admission: Admission) -> str:
        """A single-use ticket for one upgrade."""
        now = time.monotonic()
        for ticket, old in list(self.tickets.items()):
            if now - old.made > TICKET_LIFETIME:
                del self.tickets[ticket]
        while len(self.tickets) >= MAX_TICKETS:
            del self.tickets[next(iter(self.tickets))]
        ticket = secrets.token_urlsafe(24)
        self.tickets[ticket] = admission
        return ticket

    async def restarted(self, kernel: str) -> None:
        """The kernel was restarted through the bridge: its held sockets move to new connections."""
        links = [link for link in self.links if link.admission.channel == resume.Channel("kernel", kernel)]
        if links:
            await asyncio.gather(*(link.restart() for link in links))

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        down = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        try:
            request = await asyncio.wait_for(upgrade_request(reader, down), HANDSHAKE_TIMEOUT)
        except (TimeoutError, OSError, RemoteProtocolError, ValueError):
            writer.close()
            return
        ticket = dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in request.extra_headers).get(
            TICKET_HEADER.lower(), "")
        admission = self.tickets.pop(ticket, None)
        if admission is None or time.monotonic() - admission.made > TICKET_LIFETIME:
            writer.write(down.send(ws.RejectConnection(403)))
            writer.close()
            return
        link = Link(self, admission, reader, writer, down, request.subprotocols)
        self.links.add(link)
        try:
            await link.run()
        finally:
            self.links.discard(link)


async def upgrade_request(reader: asyncio.StreamReader, conn: wsproto.WSConnection) -> ws.Request:
    """The upgrade request on a connection to the relay, within HANDSHAKE_BYTES."""
    seen = 0
    while True:
        for event in conn.events():
            if isinstance(event, ws.Request):
                return event
            raise ValueError(f"not an upgrade: {event!r}")
        data = await reader.read(READ)
        if not data or (seen := seen + len(data)) > HANDSHAKE_BYTES:
            raise ValueError("no upgrade request")
        conn.receive_data(data)


class Link:
    """The IDE's socket (through mitmproxy) and the upstream connection under it, replaced when it is lost."""

    def __init__(self, relay: Relay, admission: Admission, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, down: wsproto.WSConnection, subprotocols: list[str]) -> None:
        self.relay, self.admission = relay, admission
        self.reader, self.writer, self.down = reader, writer, down
        self.subprotocols = subprotocols
        self.v1 = False
        self.up: Upstream | None = None  # the connection the IDE's messages go to and whose messages it gets
        self.draining: Upstream | None = None  # a restart's old connection, read to its end first
        self.outbox = resume.Outbox()
        self.switching = False  # a restart's new connection is being dialled: hold what the IDE sends
        self.redialling: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        self.resumed: tuple | None = None  # a resume not logged yet: (upstream, gap, sent, restart)

    # --- the first dial, and every dial after it

    async def dial(self, timeout: float) -> Upstream:
        """One connection to the hub with the IDE's upgrade; raises Refusal, HubError, TimeoutError."""
        s = self.relay.settings()
        if s is None:
            raise HubError(0, "the bridge has no settings")
        a = self.admission
        headers = a.headers + self.credential(s)
        reader, writer = await asyncio.wait_for(wire.connect(s, self.relay.tls()), timeout)
        try:
            conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
            writer.write(conn.send(ws.Request(host=s.hub_authority, target=a.target, extra_headers=headers,
                                              subprotocols=self.subprotocols)))
            return await asyncio.wait_for(self.answer(reader, writer, conn), timeout)
        except BaseException:
            writer.close()
            raise

    def credential(self, s: Settings) -> list[tuple[str, str]]:
        """The Authorization header of a dial: the access token in use now for the bridge's own clients (a
        renewed one is taken), else the client's own."""
        a = self.admission
        authorization = f"token {s.server_token}" if a.access and s.server_token else a.authorization
        return [("Authorization", authorization)] if authorization else []

    async def gone(self) -> bool:
        """After a 404 to a dial: whether the server's REST API confirms the kernel or terminal is gone (else the
        404 was the proxy's, for a route the hub has not added again yet, and dialling goes on)."""
        s, a = self.relay.settings(), self.admission
        headers = [("Host", s.hub_authority), ("Accept", "application/json"), *self.credential(s)]
        try:
            answer = await asyncio.wait_for(
                wire.request(s, self.relay.tls(), "GET", resume.rest_path(a.target, a.channel), headers),
                HANDSHAKE_TIMEOUT)
            return resume.server_says_gone(answer.status, answer.json())
        except (HubError, TimeoutError, OSError):
            return False

    @staticmethod
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     conn: wsproto.WSConnection) -> Upstream:
        """The hub's answer to the upgrade. Its head is read to its blank line and no further: the frames after a
        101 stay in the reader, for read_up."""
        refusal, body = None, b""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise HubError(0, "the hub sent an answer head over 64 KiB") from None
        except asyncio.IncompleteReadError:
            raise HubError(0, "the hub closed the connection during the WebSocket handshake") from None
        data = head
        while True:
            conn.receive_data(data or None)
            for event in conn.events():
                if isinstance(event, ws.AcceptConnection):
                    return Upstream(reader, writer, conn, event.subprotocol)  # what came after it: read_up
                if isinstance(event, ws.RejectConnection):
                    refusal = event
                    if not event.has_body:
                        raise Refusal(event.status_code, list(event.headers), b"")
                elif isinstance(event, ws.RejectData):
                    body = (body + event.data)[:REFUSAL_BODY]
                    if event.body_finished:
                        raise Refusal(refusal.status_code, list(refusal.headers), body)
            if not data:
                if refusal is None:
                    raise HubError(0, "the hub closed the connection during the WebSocket handshake")
                raise Refusal(refusal.status_code, list(refusal.headers), body)
            data = await reader.read(READ)

    # --- the IDE's socket

    async def run(self) -> None:
        try:
            try:
                up = await self.dial(HANDSHAKE_TIMEOUT)
            except Refusal as r:
                self.refuse(r.status, [(k, v) for k, v in r.headers if k.lower().decode() not in wire.HOP_BY_HOP],
                            r.body)
                return
            except (HubError, TimeoutError, OSError) as e:
                message = e.message if isinstance(e, HubError) else f"cannot reach the hub: {e or 'timed out'}"
                self.refuse(502, [(b"content-type", b"application/json")], json.dumps({"message": message}).encode())
                return
            self.v1 = up.subprotocol == "v1.kernel.websocket.jupyter.org"
            self.writer.write(self.down.send(ws.AcceptConnection(subprotocol=up.subprotocol)))
            self.use(up)
            self.spawn(self.ping())
            await self.read_down()
        finally:
            await self.end()

    def refuse(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        headers = headers + [(b"content-length", str(len(body)).encode())]
        self.writer.write(self.down.send(ws.RejectConnection(status, headers, has_body=True)))
        self.writer.write(self.down.send(ws.RejectData(body)))

    async def read_down(self) -> None:
        """The IDE's frames (through mitmproxy), passed on as they are; pings answered here."""
        frames = resume.FrameReader(masked=True)
        while not self.closed.is_set():
            data = await self.reader.read(READ)
            if not data:
                return
            for opcode, raw in frames.feed(data):
                if opcode == resume.PING:
                    self.to_ide_event(ws.Pong(raw))
                elif opcode == resume.CLOSE:
                    code, reason = close_payload(raw)
                    if self.up:
                        self.up.send(ws.CloseConnection(code, reason))
                    self.to_ide_event(ws.CloseConnection(code))
                    return
                elif opcode != resume.PONG:
                    await self.to_server(raw)

    async def to_server(self, frames: bytes) -> None:
        up = self.up
        if up is None or self.switching:
            if not self.outbox.add(frames):
                await self.give_up(resume.TOO_MUCH, resume.close_reason(resume.TOO_MUCH, self.admission.channel))
            return
        up.writer.write(frames)
        try:
            await up.writer.drain()
        except (OSError, ConnectionError):
            pass  # the upstream reader sees it

    def to_ide_event(self, event: ws.Event) -> None:
        if self.down.state is wsproto.ConnectionState.OPEN:
            self.writer.write(self.down.send(event))

    # --- upstream connections

    def use(self, up: Upstream) -> int:
        """Make `up` the connection of this socket; send what the IDE sent meanwhile. Returns how many."""
        self.up = up
        held = self.outbox.take()
        for frames in held:
            up.writer.write(frames)
        up.task = self.spawn(self.read_up(up))
        return len(held)

    async def read_up(self, up: Upstream) -> None:
        """The hub's frames, passed on to the IDE as they are, one whole message at a time."""
        frames = resume.FrameReader(masked=False)
        kernel = self.admission.channel.kind == "kernel"
        why = "the connection ended"
        try:
            while data := await up.reader.read(READ):
                up.heard = time.monotonic()
                for opcode, raw in frames.feed(data):
                    if opcode == resume.PING:
                        up.send(ws.Pong(raw))
                    elif opcode == resume.CLOSE:
                        code, reason = close_payload(raw)
                        why = f"the server closed it: {code} {reason}".strip()
                        up.send(ws.CloseConnection(code))
                        return
                    elif opcode != resume.PONG:
                        up.received += 1
                        if (up is self.up or up is self.draining) and self.down.state is wsproto.ConnectionState.OPEN:
                            self.writer.write(raw)
                        if (kernel and len(raw) <= resume.RESTARTING_BYTES and up is self.up and not self.switching
                                and resume.is_restarting(resume.payload(raw), self.v1)):
                            self.spawn(self.restart())
                if self.writer.transport.get_write_buffer_size() > READ:
                    try:
                        await self.writer.drain()  # the IDE reads slower than the hub sends: wait for it
                    except (OSError, ConnectionError):
                        await self.end()  # the IDE's side is gone: no drop of the upstream's
                        return
        except (OSError, ConnectionError, resume.BadFrame) as e:
            why = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        finally:
            if not self.closed.is_set():  # at the end, end() closes it
                up.abort()
                if up is self.up:
                    self.lost(why)

    def lost(self, why: str, silent: Upstream | None = None) -> None:
        """The current upstream connection is gone: dial again (once at a time). A `silent` one is still read
        until the new one opens and the server has closed it (a line that was only asleep delivers what the
        server wrote into it; the server buffers only what it writes after that)."""
        self.up = None
        if silent is not None:
            self.draining = silent
        if self.redialling is None or self.redialling.done():
            self.redialling = self.spawn(self.redial(why))

    async def redial(self, why: str) -> None:
        s, channel = self.relay.settings(), self.admission.channel
        window = s.resume_window
        logger.warning(resume.drop_line(channel, why, window))
        self.admission.note(f"the connection to the server dropped ({why}); dialling again")
        dropped, attempt = time.monotonic(), 0
        while not self.closed.is_set():
            left = window - (time.monotonic() - dropped)
            if left <= 0:
                await self.give_up(resume.WINDOW_OVER, resume.close_reason(resume.WINDOW_OVER, channel, window))
                return
            try:
                up = await self.dial(min(HANDSHAKE_TIMEOUT, left))
            except Refusal as r:
                if r.status == 403 or (r.status == 404 and await self.gone()):
                    code = resume.GONE if r.status == 404 else resume.REFUSED
                    await self.give_up(code, resume.close_reason(code, channel))
                    return
            except (HubError, TimeoutError, OSError):
                pass
            else:
                if (old := self.draining) is not None:
                    if old.task is not None:
                        await asyncio.wait([old.task], timeout=DRAIN_OLD)
                    old.abort()
                    self.draining = None
                gap = time.monotonic() - dropped
                sent = self.use(up)
                self.spawn(self.tell_resumed(up, gap, sent, False))
                return
            await asyncio.sleep(min(resume.backoff(attempt), max(0.0, window - (time.monotonic() - dropped))))
            attempt += 1

    async def restart(self) -> None:
        """A new connection for a restarted kernel (the old one's channels may be dead, field note 47), dialled
        beside the old one: the server closes the old one when the new one arrives ("Replacing stale
        connection"); it is read to its end before the new one's messages go on."""
        old = self.up
        if self.switching or old is None or self.closed.is_set():
            return  # a dial is under way already
        self.switching, self.up, self.draining = True, None, old  # the old one's end is no drop
        try:
            new = await self.dial_for_restart()
            if new is None:  # the old connection stays, if it is still there
                if old.task is not None and not old.task.done():
                    self.up = old
                elif not self.closed.is_set():
                    self.lost("the kernel restarted and no new connection opened")
                return
            if old.task is not None:
                await asyncio.wait([old.task], timeout=DRAIN_OLD)
            old.abort()
            self.draining = None
            if self.closed.is_set():
                new.abort()
                return
            self.switching = False
            sent = self.use(new)
            self.spawn(self.tell_resumed(new, 0.0, sent, True))
        finally:
            self.switching, self.draining = False, None

    async def dial_for_restart(self) -> Upstream | None:
        deadline, attempt = time.monotonic() + RESTART_DIAL, 0
        while not self.closed.is_set():
            try:
                return await self.dial(max(0.1, min(HANDSHAKE_TIMEOUT, deadline - time.monotonic())))
            except (Refusal, HubError, TimeoutError, OSError):
                if time.monotonic() + resume.backoff(attempt) >= deadline:
                    return None
            await asyncio.sleep(resume.backoff(attempt))
            attempt += 1
        return None

    async def tell_resumed(self, up: Upstream, gap: float, sent: int, restart: bool) -> None:
        """One line, a second after the switch (or at the end, if sooner): what the server sent at once is what it
        kept meanwhile."""
        self.resumed = (up, gap, sent, restart)
        await asyncio.sleep(1.0)
        self.say_resumed()

    def say_resumed(self) -> None:
        if self.resumed is None:
            return
        (up, gap, sent, restart), self.resumed = self.resumed, None
        logger.info(resume.resume_line(self.admission.channel, gap, up.received, sent, restart))
        self.admission.note("restarted kernel: on a new connection" if restart else
                            f"resumed after {gap:.1f} s away (the server replayed what it kept)")

    async def ping(self) -> None:
        """Ping upstream after `interval` of silence; a ping unanswered for 2 x interval is a drop. Ping the IDE
        every DOWN_PING s."""
        interval = self.relay.settings().resume_ping_interval
        tick = max(0.1, interval / 4)
        last, down_pinged = time.monotonic(), time.monotonic()
        while not self.closed.is_set():
            await asyncio.sleep(tick)
            if self.relay.logged_out():
                await self.give_up(resume.LOGGED_OUT, resume.close_reason(resume.LOGGED_OUT, self.admission.channel))
                return
            now = time.monotonic()
            paused = now - last > tick + interval  # this process did not run (SIGSTOP): judge afresh
            last = now
            if now - down_pinged >= DOWN_PING:
                self.to_ide_event(ws.Ping(b"jupyterhub-bridge"))
                down_pinged = now
            up = self.up
            if up is None or self.switching:
                continue
            if paused or (up.unanswered is not None and up.heard > up.unanswered):
                up.unanswered = None
            if now - up.heard >= interval and up.unanswered is None:
                up.send(ws.Ping(b"jupyterhub-bridge"))
                up.unanswered = now
            elif up.unanswered is not None and now - up.unanswered > 2 * interval:
                self.lost(f"no answer to a ping for {2 * interval:g} s", silent=up)

    # --- the end

    async def give_up(self, code: int, reason: str, log: bool = True) -> None:
        if self.closed.is_set():
            return
        if log:
            logger.warning(resume.given_up_line(self.admission.channel, reason))
            self.admission.note(reason)
        self.to_ide_event(ws.CloseConnection(code, reason))
        await self.end()

    async def end(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.say_resumed()
        for up in (self.up, self.draining):
            if up is not None:
                up.send(ws.CloseConnection(1000))
                up.writer.close()  # after what it holds is sent: the close frame reaches the server
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        try:
            await asyncio.wait_for(self.writer.drain(), 2.0)
        except (OSError, ConnectionError, TimeoutError):
            pass
        self.writer.close()

    def spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task


def close_payload(payload: bytes) -> tuple[int, str]:
    """A close frame's code and reason (1005: none given)."""
    if len(payload) < 2:
        return 1005, ""
    return int.from_bytes(payload[:2], "big"), payload[2:].decode(errors="replace")
