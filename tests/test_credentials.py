import pytest

from addon import credentials


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
