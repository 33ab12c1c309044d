"""A small jupyter_client-style kernel client over a channels WebSocket, in JSON or v1 binary framing
(`v1.kernel.websocket.jupyter.org`, what JupyterLab and @jupyterlab/services ask for).

Standard library only: the tests and the benchmark (.venv-test) use it to drive devhub's kernels."""

import json
import struct
import time
import uuid
from datetime import datetime
from datetime import timezone

V1 = "v1.kernel.websocket.jupyter.org"


def execute_request(code: str) -> dict:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "username": "test",
                   "session": uuid.uuid4().hex, "version": "5.3", "date": datetime.now(timezone.utc).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True},
    }


def to_v1(msg: dict) -> bytes:
    parts = [msg["channel"].encode()] + [json.dumps(msg[k]).encode()
                                         for k in ("header", "parent_header", "metadata", "content")]
    offsets, position = [], 8 * (len(parts) + 2)
    for part in parts:
        offsets.append(position)
        position += len(part)
    offsets.append(position)
    return struct.pack(f"<{len(offsets) + 1}Q", len(offsets), *offsets) + b"".join(parts)


def from_v1(data: bytes) -> dict:
    (count,) = struct.unpack_from("<Q", data)
    offsets = struct.unpack_from(f"<{count}Q", data, 8)
    parts = [data[offsets[i]:offsets[i + 1]] for i in range(count - 1)]
    msg = {k: json.loads(p) for k, p in zip(("header", "parent_header", "metadata", "content"), parts[1:5])}
    msg["channel"] = parts[0].decode()
    msg["msg_type"] = msg["header"]["msg_type"]
    return msg


def execute(ws, code: str, timeout: float = 60) -> tuple[str, str, str | None]:
    """Run code on a connected channels WebSocket; (stdout, stderr and tracebacks, execute_result text)."""
    v1 = ws.subprotocol == V1
    msg = execute_request(code)
    msg_id = msg["header"]["msg_id"]
    ws.send(to_v1(msg) if v1 else json.dumps(msg))
    out, err, result, replied, idle = [], [], None, False, False
    deadline = time.monotonic() + timeout
    while not (replied and idle):
        data = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        reply = from_v1(data) if v1 else json.loads(data)
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = reply["msg_type"], reply["content"]
        if kind == "stream":
            (out if content["name"] == "stdout" else err).append(content["text"])
        elif kind == "execute_result":
            result = content["data"]["text/plain"]
        elif kind == "error":
            err.append("\n".join(content["traceback"]))
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    return "".join(out), "".join(err), result
