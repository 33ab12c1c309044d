"""Text from the hub, a server or a client is data: before it reaches a terminal or the log, every character that
a terminal or a text view would act on instead of showing is written as its escape, and the text is bounded.

Escaped: C0 and C1 controls (ESC, BEL, CR, LF, TAB, NUL, ...), DEL, the line and paragraph separators
(U+2028, U+2029) and the format characters (Unicode category Cf: the bidi embeddings, overrides and isolates
U+202A-202E and U+2066-2069, zero-width characters, ...), which can reorder or hide what is shown."""

import unicodedata

FIELD = 300  # characters of one field (a name, a URL, a message) in a table or a sentence
LINE = 2000  # characters of a whole line of output that quotes such fields
CUT = "…"
ESCAPED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}  # controls, format, line/paragraph separators, lone surrogates


def escape(char: str) -> str:
    """One character as it is shown: itself, or its Python-style escape."""
    if unicodedata.category(char) not in ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def has_controls(text: str) -> bool:
    """Whether `text` holds a character that printable() escapes: a name (a user's) must hold none."""
    return any(unicodedata.category(char) in ESCAPED_CATEGORIES for char in text)


def printable(text: object, limit: int = FIELD) -> str:
    """`text` (str() of it) safe to write to a terminal or a log line: escaped, and at most `limit` characters,
    a longer one cut with '…' (never inside an escape)."""
    text = str(text)
    pieces = [escape(char) for char in text[:limit + 1]]  # no more can be shown: a huge text costs no more
    if len(text) <= limit and sum(map(len, pieces)) <= limit:
        return "".join(pieces)
    shown, size = [], len(CUT)
    for piece in pieces:
        if size + len(piece) > limit:
            break
        shown.append(piece)
        size += len(piece)
    return "".join(shown) + CUT


def columns(lines: list[list[str]] | list[tuple[str, ...]]) -> str:
    """Plain columns for a terminal, two spaces apart; the cells escaped already."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)
