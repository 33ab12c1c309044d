import gzip
import zlib

import brotli
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


@pytest.mark.parametrize("target, redacted", [
    # Issue 18.6: the browser's ticket is redacted wherever a token is
    ("/lab?bridge-login=1060.abcdef.0123456789abcdef", "/lab?bridge-login=%E2%80%A6cdef"),
    ("http://x.localhost:8000/lab?a=1&Bridge-Login=1060.abcdef.0123456789abcdef",
     "http://x.localhost:8000/lab?a=1&Bridge-Login=%E2%80%A6cdef"),
])
def test_the_ticket_is_redacted_as_a_token_is(target, redacted):
    assert credentials.redact_query_tokens(target) == redacted
    assert "bridge-login" not in credentials.without_query_tokens(target).lower()


@pytest.mark.parametrize("content_type, page", [
    ("text/html", True), ("text/html; charset=UTF-8", True), ("Text/HTML", True), ("TEXT/HTML;charset=utf-8", True),
    ("application/xhtml+xml", True), (" application/XHTML+xml ; charset=utf-8", True),
    ("application/json", False), ("text/plain; note=html", False), ("", False),
])
def test_is_page(content_type, page):
    """Issue 18.5: `Text/HTML` and `application/xhtml+xml` were not pages to the filter."""
    assert credentials.is_page(content_type) == page


PAGE = b'<script>{"token": "5fc3b6bb84e54872a8b2235a7d2047c9"}</script>' * 50
CODINGS = {"gzip": gzip.compress, "x-gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress,
           "GZIP": gzip.compress, "gzip, br": lambda b: brotli.compress(gzip.compress(b)),
           "identity": lambda b: b, "": lambda b: b, "br, identity": brotli.compress}


@pytest.mark.parametrize("coding", list(CODINGS))
@pytest.mark.parametrize("size", [1, 7, 100, 100_000])
def test_decoder_undoes_each_coding_chunk_by_chunk(coding, size):
    encoded = CODINGS[coding](PAGE)
    decode = credentials.decoder(coding) or (lambda chunk: chunk)
    out = b"".join(decode(encoded[i:i + size]) for i in range(0, len(encoded), size)) + decode(b"")
    assert out == PAGE and credentials.decoded(coding, encoded) == PAGE


@pytest.mark.parametrize("coding", ["compress", "zstd", "gzip, compress"])
def test_decoder_refuses_codings_it_cannot_undo(coding):
    with pytest.raises(ValueError, match="Content-Encoding"):
        credentials.decoder(coding)


def test_decoded_refuses_a_body_that_is_not_in_its_coding():
    with pytest.raises(ValueError, match="gzip"):
        credentials.decoded("gzip", b"not gzip at all")


@pytest.mark.parametrize("size", [1, 3, 33, 1000])
def test_body_filter_decodes_first(size):
    """Issue 18.5: a gzip page streamed past the filter with the hub token in it."""
    secret = "5fc3b6bb84e54872a8b2235a7d2047c9"
    encoded = gzip.compress(PAGE)
    f = credentials.BodyFilter(secret, credentials.decoder("gzip"))
    out = b"".join(f(encoded[i:i + size]) for i in range(0, len(encoded), size)) + f(b"")
    assert out == PAGE.replace(secret.encode(), b" " * len(secret))
