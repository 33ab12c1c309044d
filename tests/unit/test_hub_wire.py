"""Issue 18 point 4: the Hub client's bounds on what a hub sends (pure parts): event-stream lines, answer bodies,
JSON nesting. Each is linear: a hostile hub gets a refusal in well under a second, not minutes of CPU."""

import json
import time

import h11
import pytest

from addon.core import settings
from addon.hub import wire

MB = 2**20


def resolved() -> settings.Settings:
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update(jupyter_server_ip_or_name="10.1.2.3", jupyter_server_port="8443", jupyter_username="alice")
    return settings.resolve(values, {})


def feed_all(chunks) -> list[dict]:
    stream = wire.EventStream()
    return [event for chunk in chunks for event in stream.feed(chunk)]


@pytest.mark.parametrize("chunks", [
    [b'data: {"progress": 50}\n\ndata: {"ready": true}\n\n'],
    [b'data: {"progr', b'ess": 50}\n', b"\n", b':keepalive\n\ndata: {"ready"', b": true}\n\n"],
    [bytes([b]) for b in b'data: {"progress": 50}\r\n\r\ndata: {"ready": true}\r\n\r\n'],  # a byte at a time
])
def test_events_whatever_the_chunks(chunks):
    assert feed_all(chunks) == [{"progress": 50}, {"ready": True}]


def test_an_event_not_ended_yet_is_kept():
    stream = wire.EventStream()
    assert stream.feed(b'data: {"progress": 50}\n\ndata: {"ready"') == [{"progress": 50}]
    assert stream.feed(b": true}\n") == []
    assert stream.feed(b"\n") == [{"ready": True}]


def test_a_long_line_without_newline_is_refused_early_and_quickly():
    stream, chunk, fed, t0 = wire.EventStream(), b"x" * 16384, 0, time.monotonic()
    with pytest.raises(wire.TooLarge, match="an event-stream line over 64 KiB"):
        stream.feed(b"data: ")
        while fed < 30 * MB:
            stream.feed(chunk)
            fed += len(chunk)
    assert fed <= wire.LINE_LIMIT and time.monotonic() - t0 < 1


def test_a_30_mb_line_in_one_chunk_is_refused_quickly():
    t0 = time.monotonic()
    with pytest.raises(wire.TooLarge, match="line over 64 KiB"):
        wire.EventStream().feed(b"data: " + b"x" * (30 * MB))
    assert time.monotonic() - t0 < 1


def test_an_event_of_many_lines_is_refused():
    """Lines without the blank line that ends an event: held until 64 KiB, then refused (not held forever)."""
    stream = wire.EventStream()
    with pytest.raises(wire.TooLarge, match="an event-stream event over 64 KiB"):
        for _ in range(100_000):
            stream.feed(b"data: 1\n")


def test_many_events_in_one_chunk_are_not_refused():
    event = b'data: {"progress": 1, "message": "' + b"m" * 900 + b'"}\n\n'
    assert len(feed_all([event * 200])) == 200  # 180 KiB in one chunk, each event small


@pytest.mark.parametrize("text, deep", [
    (b"[" * 64 + b"]" * 64, False),
    (b"[" * 65 + b"]" * 65, True),
    (b"[" * 200_000, True),
    (b'{"a": [{"b": [1, 2, {"c": "[[[["}]}]}', False),
    (b'["' + b"[" * 1000 + b'"]', False),  # brackets in a string are no nesting
    (b'["\\"' + b"[" * 1000 + b'"]', False),  # nor after an escaped quote
    (b'["\\\\", "' + b"[" * 200_000 + b'"]', False),  # nor in a string over many windows, after an escaped \\
    (b'["\\\\"' + b"[" * 100 + b'"]', True),  # an escaped backslash: the quote after it ends the string
    (b'"' + b'\\"[' * 1_000_000, False),  # a string that never ends
    (b'"' + b'\\"[' * 1_000_000 + b"\\", False),
    (json.dumps({"servers": {str(i): {"name": str(i), "state": {}} for i in range(20_000)}}).encode(), False),
])
def test_too_deep(text, deep):
    t0 = time.monotonic()
    assert wire.too_deep(text) is deep
    assert time.monotonic() - t0 < 1


def test_json_too_deep_is_refused_naming_the_hub():
    answer = wire.Answer(200, "OK", [], b"[" * 200_000, "the hub at https://10.1.2.3:8443/")
    with pytest.raises(wire.HubError, match=r"^the hub at https://10\.1\.2\.3:8443/ sent JSON nested deeper than 64 "
                                            r"levels: refused$") as e:
        answer.json()
    assert e.value.status == 0
    assert wire.Answer(200, "OK", [], b'[1, {"a": 2}]').json() == {}  # JSON, but no object
    assert wire.hub_message(500, b"[" * 200_000).startswith("[[[[")  # an error's text, not a RecursionError


def test_an_event_too_deep_is_refused():
    with pytest.raises(wire.TooLarge, match="nested deeper than 64"):
        wire.EventStream().feed(b"data: " + b"[" * 1000 + b"\n\n")


async def answer_of(size: int, s: settings.Settings) -> bytes:
    async def events():
        for _ in range(size // MB):
            yield h11.Data(data=b"x" * MB)
    return await wire.read_body(s, events())


async def test_a_body_up_to_16_mib_is_read():
    assert len(await answer_of(16 * MB, resolved())) == 16 * MB


async def test_a_body_over_16_mib_is_refused_naming_the_hub():
    with pytest.raises(wire.HubError, match=r"^the hub at https://10\.1\.2\.3:8443/ sent an answer over 16 MiB: "
                                            r"refused$"):
        await answer_of(300 * MB, resolved())


def test_json_other_than_utf8_is_no_json():
    """Issue 28: json.loads(bytes) takes UTF-16 and UTF-32, whose bytes can hide brackets from the depth check."""
    deep = ('["\u2200",' + '["\u2200\u2200",' * 50_000 + "[]" + "]" * 50_001).encode("utf-16-le")
    for text in (deep, '{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-32"), b"\xff{}"):
        with pytest.raises(ValueError):
            wire.loads(text)
    assert wire.loads('{"name": "élodie"}'.encode()) == {"name": "élodie"}
