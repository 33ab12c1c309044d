"""Which credential travels upstream: JupyterHub 5+ reads tokens only from the Authorization header."""

from urllib.parse import quote
from urllib.parse import unquote_plus


def pop_query_token(query: str) -> tuple[str, str | None]:
    """'?a=1&token=T&b' -> ('?a=1&b', 'T'). Other parameters keep their exact bytes; the last token wins,
    and every `token` parameter leaves the URL, since the server prefers a URL token over the header."""
    if not query.startswith("?"):
        return query, None
    token = None
    kept = []
    for part in query[1:].split("&"):
        name, _, value = part.partition("=")
        if unquote_plus(name) == "token":
            token = unquote_plus(value)
        else:
            kept.append(part)
    return ("?" + "&".join(kept) if kept else ""), token


def redact_query_tokens(target: str) -> str:
    """A request target with every `token` parameter's value redacted, for what stays in a flow."""
    path, sep, query = target.partition("?")
    parts = query.split("&") if sep else []
    for i, part in enumerate(parts):
        name, eq, value = part.partition("=")
        if eq and unquote_plus(name) == "token":
            parts[i] = f"{name}={quote(redact(unquote_plus(value)))}"
    return path + sep + "&".join(parts)


def header_token(authorization: str | None) -> str | None:
    """The token of an 'Authorization: token T' (or 'Bearer T') header."""
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() in ("token", "bearer") and value.strip():
        return value.strip()
    return None


def redact(secret: str) -> str:
    """Enough of a secret to tell two apart in a log, never enough to use it."""
    return f"…{secret[-4:]}" if len(secret) > 8 else "…"
