"""The benchmark's workloads: each runs against one target and returns a dict of figures."""

import json
import threading
import time

from bench import measure
from bench.measure import Target

MiB = 1024 * 1024


def cpu_window(t: Target):
    return measure.cpu_seconds(t.pid) if t.pid else None


def rest_sequential(t: Target, n: int) -> dict:
    conn = t.connection()
    for _ in range(20):
        assert t.request(conn, "GET", "/api/status")[0] == 200
    cpu0, samples = cpu_window(t), []
    for _ in range(n):
        start = time.perf_counter()
        code, _ = t.request(conn, "GET", "/api/status")
        samples.append((time.perf_counter() - start) * 1000)
        assert code == 200
    conn.close()
    out = {"rest_ms": samples, "rest_requests": n}
    if t.pid:
        out["rest_cpu"] = measure.cpu_seconds(t.pid) - cpu0
    return out


def rest_concurrent(t: Target, clients: int, per_client: int) -> dict:
    barrier, errors = threading.Barrier(clients + 1), []

    def worker():
        conn = t.connection()
        t.request(conn, "GET", "/api/status")
        barrier.wait()
        for _ in range(per_client):
            if t.request(conn, "GET", "/api/status")[0] != 200:
                errors.append(1)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for th in threads:
        th.start()
    barrier.wait()
    cpu0, start = cpu_window(t), time.perf_counter()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    assert not errors, f"{len(errors)} failed requests via {t.name}"
    out = {"rps": [clients * per_client / elapsed], "conc_requests": clients * per_client}
    if t.pid:
        out["conc_cpu"] = measure.cpu_seconds(t.pid) - cpu0
    return out


def kernel_exec(t: Target, kernel: str, n: int) -> dict:
    with measure.kernel_socket(t, kernel) as ws:
        for _ in range(5):
            measure.run_code(ws, "1+1")
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            measure.run_code(ws, "1+1")
            samples.append((time.perf_counter() - start) * 1000)
    return {"exec_ms": samples}


def kernel_output(t: Target, kernel: str, mb: int) -> dict:
    code = f"import sys\ns = 'x' * {MiB}\nfor _ in range({mb}):\n    sys.stdout.write(s); sys.stdout.flush()\n"
    with measure.kernel_socket(t, kernel) as ws:
        measure.run_code(ws, "print(1)")  # connected and warm
        before = measure.status(t.pid)["VmRSS"] if t.pid else None
        cpu0, start = cpu_window(t), time.perf_counter()
        printed = measure.run_code(ws, code)
        elapsed = time.perf_counter() - start
        cpu = measure.cpu_seconds(t.pid) - cpu0 if t.pid else None
        assert printed == mb * MiB, (printed, mb * MiB)
        after = measure.status(t.pid) if t.pid else None  # the WebSocket is still open: its history counts
    out = {"ws_mbps": [mb * MiB / elapsed / 1e6]}
    if t.pid:
        out |= {"ws_rss_before": before, "ws_rss_after": after["VmRSS"], "ws_rss_peak": after["VmHWM"],
                "ws_cpu_per_mb": cpu / mb}
    return out


def files(t: Target, mb: int, payload: bytes) -> dict:
    import base64
    name = f"bench-{t.name}.bin"
    body = json.dumps({"type": "file", "format": "base64", "content": base64.b64encode(payload).decode()}).encode()
    before = measure.status(t.pid)["VmRSS"] if t.pid else None
    if t.pid:
        measure.reset_peak(t.pid)
    conn = t.connection(timeout=600)
    start = time.perf_counter()
    code, text = t.request(conn, "PUT", f"/api/contents/{name}", body, {"Content-Type": "application/json"})
    up = time.perf_counter() - start
    assert code in (200, 201), (code, text[:300])
    up_peak = measure.status(t.pid)["VmHWM"] if t.pid else None
    start = time.perf_counter()
    conn.request("GET", t.prefix + f"/files/{name}", headers={"Authorization": t.auth})
    r = conn.getresponse()
    got = 0
    while chunk := r.read(1 << 20):
        got += len(chunk)
    down = time.perf_counter() - start
    assert r.status == 200 and got == len(payload), (r.status, got)
    t.request(conn, "DELETE", f"/api/contents/{name}")
    conn.close()
    out = {"up_mbps": [len(payload) / up / 1e6], "down_mbps": [len(payload) / down / 1e6]}
    if t.pid:
        st = measure.status(t.pid)
        out |= {"files_rss_before": before, "files_rss_after": st["VmRSS"], "up_peak": up_peak, "files_peak": st["VmHWM"]}
    return out
