"""forward's header work in one pass, against mitmproxy's Headers doing it one change at a time."""

import pytest
from mitmproxy.http import Headers

from addon.core import forward
from addon.rewrite import WireHeaders

FIELDS = ((b"Host", b"127.0.0.1:8000"), (b"cookie", b"a=1"), (b"Accept", b"*/*"), (b"COOKIE", b"b=2"),
          (b"Referer", b"http://127.0.0.1:8000/lab?token=x"), (b"X-\xc3\xa9", b"\xff"))


@pytest.mark.parametrize("changes", [
    {},
    {"Host": "hub:443", "Authorization": "token T", "Accept-Encoding": "identity"},
    {"Cookie": "a=1", "Referer": None, "Origin": None},
    {"Cookie": None, "accept": "text/html", "Host": "h"},
])
def test_changed_fields_are_those_of_one_change_at_a_time(changes):
    one_by_one = Headers(FIELDS)
    for name, value in changes.items():
        if value is None:
            one_by_one.pop(name, None)
        else:
            one_by_one[name] = value
    assert forward.changed_fields(FIELDS, changes) == one_by_one.fields


def test_wire_headers_show_the_secret_redacted_and_send_it_in_its_place():
    two = FIELDS + ((b"authorization", b"token a"), (b"Authorization", b"token b"))
    wire = WireHeaders(two, {"Authorization": ("token SECRET", "token …CRET")})
    assert wire["Authorization"] == "token …CRET" and wire.get_all("authorization") == ["token …CRET"]
    expected = Headers(two)
    expected["Authorization"] = "token SECRET"
    assert bytes(wire) == bytes(expected) and wire.on_the_wire().fields == expected.fields
    wire["Authorization"] = "token …CRET"  # as redacting it again does: still sent in full
    wire["Accept"] = "text/html"
    assert b"authorization: token SECRET\r\n" in bytes(wire) and b"Accept: text/html" in bytes(wire)
    assert bytes(WireHeaders((), {})) == b""


def test_the_header_table_reads_as_mitmproxys_headers():
    headers = Headers(FIELDS)
    table = forward.header_table(FIELDS)
    for name in ("host", "Cookie", "COOKIE", "referer", "origin"):
        assert table.get(name.lower()) == headers.get(name)  # the cookies folded: "a=1, b=2"
    assert table == {name.lower(): headers[name] for name in headers}
