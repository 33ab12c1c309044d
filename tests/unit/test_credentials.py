import pytest

from addon.core import credentials


@pytest.mark.parametrize("query, rest, token", [
    ("", "", None),
    ("?token=abc", "", "abc"),
    ("?session_id=s&token=abc", "?session_id=s", "abc"),
    ("?token=abc&1795648608158", "?1795648608158", "abc"),
    ("?a=%2F&token=a%2Bb&b=", "?a=%2F&b=", "a+b"),
    ("?tokens=1&xtoken=2", "?tokens=1&xtoken=2", None),
    ("?token=old&token=new", "", "new"),
])
def test_pop_query_token(query, rest, token):
    assert credentials.pop_query_token(query) == (rest, token)


@pytest.mark.parametrize("header, token", [
    ("token abc", "abc"), ("Token abc ", "abc"), ("Bearer xyz", "xyz"), ("Basic dTpw", None), ("token", None),
    (None, None), ("", None),
])
def test_header_token(header, token):
    assert credentials.header_token(header) == token


def test_redact_keeps_only_the_last_four():
    assert credentials.redact("0123456789abcdef") == "…cdef"
    assert credentials.redact("short") == "…"


@pytest.mark.parametrize("target, redacted", [
    ("/api/x?token=0123456789abcdef&a=1", "/api/x?token=%E2%80%A6cdef&a=1"),
    ("/api/x?a=1", "/api/x?a=1"),
    ("/api/tokens", "/api/tokens"),
    ("/x?token=short", "/x?token=%E2%80%A6"),
])
def test_redact_query_tokens(target, redacted):
    assert credentials.redact_query_tokens(target) == redacted


@pytest.mark.parametrize("target, redacted", [
    # Issue 12.6: every spelling a server might read as a token
    ("/x?TOKEN=0123456789abcdef", "/x?TOKEN=%E2%80%A6cdef"),
    ("/x?a=1;token=0123456789abcdef", "/x?a=1;token=%E2%80%A6cdef"),
    ("/x?%74oken=0123456789abcdef&Token=0123456789abcdef", "/x?%74oken=%E2%80%A6cdef&Token=%E2%80%A6cdef"),
    ("http://127.0.0.1:8000/lab?token=0123456789abcdef", "http://127.0.0.1:8000/lab?token=%E2%80%A6cdef"),
])
def test_redact_query_tokens_of_every_spelling(target, redacted):
    assert credentials.redact_query_tokens(target) == redacted


@pytest.mark.parametrize("url, kept", [
    ("http://h/lab?token=abc", "http://h/lab"),
    ("http://h/lab?a=1&token=abc&b", "http://h/lab?a=1&b"),
    ("http://h/lab?TOKEN=abc;a=1", "http://h/lab?a=1"),
    ("http://h/lab?tokens=1", "http://h/lab?tokens=1"),
    ("http://h/lab", "http://h/lab"),
])
def test_without_query_tokens(url, kept):
    assert credentials.without_query_tokens(url) == kept


def test_quoted_keeps_a_refusal_short():
    assert credentials.quoted("h" * 100_000) == repr("h" * 40) + "…"
    assert credentials.quoted("localhost:1") == "'localhost:1'"


@pytest.mark.parametrize("size", [1, 2, 3, 7, 31, 32, 33, 1000])
def test_body_filter_blanks_a_secret_split_across_chunks(size):
    """Issue 12.3: a page that streams in chunks keeps no hub token, whatever the chunk boundaries."""
    secret = "5fc3b6bb84e54872a8b2235a7d2047c9"
    body = f'<script>{{"token": "{secret}", "x": 1}}</script>{secret}{secret[:5]}'.encode() * 3
    f = credentials.BodyFilter(secret)
    out = b"".join(f(body[i:i + size]) for i in range(0, len(body), size)) + f(b"")
    assert len(out) == len(body) and secret.encode() not in out
    assert out == body.replace(secret.encode(), b" " * len(secret))
