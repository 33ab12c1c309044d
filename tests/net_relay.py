"""The tests' network relay lives in devhub/net_relay.py, where the benchmark (bench/resume.py) uses it too."""

from devhub.net_relay import NetRelay

__all__ = ["NetRelay"]
