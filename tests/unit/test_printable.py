"""Issue 18.1: text from the hub, a server or a client is escaped and bounded before it reaches a terminal or
the log."""

import dataclasses
import unicodedata

import pytest

from addon.core.printable import printable

PAYLOAD = "\x1b]52;c;aGVsbG8=\x07\x1b[2J …\r\nFAKE: ✓ all good"


@pytest.mark.parametrize("text, shown", [
    ("alice", "alice"),
    ("", ""),
    ("ünïcødé ✓ 名前 …", "ünïcødé ✓ 名前 …"),  # printable Unicode stays as it is
    ("a\x1bb", "a\\x1bb"),  # ESC
    ("\x07", "\\x07"),  # BEL
    ("\x00\x7f", "\\x00\\x7f"),  # NUL, DEL
    ("\x9b31m", "\\x9b31m"),  # C1: a CSI on its own
    ("one\r\ntwo\ttab", "one\\x0d\\x0atwo\\x09tab"),  # CR/LF inside a field, TAB
    ("a\u2028b\u2029c\x85d", "a\\u2028b\\u2029c\\x85d"),  # line and paragraph separators, NEL
    ("\u202eevil\u202c", "\\u202eevil\\u202c"),  # bidi override and pop
    ("\u202a\u202b\u202d", "\\u202a\\u202b\\u202d"),  # embeddings
    ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),  # isolates
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),  # format characters
    ("\U000e0041", "\\U000e0041"),  # a tag character (format, outside the BMP)
    (42, "42"),
    (PAYLOAD, "\\x1b]52;c;aGVsbG8=\\x07\\x1b[2J …\\x0d\\x0aFAKE: ✓ all good"),
])
def test_printable_escapes(text, shown):
    assert printable(text) == shown


@pytest.mark.parametrize("text, limit, shown", [
    ("abcdef", 6, "abcdef"),
    ("abcdefg", 6, "abcde…"),
    ("ab\x1bcdef", 6, "ab…"),  # an escape is never cut in half
    ("ab\x1b", 6, "ab\\x1b"),  # exactly at the limit
    ("ab\x1bc", 6, "ab…"),
    ("x" * 10_000_000, 300, "x" * 299 + "…"),
])
def test_printable_bounds_the_length(text, limit, shown):
    assert printable(text, limit) == shown
    assert len(printable(text, limit)) <= limit


def test_nothing_a_terminal_acts_on_is_left():
    every = "".join(map(chr, range(0x110000))).replace("\ud800", "")
    shown = printable(every, len(every) * 10)
    assert not any(c in shown for c in "\x1b\x07\r\n\x9b\x9d\u2028\u2029\u202e\u2066\x7f")
    # What stays and is not "printable" to Python is a space (NBSP, ...), unassigned or private use: shown as a glyph
    assert {unicodedata.category(c) for c in shown if not c.isprintable()} <= {"Zs", "Cn", "Co"}


def test_the_banner_shows_the_hubs_user_and_server_names_escaped():
    from addon.commands import launch
    from addon.core import settings
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.0.0.5", jupyter_username="alice")
    s = dataclasses.replace(settings.resolve(values, {}), username=PAYLOAD, named_server=PAYLOAD)
    text = launch.banner(s, [f"  user '{PAYLOAD}' is the owner of the hub token"])
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())
    assert f"server '{printable(PAYLOAD)}' of user '{printable(PAYLOAD)}'" in text


def test_the_hubs_progress_lines_are_escaped(caplog):
    from addon.core import lifecycle
    with caplog.at_level("INFO"):
        lifecycle.ProgressLog()({"progress": PAYLOAD, "message": PAYLOAD})
    shown = printable(PAYLOAD)
    assert [r.getMessage() for r in caplog.records] == [f"Starting your server: {shown}% {shown}"]
