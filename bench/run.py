"""`./run.sh bench [--quick] [--reps N] [--no-web] | --profile`: the bridge against direct access and plain mitmdump.

Starts a local hub (devhub, iopub rate limit raised), plain `mitmdump --mode reverse:` with a minimal
prefix rewrite (bench/plain_addon.py), the bridge (`./run.sh`) and, for the memory workloads, the bridge
under mitmweb (`./run.sh web`), all on 127.0.0.1; then runs each workload against each target in turn
(interleaved, so they share the machine's background load) and prints one table."""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import measure
from bench import startup
from bench.measure import Target
from bench.report import table
from bench.workloads import files, kernel_exec, kernel_output, rest_concurrent, rest_sequential
from devhub import launcher
from devhub.launcher import DevHubFailed, DevHubProcess
from devhub.ports import free_ports
from devhub.stop import die_with_parent, stop_processes
from devhub.tls import client_context

ROOT = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
SECRET = "bench-local-secret"


class Processes:
    def __init__(self, workdir: Path):
        self.workdir, self.procs = workdir, []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(self.workdir / f"{name}.log", "wb") as log:
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        p.log_path = self.workdir / f"{name}.log"
        self.procs.append(p)
        return p

    def stop(self) -> None:
        stop_processes(self.procs, 30, group=True)  # each in a session of its own: run.sh, python, mitmproxy


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("JUPYTER", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))}


def start_hub(workdir: Path) -> DevHubProcess:
    """devhub with the iopub rate limit raised (500 MB of kernel output)."""
    try:
        return launcher.start(workdir / "hub", output=workdir / "devhub.log", timeout=180,
                              iopub_data_rate_limit=1_000_000_000)
    except DevHubFailed as e:
        sys.exit(f"the hub did not start: {e}")


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


def plain_args(hub: dict, port: int) -> list[str]:
    """mitmdump's arguments for plain mitmdump in front of the hub, listening on port."""
    return ["--mode", f"reverse:https://127.0.0.1:{hub['port']}/", "--listen-host", "127.0.0.1",
            "--listen-port", str(port), "--set", "connection_strategy=lazy", "--set", "stream_large_bodies=1m",
            "--set", f"ssl_verify_upstream_trusted_ca={hub['ca_file']}", "-s", str(ROOT / "bench/plain_addon.py")]


def plain_env(hub: dict) -> dict[str, str]:
    return clean_env() | {"BENCH_PREFIX": f"{hub['base_url']}user/alice", "BENCH_TLS_NAME": hub["tls_name"]}


def bridge_environment(hub: dict) -> dict[str, str]:
    """The bridge's settings for alice's server of the hub, holding her token (without the listening port)."""
    return clean_env() | {
        "JUPYTER_SERVER_IP_OR_NAME": hub["host"], "JUPYTER_SERVER_PORT": str(hub["port"]),
        "JUPYTER_SERVER_NAME": hub["tls_name"], "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
        "JUPYTER_USERNAME": "alice", "JUPYTERHUB_BASE_URL": hub["base_url"],
        "JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"], "JUPYTER_PROXY_TOKEN": SECRET,
        "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1"}


def start_targets(procs: Processes, hub: dict, web: bool) -> list[Target]:
    token = hub["users"]["alice"]["token"]
    prefix = f"{hub['base_url']}user/alice"
    plain_port, bridge_port, web_port, web_ui = free_ports(4)
    targets = [Target("direct", "127.0.0.1", hub["port"], f"token {token}", prefix=prefix,
                      tls=client_context(hub["ca_file"]), tls_name=hub["tls_name"])]

    plain = procs.start("plain", [str(ROOT / ".venv/bin/mitmdump"), *plain_args(hub, plain_port)], plain_env(hub))
    targets.append(Target("plain", "127.0.0.1", plain_port, f"token {token}", pid=plain.pid))

    bridge_env = bridge_environment(hub)
    # run.sh execs python, which execs mitmdump: the PID we started is the proxy's.
    bridge = procs.start("bridge", [str(ROOT / "run.sh")], bridge_env | {"JUPYTER_PROXY_PORT": str(bridge_port)})
    targets.append(Target("bridge", "127.0.0.1", bridge_port, f"token {SECRET}", pid=bridge.pid))
    if web:
        w = procs.start("bridge-web", [str(ROOT / "run.sh"), "web", "--set", f"web_port={web_ui}"],
                        bridge_env | {"JUPYTER_PROXY_PORT": str(web_port)})
        targets.append(Target("web", "127.0.0.1", web_port, f"token {SECRET}", pid=w.pid))
    for t, p in zip(targets[1:], procs.procs):  # direct has no process
        wait_port(p, t.port)
    return targets


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
    print(f"starting the hub, plain mitmdump and the bridge (logs: {workdir})...", flush=True)
    devhub = start_hub(workdir)
    hub = devhub.info
    try:
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
        names = startup.NAMES if args.web else ("plain", "bridge")
        print(f"start-up: {', '.join(names)}, each started again and again", flush=True)
        results["startup"] = startup.measure(hub, workdir, 3 if args.quick else args.starts, clean_env(), names)
    finally:
        procs.stop()
        devhub.stop()
    return results


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--profile" in argv:  # a mode of its own: bench/profile.py
        from bench import profile
        return profile.main([a for a in argv if a != "--profile"])
    ap = argparse.ArgumentParser(prog="./run.sh bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (about a minute)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved rounds of the REST and execute workloads")
    ap.add_argument("--rest", type=int, default=1000, help="REST requests per round and target")
    ap.add_argument("--execs", type=int, default=100, help="kernel executes per round and target")
    ap.add_argument("--ws-mb", type=int, default=500, help="MB of kernel output over one WebSocket")
    ap.add_argument("--file-mb", type=int, default=100, help="MB uploaded and downloaded")
    ap.add_argument("--no-web", dest="web", action="store_false", help="leave out ./run.sh web")
    ap.add_argument("--profile", action="store_true",
                    help="instead: plain mitmdump and the bridge under cProfile, 16 clients (--profile --help)")
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--starts", type=int, default=10,
                    help="start-up: starts of each (plain mitmdump and mitmweb, the bridge under each)")
    args = ap.parse_args(argv)
    if args.quick:
        args.reps, args.rest, args.execs, args.ws_mb, args.file_mb = 1, 200, 20, 20, 10
    started = time.monotonic()
    results = run(args)
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; {time.monotonic() - started:.0f} s\n")
    print(table(results, args))
    print(startup.report(results["startup"]))
    if args.json:
        args.json.write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
