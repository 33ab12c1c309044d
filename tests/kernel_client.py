"""The tests' kernel client lives in devhub/kernel_client.py, where the benchmark uses it too; `shell_echo` is a
terminal's round trip, for the tests only."""

import json
import time

from devhub.kernel_client import V1, execute, execute_request, from_v1, to_v1

__all__ = ["V1", "execute", "execute_request", "from_v1", "to_v1", "shell_echo"]


def shell_echo(ws, user: str = "alice", timeout: float = 30) -> str:
    """Have the terminal on `ws` (a `websockets` sync connection to /terminals/websocket/<name>) echo the user it
    runs as; what it printed, once `from-<user>` is in it or after `timeout` s."""
    ws.send(json.dumps(["stdin", "echo from-$JUPYTERHUB_USER\r"]))
    seen, deadline = "", time.monotonic() + timeout
    while f"from-{user}" not in seen and time.monotonic() < deadline:
        kind, *data = json.loads(ws.recv(timeout=timeout))
        seen += "".join(str(d) for d in data) if kind == "stdout" else ""
    return seen
