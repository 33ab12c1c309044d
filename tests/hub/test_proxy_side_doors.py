"""Issue 28: what mitmproxy itself would let through around the bridge's rules. Its own listen options among the
pass-through arguments, flow files readable by others, an upstream that sends an endless answer head, and another
user's process on the bridge's port: against the hostile TLS hub on 127.0.0.1 (tests/hostile_hub.py), the bridge as
`./run.sh` runs it."""

import os
import socket
import subprocess
import time

import httpx
import pytest
from bridge_process import ROOT
from bridge_process import free_port
from bridge_process import hub_env
from hostile_hub import PeakRss

from devhub.stop import die_with_parent
from devhub.stop import stop_processes

START_TIMEOUT = 30
ANSWER_TIMEOUT = 60  # 100-200 MB from the hostile upstream, on a busy machine
MAX_BRIDGE_RSS_KB = 200 * 1024  # the landed bridge held 599 MB for a 100 MB header, 1.72 GB for a 200 MB status line


def no_listener(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.parametrize("args", [["--listen-host", "0.0.0.0"], ["-p", "PORT"], ["--mode", "regular"],
                                  ["--set", "listen_host=0.0.0.0"]])
def test_mitmproxys_listen_options_stop_the_start_with_the_bridges_setting(hostile, tmp_path, args):
    """`./run.sh --listen-host 0.0.0.0` with an empty local token listened on every address while the banner
    said 127.0.0.1: now the start stops with one line that names the setting to use."""
    _, hub = hostile
    port, other = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
    env.update(hub_env(hub), JUPYTER_PROXY_TOKEN="", JUPYTER_PROXY_IP_OR_NAME="127.0.0.1",
               JUPYTER_PROXY_PORT=str(port), JUPYTERHUB_BRIDGE_HOME=str(tmp_path / "home"))
    args = [str(other) if a == "PORT" else a for a in args]
    proc = subprocess.Popen([str(ROOT / "run.sh"), *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, text=True)
    try:
        output, _ = proc.communicate(timeout=START_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        output, _ = proc.communicate()
        pytest.fail(f"the bridge started with {args}:\n{output}", pytrace=False)
    assert proc.returncode == 1, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "leave it out" in lines[0], output
    assert ("JUPYTER_PROXY_IP_OR_NAME" if "host" in str(args) else
            "JUPYTER_PROXY_PORT" if "-p" in args else "JUPYTER_SERVER_IP_OR_NAME") in lines[0], output
    assert no_listener(port) and no_listener(other)


@pytest.mark.parametrize("web", [False, True])
def test_flow_files_are_written_for_their_owner_only(hostile, start_bridge, tmp_path, web):
    """`-w` flow files were written with the default umask (0644 under the usual 022), by the bridge and by
    `./run.sh web`: they hold the flows' headers and the browser's host name."""
    _, hub = hostile
    flows = tmp_path / "flows.mitm"
    old = os.umask(0o022)  # the usual one, which the bridge inherits
    try:
        bridge = start_bridge(hub, env={"JUPYTER_PROXY_TOKEN": ""}, args=["-w", str(flows)], web=web)
    finally:
        os.umask(old)
    httpx.get(f"{bridge.url}/api/status", headers={"Authorization": "token theirs"}, timeout=30)
    deadline = time.monotonic() + START_TIMEOUT
    while not (flows.exists() and flows.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert flows.stat().st_size > 0, bridge.log()
    assert flows.stat().st_mode & 0o777 == 0o600, oct(flows.stat().st_mode)


def first_bytes_of_answer(port: int, request: bytes, keep: int = 65536) -> bytes:
    """The first `keep` bytes of the bridge's answer, read to its end (a client that holds no more)."""
    kept = b""
    with socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT) as c:
        c.sendall(request)
        while chunk := c.recv(65536):
            kept += chunk[:keep - len(kept)]
    return kept


@pytest.mark.parametrize("crafted", ["huge-header", "long-status-line"])
def test_an_upstreams_endless_answer_head_is_a_502_in_bounded_memory(hostile, start_bridge, crafted):
    """field note 51: mitmproxy bounds neither an upstream's status line nor its header block. A server that sends
    a 100 MB header or a 200 MB status line now gets its client a 502 once the head passes 256 KiB, and the
    bridge's peak RSS (VmHWM, from /proc) stays bounded."""
    server, hub = hostile
    bridge = start_bridge(hub, env={"JUPYTER_PROXY_TOKEN": ""})  # clients bring their own credential
    peak = PeakRss(bridge.proc.pid)
    peak.start()
    server.crafted = crafted
    try:
        answer = first_bytes_of_answer(bridge.port, b"GET /api/contents HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                                                    b"Authorization: token theirs\r\nConnection: close\r\n\r\n"
                                       % bridge.port)
    finally:
        server.crafted = ""
        time.sleep(0.2)  # a last sample or two of /proc (every 10 ms)
        peak.done.set()
        peak.join()
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:300]
    assert b"over 256 KiB" in answer, answer[:1000]
    assert 0 < peak.kib < MAX_BRIDGE_RSS_KB, f"peak RSS {peak.kib // 1024} MiB"
    assert bridge.proc.poll() is None, bridge.log()


SQUATTER = """
import os, socket, sys, time
os.setgid(65534); os.setuid(65534)  # nobody: another user
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="needs root to run a process as another user")
def test_the_start_warns_when_another_user_listens_on_the_bridges_port(hostile, tmp_path):
    """A squatter on the bridge's port while it is down receives the IDE's local token: the start says so."""
    _, hub = hostile
    port = free_port()
    squatter = subprocess.Popen(["python3", "-c", SQUATTER, str(port)], stdout=subprocess.PIPE, text=True,
                                cwd="/", preexec_fn=die_with_parent)
    try:
        assert squatter.stdout.readline().strip() == "listening"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "JUPYTERHUB"))}
        env.update(hub_env(hub), JUPYTER_PROXY_IP_OR_NAME="127.0.0.1", JUPYTER_PROXY_PORT=str(port),
                   JUPYTERHUB_BRIDGE_HOME=str(tmp_path / "home"))
        proc = subprocess.run([str(ROOT / "run.sh")], env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=START_TIMEOUT)
    finally:
        stop_processes([squatter], 10)
    output = proc.stdout + proc.stderr
    warned = [line for line in output.splitlines() if "has a process listening on port" in line]
    assert len(warned) == 1 and f"another user (nobody, uid 65534) has a process listening on port {port}" in \
        warned[0] and "login --new-local-token" in warned[0], output
    assert proc.returncode != 0, output  # the port is taken: mitmproxy cannot listen


def test_two_bridges_on_one_login_send_browsers_to_two_host_names(hostile, start_bridge):
    """Two bridges on one login (one local token) shared one browser name, so the browser sent each the other's
    cookie, which it forwarded to its own server: the name is per port now."""
    _, hub = hostile
    env = {"JUPYTERHUB_API_TOKEN": "t" * 32, "JUPYTER_PROXY_TOKEN": "two-bridges-one-login-local-token"}
    hosts = []
    for bridge in (start_bridge(hub, env=env), start_bridge(hub, env=env)):
        r = httpx.get(f"{bridge.url}/lab?token={env['JUPYTER_PROXY_TOKEN']}", headers={"Sec-Fetch-Mode": "navigate"},
                      timeout=START_TIMEOUT)
        assert r.status_code == 302, (r.status_code, r.text)
        hosts.append(httpx.URL(r.headers["location"]).host)
    assert all(host.endswith(".localhost") for host in hosts) and hosts[0] != hosts[1], hosts
