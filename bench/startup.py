"""Start-up: seconds from the process start to the first answer (200 or 401) of `GET /api/status`, polled every
20 ms from the moment the process starts (what an IDE does while the bridge restarts), for plain mitmdump (the
benchmark's `plain`: `--mode reverse:` with `ssl_verify_upstream_trusted_ca` and bench/plain_addon.py, which
sends the hub's TLS name) and for the bridge (`./run.sh`: the venv check, the settings, the hub's whoami, then
mitmdump). Starts alternate between the two; a start that exits instead of answering is counted, not timed.

    .venv-test/bin/python -m bench.startup READY_FILE [--starts N]   # against a running devhub hub
(`./run.sh bench` runs it too, against its own hub)."""

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import percentile
from devhub.ports import free_ports
from devhub.stop import die_with_parent
from devhub.stop import stop_processes

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.02
START_TIMEOUT = 60.0
LOCAL_SECRET = "bench-startup-local-secret"


def answer(port: int, auth: str) -> int | None:
    """The status of one GET /api/status; None when nothing answered (refused, reset, closed)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/api/status", headers={"Authorization": auth})
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def one_start(cmd: list[str], env: dict[str, str], port: int, auth: str, log: Path) -> float | None:
    """Start cmd and poll it: seconds to its first 200/401, or None when it exited first."""
    with open(log, "wb") as out:
        started = time.monotonic()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=die_with_parent)
    try:
        while time.monotonic() - started < START_TIMEOUT and p.poll() is None:
            if answer(port, auth) in (200, 401):
                return time.monotonic() - started
            time.sleep(POLL_SECONDS)
        if p.poll() is None:
            sys.exit(f"{cmd[0]} did not answer within {START_TIMEOUT:.0f} s; see {log}")
        return None
    finally:
        stop_processes([p], 20, group=True)


def commands(hub: dict, port: int, env: dict[str, str]) -> dict[str, tuple[list[str], dict[str, str], str]]:
    """name -> (command, environment, Authorization) for a proxy listening on port."""
    token = hub["users"]["alice"]["token"]
    prefix = f"{hub['base_url']}user/alice"
    plain = [str(ROOT / ".venv/bin/mitmdump"), "--mode", f"reverse:https://{hub['host']}:{hub['port']}/",
             "--listen-host", "127.0.0.1", "--listen-port", str(port), "--set", "connection_strategy=lazy",
             "--set", f"ssl_verify_upstream_trusted_ca={hub['ca_file']}", "-s", str(ROOT / "bench/plain_addon.py")]
    bridge_env = env | {
        "JUPYTER_SERVER_IP_OR_NAME": hub["host"], "JUPYTER_SERVER_PORT": str(hub["port"]),
        "JUPYTER_SERVER_NAME": hub["tls_name"], "JUPYTER_CLUSTER_CA_CERT": hub["ca_file"],
        "JUPYTER_USERNAME": "alice", "JUPYTERHUB_BASE_URL": hub["base_url"], "JUPYTERHUB_API_TOKEN": token,
        "JUPYTER_PROXY_TOKEN": LOCAL_SECRET, "JUPYTER_PROXY_IP_OR_NAME": "127.0.0.1", "JUPYTER_PROXY_PORT": str(port)}
    return {
        "plain": (plain, env | {"BENCH_PREFIX": prefix, "BENCH_TLS_NAME": hub["tls_name"]}, f"token {token}"),
        "bridge": ([str(ROOT / "run.sh")], bridge_env, f"token {LOCAL_SECRET}"),
    }


def measure(hub: dict, workdir: Path, starts: int, env: dict[str, str]) -> dict[str, dict]:
    """{name: {"start_s": [seconds of each start that answered], "exited": starts that exited instead}}."""
    figures = {name: {"start_s": [], "exited": 0} for name in ("plain", "bridge")}
    for i in range(starts):
        for name, fig in figures.items():
            (port,) = free_ports(1)
            cmd, cmd_env, auth = commands(hub, port, env)[name]
            took = one_start(cmd, cmd_env, port, auth, workdir / f"startup-{name}-{i}.log")
            if took is None:
                fig["exited"] += 1
            else:
                fig["start_s"].append(took)
    return figures


def report(figures: dict[str, dict]) -> str:
    lines = []
    for name, fig in figures.items():
        s, n = fig["start_s"], len(fig["start_s"]) + fig["exited"]
        timing = f"median {percentile(s, 50):.2f} s, p90 {percentile(s, 90):.2f} s" if s else "no answer"
        lines.append(f"start to first answer, {name}: {timing} ({len(s)} of {n} starts answered, "
                     f"{fig['exited']} exited during start-up)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    ap.add_argument("ready_file", type=Path, help="a running devhub hub's ready file")
    ap.add_argument("--starts", type=int, default=10, help="starts of each")
    args = ap.parse_args(argv)
    hub = json.loads(args.ready_file.read_text())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))}
    workdir = args.ready_file.parent
    print(report(measure(hub, workdir, args.starts, env)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
