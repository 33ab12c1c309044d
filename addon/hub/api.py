"""The JupyterHub REST API as the bridge and `./run.sh check` use it: who owns the token, start a server, follow
its progress, send one request to the hub's public side again, and the certificate the hub presents. asyncio with
stdlib ssl and h11 (both already in mitmproxy's runtime), so that waiting never blocks mitmproxy's event loop.
The runtime's only maintained HTTP client, tornado's AsyncHTTPClient, could dial the IP under the TLS name
(hostname_mapping), but it hands a streamed body only to a callback and never shows the peer certificate, so it
would not make this module shorter; httpx and aiohttp are not in the runtime."""

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from urllib.parse import quote

import h11
from cryptography import x509

from addon.hub import spawn_options
from addon.core.settings import Settings

CONNECT_TIMEOUT = 10.0
API_TIMEOUT = 30.0
# Hop-by-hop headers belong to one connection; the answer travels on another one.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te",
                        "trailer", "proxy-connection"})


class HubError(Exception):
    """The hub refused (status and its own message), or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]  # without hop-by-hop headers
    body: bytes

    def json(self) -> dict:
        """The body as a JSON object; {} when it is not one (an HTML error page, an empty body)."""
        try:
            found = json.loads(self.body)
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}


def tls_context(s: Settings) -> ssl.SSLContext:
    """Verification of the hub as the bridge does it: the cluster CA (or the system store), name checked."""
    return ssl.create_default_context(cafile=s.ca_file)


def server_path(user: str, server: str) -> str:
    """The API path of a user's default or named server."""
    base = f"/users/{quote(user, safe='')}"
    return f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"


def hub_message(status: int, body: bytes) -> str:
    """The `message` of a JSON error from the hub, else the start of its body."""
    try:
        message = json.loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip()[:300]
    return str(message) if message else f"HTTP {status}"  # the hub may send {"message": null}


def sse_events(lines: list[str]) -> tuple[list[dict], list[str]]:
    """Server-sent events complete in `lines` (each one ends with a blank line), and the lines left over."""
    events, data, start = [], [], 0
    for i, line in enumerate(lines):
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip():
            if data:
                try:
                    events.append(json.loads("\n".join(data)))
                except ValueError:
                    pass  # not an event of JupyterHub's
            data, start = [], i + 1
    return events, lines[start:]


class Hub:
    """The hub behind the bridge, reached the way mitmproxy reaches it: the dialled address, the TLS name,
    the cluster CA."""

    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.tls = tls_context(s)

    async def _connect(self, tls: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        s = self.settings
        try:
            return await asyncio.wait_for(asyncio.open_connection(
                s.server_host, s.server_port, ssl=tls, server_hostname=s.tls_name), CONNECT_TIMEOUT)
        except ssl.SSLError as e:
            raise HubError(0, f"the TLS handshake with the hub at {s.dial_url} failed: {e}") from e
        except (OSError, TimeoutError) as e:
            raise HubError(0, f"cannot reach the hub at {s.dial_url}: {e or 'timed out'}") from e

    async def _exchange(self, method: str, target: str, headers: list[tuple[str, str]],
                        body: bytes = b"") -> AsyncIterator[h11.Response | h11.Data]:
        reader, writer = await self._connect(self.tls)
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
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response | h11.Data):
                    yield event
        except (OSError, h11.ProtocolError) as e:
            raise HubError(0, f"the connection to the hub broke: {e}") from e
        finally:
            writer.close()

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> Answer:
        """One request, as it is, to the hub's public side; the whole answer."""
        head, chunks = None, []
        async with aclosing(self._exchange(method, target, headers, body)) as events:
            async for event in events:
                if isinstance(event, h11.Response):
                    head = event
                else:
                    chunks.append(bytes(event.data))
        if head is None:
            raise HubError(0, "the hub closed the connection without an answer")
        kept = [(k.decode(), v.decode("latin-1")) for k, v in head.headers if k.decode().lower() not in HOP_BY_HOP]
        return Answer(head.status_code, head.reason.decode(), kept, b"".join(chunks))

    async def handshake(self, verify: bool = True) -> x509.Certificate:
        """The certificate the hub presents: verified as the bridge verifies it, or (verify=False) read without
        trusting it, to say why it is not trusted. Raises HubError(0) when the connection or handshake fails."""
        tls = self.tls
        if not verify:
            tls = ssl.create_default_context()
            tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
        _, writer = await self._connect(tls)
        try:
            return x509.load_der_x509_certificate(writer.get_extra_info("ssl_object").getpeercert(binary_form=True))
        finally:
            writer.close()

    def _api_headers(self) -> list[tuple[str, str]]:
        token = [("Authorization", f"token {self.settings.hub_token}")] if self.settings.hub_token else []
        return [("Host", self.settings.hub_authority), *token, ("Accept", "application/json")]

    async def api(self, method: str, path: str, body: bytes = b"") -> Answer:
        """One call of the hub's REST API with the bridge's token (if any) and a JSON body (if any), its refusals
        included; raises HubError(0) only when the hub does not answer."""
        target = f"{self.settings.base_url}hub/api{path}"
        headers = self._api_headers() + ([("Content-Type", "application/json")] if body else [])
        try:
            return await asyncio.wait_for(self.request(method, target, headers, body), API_TIMEOUT)
        except TimeoutError:
            raise HubError(0, f"the hub did not answer {method} {target} within {API_TIMEOUT:g} s") from None

    async def _api(self, method: str, path: str, ok: tuple[int, ...] = (200,), body: bytes = b"") -> Answer:
        answer = await self.api(method, path, body)
        if answer.status not in ok:
            raise HubError(answer.status, hub_message(answer.status, answer.body))
        return answer

    async def whoami(self) -> dict:
        """The token's owner: name, kind ('user' or 'service'), scopes."""
        return json.loads((await self._api("GET", "/user")).body)

    async def start(self, user: str, server: str, options: dict | None = None) -> int:
        """Ask for a start with these user options (none: the hub reuses those of the last start): 201 ready,
        202 pending. Raises HubError (400 when running or pending already, or when the hub refuses the options)."""
        body = spawn_options.start_body(options, await self.version()) if options else b""
        return (await self._api("POST", server_path(user, server), ok=(201, 202), body=body)).status

    async def progress(self, user: str, server: str) -> AsyncIterator[dict]:
        """The events of a start as the hub sends them ({progress, message, ready | failed}).
        Raises HubError(400) when no start is under way."""
        target = f"{self.settings.base_url}hub/api{server_path(user, server)}/progress"
        lines: list[str] = []
        pending = b""
        async with aclosing(self._exchange("GET", target, self._api_headers())) as events:
            async for event in events:
                if isinstance(event, h11.Response):
                    if event.status_code != 200:
                        body = b"".join([bytes(e.data) async for e in events])
                        raise HubError(event.status_code, hub_message(event.status_code, body))
                    continue
                *complete, pending = (pending + bytes(event.data)).split(b"\n")
                found, lines = sse_events(lines + [line.decode(errors="replace") for line in complete])
                for e in found:
                    yield e

    # Tokens, for ./run.sh login and logout and the renewal. The answers come back as they are: the callers
    # tell the user which refusal it was.
    async def mint_token(self, user: str, request: dict) -> Answer:
        """POST /users/<user>/tokens with `request` (note, expires_in, scopes; for a password sign-in also
        "auth": {"username", "password"}, with no hub token in these settings: the hub asks its authenticator).
        201 carries the new token's model, "token" included."""
        target = f"{self.settings.base_url}hub/api/users/{quote(user, safe='')}/tokens"
        headers = [*self._api_headers(), ("Content-Type", "application/json")]
        try:
            return await asyncio.wait_for(self.request("POST", target, headers, json.dumps(request).encode()),
                                          API_TIMEOUT)
        except TimeoutError:
            raise HubError(0, f"the hub did not answer POST {target} within {API_TIMEOUT:g} s") from None

    async def revoke_token(self, user: str, token_id: str) -> Answer:
        """DELETE /users/<user>/tokens/<id>: 204 when revoked."""
        return await self.api("DELETE", f"/users/{quote(user, safe='')}/tokens/{quote(token_id, safe='')}")

    async def token_model(self, user: str, token_id: str) -> dict:
        """A token's model (expires_at, scopes, note); raises HubError when the hub refuses."""
        return (await self._api("GET", f"/users/{quote(user, safe='')}/tokens/{quote(token_id, safe='')}")).json()

    # Servers, for ./run.sh servers, start and stop, and for starts with options.
    async def version(self) -> str:
        """The hub's version, e.g. '6.1.1' (GET /hub/api needs no scope); empty when it does not say."""
        return str((await self._api("GET", "/")).json().get("version") or "")

    async def user_model(self, user: str) -> dict:
        """A user and all their servers, stopped named ones included (needs read:servers)."""
        return (await self._api("GET", f"/users/{quote(user, safe='')}?include_stopped_servers=1")).json()

    async def stop(self, user: str, server: str) -> int:
        """Ask for a stop, never a removal (no body): 204 stopped, 202 stopping. Raises HubError."""
        return (await self._api("DELETE", server_path(user, server), ok=(202, 204))).status

    async def shared(self, user: str) -> list[dict]:
        """The servers other users shared with this one (JupyterHub 5+); [] where the hub has no sharing."""
        answer = await self.api("GET", f"/users/{quote(user, safe='')}/shared")
        if answer.status == 404:
            return []
        if answer.status != 200:
            raise HubError(answer.status, hub_message(answer.status, answer.body))
        return list(answer.json().get("items") or [])
