"""The tests' kernel client lives in devhub/kernel_client.py, where the benchmark uses it too."""

from devhub.kernel_client import V1, execute, execute_request, from_v1, to_v1

__all__ = ["V1", "execute", "execute_request", "from_v1", "to_v1"]
