"""Which credential travels upstream: JupyterHub 5+ reads tokens only from the Authorization header."""

import re
import zlib
from collections.abc import Callable
from urllib.parse import quote
from urllib.parse import unquote_plus

import brotli

LOGIN = "bridge-login"  # the query parameter of a browser's single-use ticket to its cookie
# Parameter separators a server might split a query on: '&', and ';' for older parsers.
_SEPARATOR = re.compile(r"([&;])")


def pop_query_token(query: str) -> tuple[str, str | None]:
    """'?a=1&token=T&b' -> ('?a=1&b', 'T'). Other parameters keep their exact bytes; the last token wins,
    and every `token` parameter leaves the URL, since the server prefers a URL token over the header."""
    return pop_param(query, "token")


def pop_param(query: str, wanted: str) -> tuple[str, str | None]:
    """'?a=1&<wanted>=V' -> ('?a=1', 'V'), split on '&' as Jupyter's server reads a query; the last one wins."""
    if not query.startswith("?"):
        return query, None
    value = None
    kept = []
    for part in query[1:].split("&"):
        name, _, raw = part.partition("=")
        if unquote_plus(name) == wanted:
            value = unquote_plus(raw)
        else:
            kept.append(part)
    return ("?" + "&".join(kept) if kept else ""), value


def is_token_name(name: str) -> bool:
    """Every spelling of a parameter name that a server might read as `token`, and the browser's ticket."""
    return unquote_plus(name).strip().lower() in ("token", LOGIN)


def redact_query_tokens(target: str) -> str:
    """A request target (or URL) with every token parameter's value redacted, whatever its case or separator,
    for what stays in a flow or a log."""
    path, sep, query = target.partition("?")
    parts = _SEPARATOR.split(query) if sep else []
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and is_token_name(name):
            parts[i] = f"{name}={quote(redact(unquote_plus(value)))}"
    return path + sep + "".join(parts)


def without_query_tokens(url: str) -> str:
    """A URL (a Referer) without any token parameter, for what travels on."""
    path, sep, query = url.partition("?")
    if not sep:
        return url
    kept = [p for p in re.split(r"[&;]", query) if not is_token_name(p.partition("=")[0])]
    return path + ("?" + "&".join(kept) if kept else "")


def header_token(authorization: str | None) -> str | None:
    """The token of an 'Authorization: token T' (or 'Bearer T') header."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def redact(secret: str) -> str:
    """Enough of a secret to tell two apart in a log, never enough to use it."""
    if secret.startswith("…"):
        return secret  # redacted already
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"


def quoted(value: str, limit: int = 40) -> str:
    """A client's value quoted in a refusal or a log line: the start of it, never kilobytes."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


def is_page(content_type: str) -> bool:
    """An HTML page (text/html, application/xhtml+xml, in any case), where JupyterHub writes the token that
    authenticated it."""
    return "html" in content_type.partition(";")[0].lower()


class _Brotli:
    def __init__(self) -> None:
        self.decompressor = brotli.Decompressor()

    def decompress(self, data: bytes) -> bytes:
        return self.decompressor.process(data)

    def flush(self) -> bytes:
        return b""


_DECODERS = {"gzip": lambda: zlib.decompressobj(47), "x-gzip": lambda: zlib.decompressobj(47),
             "deflate": lambda: zlib.decompressobj(), "br": _Brotli}


def decoder(content_encoding: str) -> Callable[[bytes], bytes] | None:
    """Undoes a Content-Encoding chunk by chunk (b"" at the end); None for identity. Raises ValueError for a
    coding it cannot undo."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip().lower() not in ("", "identity")]
    if unknown := [c for c in codings if c not in _DECODERS]:
        raise ValueError(f"Content-Encoding {quoted(', '.join(unknown))}")
    if not codings:
        return None
    steps = [_DECODERS[c]() for c in reversed(codings)]  # applied in order, so undone in reverse

    def decode(chunk: bytes) -> bytes:
        end = not chunk
        try:
            for step in steps:
                chunk = step.decompress(chunk) + (step.flush() if end else b"")
        except (zlib.error, brotli.error) as e:
            raise ValueError(f"Content-Encoding {quoted(content_encoding)}: {e}") from None
        return chunk
    return decode


def decoded(content_encoding: str, body: bytes) -> bytes:
    """A whole body with its Content-Encoding undone; ValueError as `decoder`, and for a body that is not in it."""
    decode = decoder(content_encoding)
    return decode(body) + decode(b"") if decode else body


class BodyFilter:
    """Blanks a secret out of a body that streams through in chunks, also one split across chunks: each
    occurrence becomes as many spaces, so Content-Length stays true. Call with b"" at the end for the rest.
    `decode`: a `decoder()` the body passes through first."""

    def __init__(self, secret: str, decode: Callable[[bytes], bytes] | None = None) -> None:
        self.secret = secret.encode()
        self.decode = decode
        self.held = b""  # the end of what came so far, which may be the start of the secret

    def __call__(self, chunk: bytes) -> bytes:
        data = self.held + (self.decode(chunk) if self.decode else chunk)
        data = data.replace(self.secret, b" " * len(self.secret))
        keep = min(len(self.secret) - 1, len(data)) if chunk else 0
        self.held = data[len(data) - keep:] if keep else b""
        return data[:len(data) - keep]
