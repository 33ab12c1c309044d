"""mitmproxy's test context around the bridge's Config, and flows of a client of the bridge, for the addons'
tests."""

from collections.abc import Iterator
from contextlib import contextmanager

from mitmproxy import http
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from addon.config import Config


@contextmanager
def configured(**options: str) -> Iterator[Config]:
    """A Config with these options and an empty environment: the developer's shell does not count."""
    c = Config({})
    with taddons.context(c) as tctx:
        tctx.configure(c, **options)
        yield c


def request_flow(path: str, **headers: str) -> http.HTTPFlow:
    """A client's request to the bridge at 127.0.0.1:8000, in reverse mode to 10.0.0.5:8443; header names with
    '_' for '-'."""
    f = tflow.tflow(req=tutils.treq(host="10.0.0.5", port=8443, path=path.encode(), headers=()))
    headers.setdefault("Host", "127.0.0.1:8000")
    for name, value in headers.items():
        f.request.headers[name.replace("_", "-")] = value
    return f
