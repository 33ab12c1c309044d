"""The wire to the hub: one HTTP/1.1 exchange over a TLS connection, its answer read whole or as server-sent
events, and the certificate the hub presents; all within bounds, so that a hostile hub cannot exhaust the client.

asyncio with stdlib ssl and h11 (both already in mitmproxy's runtime), so that waiting never blocks mitmproxy's
event loop. The runtime's only maintained HTTP client, tornado's AsyncHTTPClient, could dial the IP under the TLS
name (hostname_mapping), but it hands a streamed body only to a callback and never shows the peer certificate, so
it would not make this module shorter; httpx and aiohttp are not in the runtime."""

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass

import h11
from cryptography import x509

from addon.core import trust
from addon.core.settings import Settings
from addon.core.errors import HubError  # noqa: F401  (the Hub client raises it; callers catch hub.HubError)

CONNECT_TIMEOUT = 10.0
READ_SIZE = 65536
# A hub's own answers are a few KiB (a user model with all its servers), a progress event well under one, and
# its JSON a handful of levels deep: these bounds leave room for any hub and none for exhausting the client.
BODY_LIMIT = 16 * 2**20
LINE_LIMIT = 64 * 2**10
DEPTH_LIMIT = 64
# Hop-by-hop headers belong to one connection; the answer travels on another one.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te",
                        "trailer", "proxy-connection"})


class PinBroken(HubError):
    """The hub's chain no longer leads to the certificate the login pinned: a hard failure, nothing was sent."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


class TooLarge(Exception):
    """What the hub sent is beyond the client's bounds; the message says which ('an answer over 16 MiB')."""


def refused(source: str, e: TooLarge) -> HubError:
    return HubError(0, f"{source} sent {e}: refused")


def hub_at(s: Settings) -> str:
    return f"the hub at {s.dial_url}"


_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
WINDOW = 65536  # the text is looked at a window at a time: a window's pieces are all that is held besides it


def too_deep(text: bytes, limit: int = DEPTH_LIMIT) -> bool:
    """Whether [ and { outside JSON strings nest deeper than `limit`: linear, in bounded memory."""
    plain = text.replace(b"\\\\", b"").replace(b'\\"', b"")  # without escapes, each quote opens or closes a string
    depth, inside = 0, 0
    for start in range(0, len(plain), WINDOW):
        pieces = plain[start:start + WINDOW].split(b'"')
        for bracket in b"".join(pieces[inside::2]).translate(None, _NOT_BRACKET):
            depth += 1 if bracket in b"[{" else -1
            if depth > limit:
                return True
        inside ^= (len(pieces) - 1) & 1
    return False


def loads(text: bytes) -> object:
    """json.loads within bounds: raises TooLarge for JSON nested deeper than DEPTH_LIMIT (json.loads would raise
    RecursionError somewhere past a thousand levels), ValueError for what is no JSON or not UTF-8.

    UTF-8 only (RFC 8259), decoded before json.loads sees it: given bytes, json.loads also takes UTF-16 and UTF-32,
    whose characters can hold the bytes of '"' and '[' (U+2200 is 00 22 in UTF-16-LE) and so hide brackets from
    too_deep, which reads bytes; in UTF-8 no byte of a multi-byte character is ASCII."""
    decoded = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if too_deep(text):
        raise TooLarge(f"JSON nested deeper than {DEPTH_LIMIT} levels")
    return json.loads(decoded)


def hub_message(status: int, body: bytes) -> str:
    """The `message` of a JSON error from the hub, else the start of its body."""
    try:
        message = loads(body)["message"]
    except (ValueError, KeyError, TypeError, TooLarge):
        message = body[:1200].decode(errors="replace").strip()[:300]
    return str(message) if message else f"HTTP {status}"  # the hub may send {"message": null}


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # without hop-by-hop headers
    body: bytes
    source: str = "the hub"  # who sent it, for a refusal: "the hub at https://host:port/"

    def json(self) -> dict:
        """The body as a JSON object; {} when it is not one (an HTML error page, an empty body).
        Raises HubError(0) for JSON nested too deep."""
        try:
            found = loads(self.body)
        except ValueError:
            return {}
        except TooLarge as e:
            raise refused(self.source, e) from None
        return found if isinstance(found, dict) else {}


def sse_events(lines: list[str]) -> tuple[list[dict], list[str]]:
    """Server-sent events complete in `lines` (each one ends with a blank line), and the lines left over.
    Raises TooLarge for an event's JSON nested too deep."""
    events, data, start = [], [], 0
    for i, line in enumerate(lines):
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip():
            if data:
                try:
                    events.append(loads("\n".join(data).encode()))
                except ValueError:
                    pass  # not an event of JupyterHub's
            data, start = [], i + 1
    return events, lines[start:]


class EventStream:
    """Server-sent events from chunks as they arrive, each byte looked at a bounded number of times; a line, and
    the lines of one event, at most LINE_LIMIT. Raises TooLarge."""

    def __init__(self) -> None:
        self.part = bytearray()  # the line under way
        self.pending: list[str] = []  # the lines of the event under way
        self.held = 0

    def feed(self, chunk: bytes) -> list[dict]:
        *complete, rest = chunk.split(b"\n")
        if complete:
            complete[0] = bytes(self.part) + complete[0]
            self.part.clear()
        self.part += rest
        if len(self.part) > LINE_LIMIT or any(len(line) > LINE_LIMIT for line in complete):
            raise TooLarge(f"an event-stream line over {LINE_LIMIT // 1024} KiB")
        lines = [line.decode(errors="replace") for line in complete]
        if any(not line.strip() for line in lines):  # an event ends in this chunk
            found, self.pending = sse_events(self.pending + lines)
            self.held = sum(len(line) for line in self.pending)
        else:
            found = []
            self.pending.extend(lines)
            self.held += sum(len(line) for line in lines)
        if self.held > LINE_LIMIT:
            raise TooLarge(f"an event-stream event over {LINE_LIMIT // 1024} KiB")
        return found


async def connect(s: Settings, tls: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection to the hub's dialled address, verified for its TLS name by `tls`."""
    try:
        return await asyncio.wait_for(asyncio.open_connection(
            s.server_host, s.server_port, ssl=tls, server_hostname=s.tls_name), CONNECT_TIMEOUT)
    except ssl.SSLCertVerificationError as e:
        if s.trust.pin:  # a pin that no longer holds: say so as ssh does, with what the hub presents now
            raise PinBroken(trust.changed_message(s.dial_url, s.trust.pin, await presented_fingerprint(s))) from e
        raise HubError(0, f"the TLS handshake with the hub at {s.dial_url} failed: {e}") from e
    except ssl.SSLError as e:
        raise HubError(0, f"the TLS handshake with the hub at {s.dial_url} failed: {e}") from e
    except (OSError, TimeoutError) as e:
        raise HubError(0, f"cannot reach the hub at {s.dial_url}: {e or 'timed out'}") from e


async def exchange(s: Settings, tls: ssl.SSLContext, method: str, target: str, headers: list[tuple[str, str]],
                   body: bytes = b"") -> AsyncIterator[h11.Response | h11.Data]:
    """One request on its own connection; the answer's head, then its body as it arrives."""
    reader, writer = await connect(s, tls)
    try:
        conn = h11.Connection(h11.CLIENT)
        headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP] + [("Connection", "close")]
        headers += [("Content-Length", str(len(body)))] if body else []
        writer.write(conn.send(h11.Request(method=method, target=target, headers=headers)))
        if body:
            writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        while not isinstance(event := conn.next_event(), h11.EndOfMessage | h11.ConnectionClosed):
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(READ_SIZE))
            elif isinstance(event, h11.Response | h11.Data):
                yield event
    except (OSError, h11.ProtocolError) as e:
        raise HubError(0, f"the connection to the hub broke: {e}") from e
    finally:
        writer.close()


async def read_body(s: Settings, events: AsyncIterator[h11.Response | h11.Data]) -> bytes:
    """The rest of an answer's body, at most BODY_LIMIT bytes."""
    chunks, size = [], 0
    async for event in events:
        chunks.append(bytes(event.data))
        if (size := size + len(event.data)) > BODY_LIMIT:
            raise refused(hub_at(s), TooLarge(f"an answer over {BODY_LIMIT // 2**20} MiB"))
    return b"".join(chunks)


async def request(s: Settings, tls: ssl.SSLContext, method: str, target: str, headers: list[tuple[str, str]],
                  body: bytes = b"") -> Answer:
    """One request, as it is, to the hub's public side; the whole answer."""
    async with aclosing(exchange(s, tls, method, target, headers, body)) as events:
        async for head in events:
            kept = [(k.decode(), v.decode("latin-1")) for k, v in head.headers if k.decode().lower() not in HOP_BY_HOP]
            return Answer(head.status_code, head.reason.decode(), kept, await read_body(s, events), hub_at(s))
    raise HubError(0, "the hub closed the connection without an answer")


async def events(s: Settings, tls: ssl.SSLContext, target: str, headers: list[tuple[str, str]]
                 ) -> AsyncIterator[dict]:
    """The server-sent events at `target`, as they arrive. Raises HubError with the hub's status and message
    when it answers other than 200."""
    stream = EventStream()
    async with aclosing(exchange(s, tls, "GET", target, headers)) as answer:
        async for event in answer:
            if isinstance(event, h11.Response):
                if event.status_code != 200:
                    raise HubError(event.status_code, hub_message(event.status_code, await read_body(s, answer)))
                continue
            try:
                found = stream.feed(bytes(event.data))
            except TooLarge as e:
                raise refused(hub_at(s), e) from None
            for sent in found:
                yield sent


def unverified() -> ssl.SSLContext:
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    return tls


def chain_of(tls_object: ssl.SSLObject, verified: bool = False) -> list[x509.Certificate]:
    """The certificates of a handshake, the peer's own first: as it presented them (unverified), or as verified,
    up to the anchor."""
    name = "get_verified_chain" if verified else "get_unverified_chain"
    if hasattr(tls_object, name):
        found = getattr(tls_object, name)()
    else:  # Python 3.12: the same calls, not yet public
        found = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in getattr(tls_object._sslobj, name)() or []]
    return [x509.load_der_x509_certificate(der) for der in found]


async def presented(s: Settings) -> list[x509.Certificate]:
    """The chain the hub presents, read without trusting it (nothing is sent). Raises HubError(0)."""
    _, writer = await connect(s, unverified())
    try:
        return chain_of(writer.get_extra_info("ssl_object"))
    finally:
        writer.close()


async def presented_fingerprint(s: Settings) -> str:
    try:
        return trust.fingerprint((await presented(s))[-1])
    except HubError as e:
        return f"unknown ({e.message})"


async def verified_chain(s: Settings, tls: ssl.SSLContext) -> list[x509.Certificate]:
    """The chain a handshake with `tls` verified, from the hub's certificate to the anchor. Raises HubError(0)."""
    _, writer = await connect(s, tls)
    try:
        return chain_of(writer.get_extra_info("ssl_object"), verified=True)
    finally:
        writer.close()


async def handshake(s: Settings, tls: ssl.SSLContext) -> x509.Certificate:
    """The certificate the hub presents in a handshake with `tls`. Raises HubError(0) when it fails."""
    _, writer = await connect(s, tls)
    try:
        return x509.load_der_x509_certificate(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
    finally:
        writer.close()
