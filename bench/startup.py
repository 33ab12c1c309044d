"""Start-up: seconds from the process start to the first answer (200 or 401) of `GET /api/status`, polled every
20 ms from the moment the process starts (what an IDE does while the bridge restarts), while a second client
disturbs the start every 20 ms in turn with a bare connect/close (a port probe), half a request then silence, a
TLS ClientHello on the plain port and a WebSocket upgrade it leaves at once (issue 19). For plain mitmdump (the
benchmark's `plain`: `--mode reverse:` with `ssl_verify_upstream_trusted_ca` and bench/plain_addon.py, which
sends the hub's TLS name), the bridge (`./run.sh`: the venv check, the settings, the hub's whoami, then
mitmdump) and the bridge under mitmweb (`./run.sh web`). Starts alternate; each is probed until SETTLE_SECONDS
after its first answer (mitmproxy's start-up check ends just after it); a start that exits is counted, not timed.

    .venv-test/bin/python -m bench.startup READY_FILE [--starts N]   # against a running devhub hub
(`./run.sh bench` runs it too, against its own hub)."""

import argparse
import http.client
import itertools
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.measure import percentile
from devhub.ports import free_ports
from devhub.stop import die_with_parent
from devhub.stop import stop_processes

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.02
SETTLE_SECONDS = 0.3
START_TIMEOUT = 60.0
LOCAL_SECRET = "bench-startup-local-secret"
NAMES = ("plain", "plain web", "bridge", "web")


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


def client_hello() -> bytes:
    """The first bytes a TLS client sends."""
    tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def disturbances(auth: str) -> dict[str, tuple[bytes, bool]]:
    """name -> (bytes sent after connecting, whether the connection is kept open silent until the start ends)."""
    upgrade = (f"GET /api/kernels/00000000-0000-0000-0000-000000000000/channels HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: {auth}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()
    return {"connect/close": (b"", False), "half request": (b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAu", True),
            "ClientHello": (client_hello(), False), "WebSocket upgrade": (upgrade, False)}


def disturb(port: int, auth: str, stop: threading.Event) -> None:
    """Until stop: every POLL_SECONDS the next of `disturbances`, refused connections skipped."""
    held = []
    try:
        for sent, keep in itertools.cycle(disturbances(auth).values()):
            if stop.wait(POLL_SECONDS):
                return
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=1)
                s.sendall(sent)
            except OSError:
                continue
            if keep:
                held.append(s)
            else:
                s.close()
    finally:
        for s in held:
            s.close()


def probe(proc: subprocess.Popen, port: int, auth: str, started: float) -> float | None:
    """Poll and disturb a starting proxy (as above): seconds from `started` to its first 200/401, or None when it
    exited before SETTLE_SECONDS past that. Raises TimeoutError when it neither answered nor exited in time."""
    stop = threading.Event()
    noise = threading.Thread(target=disturb, args=(port, auth, stop), daemon=True)
    noise.start()
    first = None
    try:
        while proc.poll() is None:
            now = time.monotonic() - started
            if first is not None and now > first + SETTLE_SECONDS:
                return first
            if now > START_TIMEOUT:
                raise TimeoutError(f"no answer within {START_TIMEOUT:.0f} s")
            if answer(port, auth) in (200, 401) and first is None:
                first = time.monotonic() - started
            time.sleep(POLL_SECONDS)
        return None
    finally:
        stop.set()
        noise.join()


def one_start(cmd: list[str], env: dict[str, str], port: int, auth: str, log: Path) -> float | None:
    """Start cmd and probe it: seconds to its first 200/401, or None when it exited during start-up."""
    with open(log, "wb") as out:
        started = time.monotonic()
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=die_with_parent)
    try:
        return probe(p, port, auth, started)
    except TimeoutError as e:
        sys.exit(f"{cmd[0]}: {e}; see {log}")
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
    (web_port,) = free_ports(1)
    plain_env = env | {"BENCH_PREFIX": prefix, "BENCH_TLS_NAME": hub["tls_name"]}
    web_args = ["--set", f"web_port={web_port}"]
    return {
        "plain": (plain, plain_env, f"token {token}"),
        "plain web": ([str(ROOT / ".venv/bin/mitmweb"), *plain[1:], *web_args, "--set", "web_open_browser=false"],
                      plain_env, f"token {token}"),
        "bridge": ([str(ROOT / "run.sh")], bridge_env, f"token {LOCAL_SECRET}"),
        "web": ([str(ROOT / "run.sh"), "web", *web_args], bridge_env, f"token {LOCAL_SECRET}"),
    }


def bytecode_written() -> None:
    """Compile the bridge's modules, as Python does at a user's first start (pip compiled mitmproxy's at install):
    where PYTHONDONTWRITEBYTECODE is set, as on the team's machines, every start would compile them again."""
    subprocess.run([str(ROOT / ".venv/bin/python"), "-m", "compileall", "-q", str(ROOT / "addon")], check=True)


def measure(hub: dict, workdir: Path, starts: int, env: dict[str, str], names=NAMES) -> dict[str, dict]:
    """{name: {"start_s": [seconds of each start that answered], "exited": starts that exited instead}}."""
    bytecode_written()
    figures = {name: {"start_s": [], "exited": 0} for name in names}
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


PLAIN_OF = {"bridge": "plain", "web": "plain web"}  # each bridge start beside mitmproxy's own start of the same tool


def report(figures: dict[str, dict]) -> str:
    lines = []
    median = {name: percentile(fig["start_s"], 50) for name, fig in figures.items() if fig["start_s"]}
    for name, fig in figures.items():
        s, n = fig["start_s"], len(fig["start_s"]) + fig["exited"]
        timing = f"median {percentile(s, 50):.2f} s, p90 {percentile(s, 90):.2f} s" if s else "no answer"
        over = [f"{median[name] - median[plain]:+.2f} s over {plain}" for plain in dict.fromkeys(
                [PLAIN_OF.get(name), "plain"]) if s and plain in median and plain != name]
        timing += f" ({', '.join(over)})" if over else ""
        lines.append(f"start to first answer under the mixed probe, {name}: {timing} ({len(s)} of {n} starts "
                     f"answered, {fig['exited']} exited during start-up)")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.split("\n\n")[0])
    ap.add_argument("ready_file", type=Path, help="a running devhub hub's ready file")
    ap.add_argument("--starts", type=int, default=20, help="starts of each")
    ap.add_argument("--only", choices=NAMES, action="append", help="measure only this one (may repeat)")
    args = ap.parse_args(argv)
    hub = json.loads(args.ready_file.read_text())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JUPYTER", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"))}
    workdir = args.ready_file.parent
    print(report(measure(hub, workdir, args.starts, env, tuple(args.only or NAMES))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
