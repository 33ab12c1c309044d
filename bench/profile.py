"""`./run.sh bench --profile [--requests N] [--top N]`: where plain mitmdump and the bridge spend their CPU per
request under the 16-client REST workload (issue 22).

Starts devhub, plain mitmdump and the bridge as bench/run.py does, each under cProfile (bench/profiled.py), warms
each up, then in rounds, plain and bridge in turn: the profiler on, 16 keep-alive clients sending
`GET /api/status`, the profiler off (the profile so far is written); then prints bench/profile_report.py's
reading. The profiles stay in the run's folder (pstats files: `python -m pstats FILE`)."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import measure
from bench import profile_report
from bench import profiled
from bench import run
from bench.measure import Target
from bench.workloads import rest_concurrent
from devhub.ports import free_ports

CLIENTS = 16


def start(procs: run.Processes, hub: dict, workdir: Path) -> list[tuple[Target, Path]]:
    """Plain mitmdump and the bridge, each under the profiler (off until signalled)."""
    python = str(run.ROOT / ".venv/bin/python")
    plain_port, bridge_port = free_ports(2)
    profiled = [python, "-P", "-m", "bench.profiled"]
    on_path = {"PYTHONPATH": str(run.ROOT)}  # -P: bench.profiled and the addon package come from the project
    plain_out, bridge_out = workdir / "plain.prof", workdir / "bridge.prof"
    plain = procs.start("plain", [*profiled, str(plain_out), "plain", *run.plain_args(hub, plain_port)],
                        run.plain_env(hub) | on_path)
    bridge = procs.start("bridge", [*profiled, str(bridge_out), "bridge"],
                         run.bridge_environment(hub) | on_path | {"JUPYTER_PROXY_PORT": str(bridge_port)})
    token = hub["users"]["alice"]["token"]
    targets = [(Target("plain", "127.0.0.1", plain_port, f"token {token}", pid=plain.pid), plain_out),
               (Target("bridge", "127.0.0.1", bridge_port, f"token {run.SECRET}", pid=bridge.pid), bridge_out)]
    for (t, _), p in zip(targets, procs.procs):
        run.wait_port(p, t.port)
    return targets


def wait_written(path: Path, pid: int, timeout: float = 120) -> None:
    """The profile appears whole (renamed into place) once the process has handled profiled.OFF."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"process {pid} wrote no profile to {path} within {timeout:.0f} s")
        time.sleep(0.05)


def profile(t: Target, out: Path, requests: int) -> dict:
    """One window of the 16-client workload with the profiler on (it adds up over windows; each OFF writes the sum
    so far); also the process's CPU seconds in it (all threads, the profiler's own cost included), from /proc."""
    out.unlink(missing_ok=True)
    cpu0 = measure.cpu_seconds(t.pid)
    os.kill(t.pid, profiled.ON)
    figures = rest_concurrent(t, CLIENTS, requests // CLIENTS)
    os.kill(t.pid, profiled.OFF)
    wait_written(out, t.pid)
    figures["conc_cpu"] = measure.cpu_seconds(t.pid) - cpu0
    return figures


def interleaved(targets: list[tuple[Target, Path]], requests: int, rounds: int) -> dict[str, dict]:
    """Each target's profiled windows in turn, so that plain and bridge share the machine's background load."""
    for t, _ in targets:
        rest_concurrent(t, CLIENTS, 20)  # warm: connections, TLS sessions to the hub, first-request paths
    totals: dict[str, dict] = {}
    for r in range(rounds):
        print(f"round {r + 1}/{rounds}: {CLIENTS} clients, {requests // rounds} requests per proxy", flush=True)
        for t, out in targets:
            figures = profile(t, out, requests // rounds)
            total = totals.setdefault(t.name, {"conc_cpu": 0.0, "conc_requests": 0})
            total["conc_cpu"] += figures["conc_cpu"]
            total["conc_requests"] += figures["conc_requests"]
    return totals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="./run.sh bench --profile", description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4000, help="requests in the profiled window, per proxy")
    ap.add_argument("--rounds", type=int, default=4, help="profiled windows per proxy, plain and bridge in turn")
    ap.add_argument("--top", type=int, default=25, help="functions listed by cumulative and by own time")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-profile-"))
    procs = run.Processes(workdir)
    print(f"starting the hub, plain mitmdump and the bridge under cProfile (logs, profiles: {workdir})...",
          flush=True)
    devhub = run.start_hub(workdir)
    try:
        targets = start(procs, devhub.info, workdir)
        totals = interleaved(targets, args.requests, args.rounds)
        summaries = {t.name: profile_report.summary(out, totals[t.name]["conc_requests"]) for t, out in targets}
        cpu = {name: 1e6 * x["conc_cpu"] / x["conc_requests"] for name, x in totals.items()}
    finally:
        procs.stop()
        devhub.stop()
    print(f"\nprocess CPU per request while profiled (/proc, all threads): plain {cpu['plain']:.0f} µs, "
          f"bridge {cpu['bridge']:.0f} µs ({cpu['bridge'] / cpu['plain']:.2f}x)\n")
    print(profile_report.report(summaries["plain"], summaries["bridge"], args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
