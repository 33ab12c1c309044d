"""Issue 6: memory stays bounded on a long kernel WebSocket and for big bodies, through the bridge (mitmdump
and mitmweb) against the real hub. A memory test, not a timing test: the bounds are generous, but far
below what keeping the WebSocket history (+200 MiB) or buffering the bodies (+250 MiB) would cost."""

import base64
import os

import pytest

from bench import measure
from bench.measure import Target

MiB = 1024 * 1024
KERNEL_OUTPUT_MB = 200
FILE_MB = 100
BOUND = 60 * MiB
SECRET = "memory-test-secret"


@pytest.fixture(scope="module")
def fast_hub(start_hub):
    return start_hub(iopub_data_rate_limit=1_000_000_000, name="memhub")


@pytest.fixture(scope="module", params=["dump", "web"])
def target(request, fast_hub, start_bridge):
    env = {"JUPYTERHUB_API_TOKEN": fast_hub["users"]["alice"]["token"], "JUPYTER_PROXY_TOKEN": SECRET}
    b = start_bridge(fast_hub, env=env, web=request.param == "web")
    # run.sh execs python, which execs mitmdump/mitmweb: the process we started is the proxy
    return Target(request.param, "127.0.0.1", b.port, f"token {SECRET}", pid=b.proc.pid)


def test_kernel_output_on_one_websocket_does_not_accumulate(target):
    kernel = measure.start_kernel(target)
    code = f"import sys\ns = 'x' * {MiB}\nfor _ in range({KERNEL_OUTPUT_MB}):\n    sys.stdout.write(s); sys.stdout.flush()\n"
    try:
        with measure.kernel_socket(target, kernel) as ws:
            measure.run_code(ws, "print(1)")
            before = measure.status(target.pid)["VmRSS"]
            assert measure.run_code(ws, code) == KERNEL_OUTPUT_MB * MiB
            after = measure.status(target.pid)["VmRSS"]  # still open: all its history would still be held
    finally:
        measure.stop_kernel(target, kernel)
    assert after - before < BOUND, f"{target.name}: RSS grew by {(after - before) / MiB:.0f} MiB"


def test_big_upload_and_download_stream(target):
    payload = os.urandom(FILE_MB * MiB)
    body = base64.b64encode(payload)
    body = b'{"type": "file", "format": "base64", "content": "' + body + b'"}'
    name = f"memory-{target.name}.bin"
    conn = target.connection(timeout=300)
    target.request(conn, "GET", "/api/status")
    before = measure.status(target.pid)["VmRSS"]
    measure.reset_peak(target.pid)
    code, text = target.request(conn, "PUT", f"/api/contents/{name}", body, {"Content-Type": "application/json"})
    assert code in (200, 201), text[:300]
    del body
    conn.request("GET", f"/files/{name}", headers={"Authorization": target.auth})
    r = conn.getresponse()
    got = 0
    while chunk := r.read(MiB):
        got += len(chunk)
    assert (r.status, got) == (200, len(payload))
    peak = measure.status(target.pid)["VmHWM"]
    target.request(conn, "DELETE", f"/api/contents/{name}")
    conn.close()
    assert peak - before < BOUND, f"{target.name}: peak RSS {(peak - before) / MiB:.0f} MiB above the start"
