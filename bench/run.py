"""`./run.sh bench [--quick] [--reps N] [--no-web]`: the bridge against direct access and plain mitmdump.

Starts a local hub (devhub, iopub rate limit raised), plain `mitmdump --mode reverse:` with a minimal
prefix rewrite (bench/plain_addon.py), the bridge (`./run.sh`) and, for the memory workloads, the bridge
under mitmweb (`./run.sh web`), all on 127.0.0.1; then runs each workload against each target in turn
(interleaved, so they share the machine's background load) and prints one table."""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import measure
from bench.measure import Target
from devhub.stop import die_with_parent
from devhub.ports import free_ports
from devhub.tls import client_context

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
SECRET = "bench-local-secret"


class Processes:
    def __init__(self, workdir: Path):
        self.workdir, self.procs = workdir, []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "wb")
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=die_with_parent)
        p.log_path = self.workdir / f"{name}.log"
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("JUPYTER", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))}


def start_hub(procs: Processes) -> dict:
    ready = procs.workdir / "hub" / "ready.json"
    p = procs.start("devhub", [str(ROOT / ".venv-hub/bin/python"), "-m", "devhub", "--workdir",
                               str(procs.workdir / "hub"), "--ready-file", str(ready),
                               "--iopub-data-rate-limit", "1000000000"], clean_env())
    deadline = time.monotonic() + 180
    while not ready.exists():
        if p.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"the hub did not start; see {p.log_path}")
        time.sleep(0.2)
    return json.loads(ready.read_text())


def wait_port(p: subprocess.Popen, port: int, timeout: float = 60) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            sys.exit(f"{p.args[0]} exited; see {p.log_path}:\n{p.log_path.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{p.args} did not listen on {port}")


def start_targets(procs: Processes, hub: dict, web: bool) -> list[Target]:
    token = hub["users"]["alice"]["token"]
    prefix = f"{hub['base_url']}user/alice"
    plain_port, bridge_port, web_port, web_ui = free_ports(4)
    targets = [Target("direct", "127.0.0.1", hub["port"], f"token {token}", prefix=prefix,
                      tls=client_context(hub["ca_file"]), tls_name=hub["tls_name"])]

    env = clean_env() | {"BENCH_PREFIX": prefix, "BENCH_TLS_NAME": hub["tls_name"]}
    plain = procs.start("plain", [
        str(ROOT / ".venv/bin/mitmdump"), "--mode", f"reverse:https://127.0.0.1:{hub['port']}/",
        "--listen-host", "127.0.0.1", "--listen-port", str(plain_port),
        "--set", "connection_strategy=lazy", "--set", "stream_large_bodies=1m",
        "--set", f"ssl_verify_upstream_trusted_ca={hub['ca_file']}", "-s", str(ROOT / "bench/plain_addon.py")], env)
    targets.append(Target("plain", "127.0.0.1", plain_port, f"token {token}", pid=plain.pid))

    bridge_env = clean_env() | {
        "JUPYTER_SERVER_IP_OR_NAME": hub["host"], "JUPYTER_SERVER_PORT": str(hub["port"]),
        "JUPYTER_SERVER_NAME": hub["tls_name"], "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
        "JUPYTER_USERNAME": "alice", "JUPYTERHUB_BASE_URL": hub["base_url"],
        "JUPYTERHUB_API_TOKEN": token, "JUPYTER_PROXY_TOKEN": SECRET, "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1"}
    # run.sh execs python, which execs mitmdump: the PID we started is the proxy's.
    bridge = procs.start("bridge", [str(ROOT / "run.sh")], bridge_env | {"JUPYTER_PROXY_PORT": str(bridge_port)})
    targets.append(Target("bridge", "127.0.0.1", bridge_port, f"token {SECRET}", pid=bridge.pid))
    if web:
        w = procs.start("bridge-web", [str(ROOT / "run.sh"), "web", "--set", f"web_port={web_ui}"],
                        bridge_env | {"JUPYTER_PROXY_PORT": str(web_port)})
        targets.append(Target("web", "127.0.0.1", web_port, f"token {SECRET}", pid=w.pid))
    for t, p in zip(targets[1:], procs.procs[1:]):
        wait_port(p, t.port)
    return targets


# ---- workloads: each returns a dict of figures for one target --------------------------------------------

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
            measure.run_code(ws, "1")
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            measure.run_code(ws, "1")
            samples.append((time.perf_counter() - start) * 1000)
    return {"exec_ms": samples}


def kernel_output(t: Target, kernel: str, mb: int) -> dict:
    code = f"import sys\ns = 'x' * {MiB}\nfor _ in range({mb}):\n    sys.stdout.write(s); sys.stdout.flush()\n"
    with measure.kernel_socket(t, kernel) as ws:
        measure.run_code(ws, "print(1)")  # connected and warm
        before = measure.status(t.pid)["VmRSS"] if t.pid else None
        start = time.perf_counter()
        printed = measure.run_code(ws, code)
        elapsed = time.perf_counter() - start
        assert printed == mb * MiB, (printed, mb * MiB)
        after = measure.status(t.pid) if t.pid else None  # the WebSocket is still open: its history counts
    out = {"ws_mbps": [mb * MiB / elapsed / 1e6]}
    if t.pid:
        out |= {"ws_rss_before": before, "ws_rss_after": after["VmRSS"], "ws_rss_peak": after["VmHWM"]}
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


# ---- the run ------------------------------------------------------------------------------------------------

def merge(results: dict, name: str, figures: dict) -> None:
    r = results.setdefault(name, {})
    for k, v in figures.items():
        if isinstance(v, list):
            r.setdefault(k, []).extend(v)
        elif k.endswith(("_cpu", "_requests")):
            r[k] = r.get(k, 0) + v
        else:
            r[k] = v


def run(args) -> dict:
    results: dict[str, dict] = {}
    workdir = Path(tempfile.mkdtemp(prefix="bridge-bench-"))
    procs = Processes(workdir)
    try:
        print(f"starting the hub, plain mitmdump and the bridge (logs: {workdir})...", flush=True)
        hub = start_hub(procs)
        targets = start_targets(procs, hub, args.web)
        fast = [t for t in targets if t.name != "web"]  # mitmweb is for memory, not speed
        rss0 = {t.name: measure.status(t.pid)["VmRSS"] for t in targets if t.pid}
        for rep in range(args.reps):
            print(f"round {rep + 1}/{args.reps}: REST", flush=True)
            for t in fast:
                merge(results, t.name, rest_sequential(t, args.rest))
            for t in fast:
                merge(results, t.name, rest_concurrent(t, 16, args.rest // 16))
        kernel = measure.start_kernel(targets[0])
        print("kernel execute round trips", flush=True)
        for rep in range(args.reps):
            for t in fast:
                merge(results, t.name, kernel_exec(t, kernel, args.execs))
        print(f"kernel output: {args.ws_mb} MB over one WebSocket per target", flush=True)
        for t in targets:
            merge(results, t.name, kernel_output(t, kernel, args.ws_mb))
        measure.stop_kernel(targets[0], kernel)
        print(f"files: {args.file_mb} MB up (/api/contents) and down (/files)", flush=True)
        payload = os.urandom(args.file_mb * MiB)
        for t in targets:
            merge(results, t.name, files(t, args.file_mb, payload))
        for t in targets:
            if t.pid:
                results[t.name]["rss_start"] = rss0[t.name]
                results[t.name]["rss_end"] = measure.status(t.pid)["VmRSS"]
    finally:
        procs.stop()
    return results


def fmt(v, unit=""):
    return "-" if v is None else f"{v:.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"


def table(results: dict, args) -> str:
    names = [n for n in ("direct", "plain", "bridge", "web") if n in results]
    r = results
    p = measure.percentile

    def get(name, fn):
        try:
            return fn(r[name])
        except (KeyError, ZeroDivisionError, TypeError):
            return None

    rows = [
        ("REST GET p50 (ms)", lambda x: p(x["rest_ms"], 50)),
        ("REST GET p99 (ms)", lambda x: p(x["rest_ms"], 99)),
        ("REST 16 clients (req/s)", lambda x: sum(x["rps"]) / len(x["rps"])),
        ("proxy CPU per REST request (ms)",
         lambda x: 1000 * (x["rest_cpu"] + x["conc_cpu"]) / (x["rest_requests"] + x["conc_requests"])),
        ("kernel execute p50 (ms)", lambda x: p(x["exec_ms"], 50)),
        ("kernel execute p99 (ms)", lambda x: p(x["exec_ms"], 99)),
        (f"kernel output {args.ws_mb} MB (MB/s)", lambda x: x["ws_mbps"][0]),
        ("  RSS before (MiB)", lambda x: x["ws_rss_before"] / MiB),
        ("  RSS after, WS open (MiB)", lambda x: x["ws_rss_after"] / MiB),
        ("  RSS growth (MiB)", lambda x: (x["ws_rss_after"] - x["ws_rss_before"]) / MiB),
        ("  peak RSS (MiB)", lambda x: x["ws_rss_peak"] / MiB),
        (f"upload {args.file_mb} MB /api/contents (MB/s)", lambda x: x["up_mbps"][0]),
        (f"download {args.file_mb} MB /files (MB/s)", lambda x: x["down_mbps"][0]),
        ("  peak RSS during up+down (MiB)", lambda x: x["files_peak"] / MiB),
        ("  RSS growth up+down (MiB)", lambda x: (x["files_rss_after"] - x["files_rss_before"]) / MiB),
        ("RSS growth, whole run (MiB)", lambda x: (x["rss_end"] - x["rss_start"]) / MiB),
    ]
    head = ["", *names, "bridge/direct", "bridge/plain"]
    lines = [head]
    for label, fn in rows:
        vals = {n: get(n, fn) for n in names}
        ratio = lambda a, b: f"{a / b:.2f}x" if a is not None and b else "-"  # noqa: E731
        if "RSS" in label:  # ratios of memory figures mean little
            ratio = lambda a, b: "-"  # noqa: E731
        lines.append([label, *(fmt(vals[n]) for n in names),
                      ratio(vals.get("bridge"), vals.get("direct")), ratio(vals.get("bridge"), vals.get("plain"))])
    added = {n: get(n, lambda x: p(x["rest_ms"], 50)) for n in names}
    ex = {n: get(n, lambda x: p(x["exec_ms"], 50)) for n in names}
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(head))]
    text = "\n".join("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in
                                enumerate(zip(row, widths))) for row in lines)
    notes = []
    if all(added.get(k) is not None for k in ("direct", "plain", "bridge")):
        notes.append(f"added REST p50 over direct: plain {added['plain'] - added['direct']:+.2f} ms, "
                     f"bridge {added['bridge'] - added['direct']:+.2f} ms "
                     f"(bridge - plain {added['bridge'] - added['plain']:+.2f} ms)")
    if all(ex.get(k) is not None for k in ("direct", "bridge")):
        notes.append(f"added kernel execute p50 over direct: plain {ex['plain'] - ex['direct']:+.2f} ms, "
                     f"bridge {ex['bridge'] - ex['direct']:+.2f} ms")
    return text + "\n" + "\n".join(notes)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="./run.sh bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (about a minute)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds of the REST and execute workloads")
    ap.add_argument("--rest", type=int, default=1000, help="REST requests per round and target")
    ap.add_argument("--execs", type=int, default=100, help="kernel executes per round and target")
    ap.add_argument("--ws-mb", type=int, default=500, help="MB of kernel output over one WebSocket")
    ap.add_argument("--file-mb", type=int, default=100, help="MB uploaded and downloaded")
    ap.add_argument("--no-web", dest="web", action="store_false", help="leave out ./run.sh web")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.rest, args.execs, args.ws_mb, args.file_mb = 1, 200, 20, 20, 10
    started = time.monotonic()
    results = run(args)
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; {time.monotonic() - started:.0f} s\n")
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
