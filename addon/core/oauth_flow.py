"""The pure parts of `./run.sh login --browser` (addon/commands/oauth.py): the OAuth client, PKCE (S256), the
authorize URL, what came to the callback listener, and the page the browser lands on (which holds no token)."""

import base64
import dataclasses
import hashlib
import secrets
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit

CALLBACK_PATH = "/oauth_callback"


@dataclasses.dataclass(frozen=True)
class Client:
    id: str
    secret: str
    port: int

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"


@dataclasses.dataclass(frozen=True)
class Callback:
    """What came to the callback: kind 'code' (value: the code), 'refused' (value: the hub's error, as sent),
    'stranger' (not this sign-in's answer: value says why) or 'elsewhere' (another path)."""
    kind: str
    value: str = ""


def pkce() -> tuple[str, str]:
    """A fresh PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    return verifier, challenge_of(verifier)


def challenge_of(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(base: str, client: Client, state: str, challenge: str, scopes: list[str]) -> str:
    """Where the browser signs in on the hub `base` (e.g. https://hub.example.org/jupyter/) and authorizes the
    bridge; the hub grants the `scopes` asked for ∩ the client's allowed ∩ the user's."""
    query = {"client_id": client.id, "redirect_uri": client.redirect_uri, "response_type": "code", "state": state,
             "code_challenge": challenge, "code_challenge_method": "S256",
             "scope": " ".join(scopes)}
    return f"{base}hub/api/oauth2/authorize?{urlencode(query)}"


def callback(target: str, state: str) -> Callback:
    """What a request for `target` (path and query) on the listener is, for the sign-in with this `state`."""
    parts = urlsplit(target)
    if parts.path != CALLBACK_PATH:
        return Callback("elsewhere")
    query = dict(parse_qsl(parts.query))
    if not secrets.compare_digest(query.get("state", "").encode(), state.encode()):
        return Callback("stranger", "its state is not this sign-in's")
    if "error" in query:
        return Callback("refused", " ".join(filter(None, (query["error"], query.get("error_description")))))
    if not query.get("code"):
        return Callback("stranger", "it carries no code")
    return Callback("code", query["code"])


PAGES = {  # status and text of the page the browser lands on: never a token, never the hub's words
    "code": (200, "Signed in. Go back to the terminal: login finishes there. You may close this page."),
    "refused": (400, "The hub did not sign you in. Go back to the terminal: it says why."),
    "stranger": (400, "This answer does not belong to the sign-in the terminal is waiting for."),
    "elsewhere": (404, "Nothing here."),
}


def page(kind: str) -> bytes:
    status, text = PAGES[kind]
    body = f"<!doctype html><title>jupyterhub-bridge login</title><p>{text}</p>\n".encode()
    head = (f"HTTP/1.1 {status} {'OK' if status == 200 else 'Not OK'}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
            "Connection: close\r\n\r\n")
    return head.encode() + body
