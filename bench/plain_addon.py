"""The floor for the benchmark: plain mitmdump in reverse mode with the least a Jupyter bridge must do
(send the hub's TLS name, prefix the path). Rewrites in requestheaders, so streamed bodies work too."""

import os

PREFIX = os.environ["BENCH_PREFIX"].rstrip("/")
TLS_NAME = os.environ["BENCH_TLS_NAME"]


class Prefix:
    def server_connect(self, data):
        data.server.sni = TLS_NAME

    def requestheaders(self, flow):
        flow.request.path = PREFIX + flow.request.path


addons = [Prefix()]
