"""The JupyterHub REST API as the bridge and its subcommands use it: who owns the token, start a server, follow
its progress, tokens, the servers of a user, send one request to the hub's public side again, and the certificate
the hub presents. The wire under it (connections, bounds on what the hub sends) is in wire.py."""

import asyncio
import functools
import json
import ssl
from collections.abc import AsyncIterator
from urllib.parse import quote
from urllib.parse import urlencode

from cryptography import x509

from addon.core.settings import Settings
from addon.core import spawn_options
from addon.hub import wire
from addon.hub.wire import Answer  # noqa: F401  (callers import these from here: hub.Answer, hub.sse_events)
from addon.hub.wire import HubError
from addon.hub.wire import PinBroken  # noqa: F401  (hub.PinBroken: a hard failure for the entry points)
from addon.hub.wire import hub_message
from addon.hub.wire import sse_events  # noqa: F401

API_TIMEOUT = 30.0


def tls_context(s: Settings) -> ssl.SSLContext:
    """Verification of the hub as the bridge does it: the certificates the settings loaded once (the cluster CA,
    a pinned certificate, or the system store), name checked. One context per trust: a renewal reads no file."""
    return _context(s.trust.pem)


@functools.lru_cache(maxsize=4)
def _context(pem: bytes | None) -> ssl.SSLContext:
    tls = ssl.create_default_context(cadata=pem.decode("ascii") if pem else None)
    # A pinned certificate that is not a root (the hub's own, or an intermediate) is an anchor as it is (mitmproxy
    # gets the same flag, addon/rewrite.py); Python 3.13 sets it by default.
    tls.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return tls


def server_path(user: str, server: str) -> str:
    """The API path of a user's default or named server."""
    base = f"/users/{quote(user, safe='')}"
    return f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"


def token_path(user: str, token_id: str = "") -> str:
    base = f"/users/{quote(user, safe='')}/tokens"
    return f"{base}/{quote(token_id, safe='')}" if token_id else base


class Hub:
    """The hub behind the bridge, reached the way mitmproxy reaches it: the dialled address, the TLS name,
    the cluster CA."""

    def __init__(self, s: Settings) -> None:
        self.settings = s
        self.tls = tls_context(s)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") -> Answer:
        """One request, as it is, to the hub's public side; the whole answer (at most wire.BODY_LIMIT)."""
        return await wire.request(self.settings, self.tls, method, target, headers, body)

    async def handshake(self, verify: bool = True) -> x509.Certificate:
        """The certificate the hub presents: verified as the bridge verifies it, or (verify=False) read without
        trusting it, to say why it is not trusted. Raises HubError(0) when the connection or handshake fails."""
        return await wire.handshake(self.settings, self.tls if verify else wire.unverified())

    async def presented(self) -> list[x509.Certificate]:
        """The chain the hub presents (its own certificate first), read without trusting it; nothing is sent."""
        return await wire.presented(self.settings)

    async def verified_chain(self) -> list[x509.Certificate]:
        """The chain as the bridge's trust verified it, its anchor last. Raises HubError(0)."""
        return await wire.verified_chain(self.settings, self.tls)

    def _api_headers(self, token: bool = True) -> list[tuple[str, str]]:
        token = [("Authorization", f"token {self.settings.hub_token}")] if token and self.settings.hub_token else []
        return [("Host", self.settings.hub_authority), *token, ("Accept", "application/json")]

    def _target(self, path: str) -> str:
        return f"{self.settings.base_url}hub/api{path}"

    async def api(self, method: str, path: str, body: bytes = b"", token: bool = True) -> Answer:
        """One call of the hub's REST API with the bridge's token (if any) and a JSON body (if any), its refusals
        included; raises HubError(0) only when the hub does not answer, or answers beyond the wire's bounds."""
        target = self._target(path)
        headers = self._api_headers(token) + ([("Content-Type", "application/json")] if body else [])
        try:
            return await asyncio.wait_for(self.request(method, target, headers, body), API_TIMEOUT)
        except TimeoutError:
            raise HubError(0, f"the hub did not answer {method} {target} within {API_TIMEOUT:g} s") from None

    async def _api(self, method: str, path: str, ok: tuple[int, ...] = (200,), body: bytes = b"",
                   token: bool = True) -> Answer:
        answer = await self.api(method, path, body, token)
        if answer.status not in ok:
            raise HubError(answer.status, hub_message(answer.status, answer.body))
        return answer

    async def whoami(self) -> dict:
        """The token's owner: name, kind ('user' or 'service'), scopes."""
        answer = await self._api("GET", "/user")
        if "name" not in (me := answer.json()):
            raise HubError(0, f"{answer.source} answered GET {self._target('/user')} without the token's owner")
        return me

    async def start(self, user: str, server: str, options: dict | None = None) -> int:
        """Ask for a start with these user options (none: the hub reuses those of the last start): 201 ready,
        202 pending. Raises HubError (400 when running or pending already, or when the hub refuses the options)."""
        body = spawn_options.start_body(options, await self.version()) if options else b""
        return (await self._api("POST", server_path(user, server), ok=(201, 202), body=body)).status

    def progress(self, user: str, server: str) -> AsyncIterator[dict]:
        """The events of a start as the hub sends them ({progress, message, ready | failed}).
        Raises HubError(400) when no start is under way."""
        target = self._target(f"{server_path(user, server)}/progress")
        return wire.events(self.settings, self.tls, target, self._api_headers())

    # Tokens, for ./run.sh login and logout and the renewal. The answers come back as they are: the callers
    # tell the user which refusal it was.
    async def mint_token(self, user: str, request: dict) -> Answer:
        """POST /users/<user>/tokens with `request` (note, expires_in, scopes; for a password sign-in also
        "auth": {"username", "password"}, with no hub token in these settings: the hub asks its authenticator).
        201 carries the new token's model, "token" included."""
        return await self.api("POST", token_path(user), json.dumps(request).encode())

    async def revoke_token(self, user: str, token_id: str) -> Answer:
        """DELETE /users/<user>/tokens/<id>: 204 when revoked."""
        return await self.api("DELETE", token_path(user, token_id))

    async def token_model(self, user: str, token_id: str) -> dict:
        """A token's model (expires_at, scopes, note); raises HubError when the hub refuses."""
        return (await self._api("GET", token_path(user, token_id))).json()

    async def oauth_token(self, form: dict[str, str]) -> Answer:
        """POST <base>hub/api/oauth2/token with a form (login --browser's code exchange, which carries the client's
        secret in the body, never a header); the answer as it is (200: access_token; 400/401: error)."""
        headers = [("Host", self.settings.hub_authority), ("Accept", "application/json"),
                   ("Content-Type", "application/x-www-form-urlencoded")]
        target = self._target("/oauth2/token")
        try:
            return await asyncio.wait_for(self.request("POST", target, headers, urlencode(form).encode()), API_TIMEOUT)
        except TimeoutError:
            raise HubError(0, f"the hub did not answer POST {target} within {API_TIMEOUT:g} s") from None

    # Servers, for ./run.sh servers, start and stop, and for starts with options.
    async def version(self) -> str:
        """The hub's version, e.g. '6.1.1' (GET /hub/api needs no scope, so no token goes); empty when it does
        not say."""
        return str((await self._api("GET", "/", token=False)).json().get("version") or "")

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
