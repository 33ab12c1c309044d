"""Issue 30: the IDE never sees the line drop. Kernel and terminal WebSockets through the bridge stay open while
the network under the bridge is cut, stalled or the bridge itself is stopped, lose at most the message in flight
per drop, and go on after a kernel restart; when the server is gone for good the IDE's socket is closed with the
reason. The network is tests/net_relay.py between the bridge and a real hub; pings are fast here (1 s) so that a
silent line is found within seconds."""

import json
import os
import re
import signal
import ssl
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kernel_client import V1
from kernel_client import execute
from kernel_client import execute_request
from kernel_client import from_v1
from kernel_client import to_v1
from bridge_process import free_port
from net_relay import NetRelay
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

PING = "1"  # JUPYTER_RESUME_PING_INTERVAL: a silent line is a drop after 2 s without a pong
LINES = 100  # a cell prints 1..LINES, one every 100 ms
RECV = 60.0  # seconds the client waits for any one message: far more than any cut here


def printing(n: int) -> str:
    return f"import time\nfor i in range(1, {n + 1}):\n    print(i, flush=True)\n    time.sleep(0.1)"


@pytest.fixture(scope="module")
def net(hub):
    with NetRelay(hub["host"], hub["port"]) as relay:
        yield relay


def bridge_env(hub, net, **settings) -> dict:
    return {"JUPYTER_SERVER_PORT": str(net.port), "JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"],
            "JUPYTER_RESUME_PING_INTERVAL": PING, **settings}


@pytest.fixture(autouse=True)
def healed(net):
    """Each test starts on a working line, whatever the one before did to it."""
    net.heal()
    yield
    net.heal()


@pytest.fixture(scope="module")
def bridge(hub, net, start_bridge):
    return start_bridge(hub, env=bridge_env(hub, net))


def rest(bridge) -> httpx.Client:
    return httpx.Client(base_url=bridge.url, headers={"Authorization": f"token {bridge.token}"}, timeout=60)


@pytest.fixture
def kernel(bridge):
    with rest(bridge) as c:
        r = c.post("/api/kernels", json={"name": "python3"})
        assert r.status_code == 201, r.text
        kernel_id = r.json()["id"]
        yield kernel_id
        c.delete(f"/api/kernels/{kernel_id}")


def channels(bridge, kernel: str, subprotocol: str | None = V1, session: bool = True):
    query = f"?session_id={uuid.uuid4().hex}" if session else ""
    return ws_connect(f"ws://127.0.0.1:{bridge.port}/api/kernels/{kernel}/channels{query}",
                      subprotocols=[subprotocol] if subprotocol else None, open_timeout=30, max_size=None,
                      additional_headers={"Authorization": f"token {bridge.token}"})


def wait_for_log(bridge, text: str, count: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while bridge.log().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} (x{count}) in the bridge's log:\n{bridge.log()[-4000:]}"
        assert bridge.proc.poll() is None, bridge.log()
        time.sleep(0.1)


def run_printing(ws, n: int, at: dict, poll=None) -> list[int]:
    """Run the printing cell; `at[line]()` is called when that line arrives (a fault), `poll()` while waiting.
    Returns the numbers printed, as they arrived; fails when the socket closes or the reply does not come."""
    v1 = ws.subprotocol == V1
    msg = execute_request(printing(n))
    msg_id = msg["header"]["msg_id"]
    ws.send(to_v1(msg) if v1 else json.dumps(msg))
    text, replied, idle, last = "", False, False, time.monotonic()
    while not (replied and idle):
        try:
            data = ws.recv(timeout=0.2)
        except TimeoutError:
            assert time.monotonic() - last < RECV, f"nothing for {RECV} s; printed so far: {text[-200:]!r}"
            if poll:
                poll()
            continue
        last = time.monotonic()
        reply = from_v1(data) if v1 else json.loads(data)
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = reply["msg_type"], reply["content"]
        if kind == "stream":
            before = len(text.split())
            text += content["text"]
            for line in text.split()[before:]:
                if (fault := at.pop(int(line), None)) is not None:
                    fault()
        elif kind == "execute_reply":
            replied = True
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    return [int(line) for line in text.split()]


def check_lines(lines: list[int], n: int, drops: int) -> None:
    assert lines == sorted(set(lines)), f"out of order or repeated: {lines}"
    lost = sorted(set(range(1, n + 1)) - set(lines))
    print(f"{len(lines)} of {n} lines arrived; lost: {lost}")
    assert len(lost) <= drops, f"lost {lost} in {drops} drops"


@pytest.mark.parametrize("subprotocol, cuts", [(V1, (5, 10)), (None, (5,))], ids=["v1", "json"])
def test_a_cut_link_loses_at_most_the_message_in_flight(bridge, net, kernel, subprotocol, cuts):
    drops = bridge.log().count("the connection to the server dropped")
    at = {20 + 40 * i: (lambda s=seconds: net.cut(s)) for i, seconds in enumerate(cuts)}
    with channels(bridge, kernel, subprotocol) as ws:
        assert ws.subprotocol == subprotocol
        lines = run_printing(ws, LINES, at)
        assert not at, f"the cell ended before the cuts at lines {list(at)}"
        check_lines(lines, LINES, len(cuts))
        assert execute(ws, "6 * 7")[2] == "42"  # the next cell, on the same socket
    wait_for_log(bridge, "the connection to the server dropped", drops + len(cuts))
    assert bridge.log().count(f"kernel {kernel[:8]}: resumed on a new connection after") >= len(cuts)


def test_a_kernel_without_a_session_id_gets_one_and_its_output_resumes(bridge, net, kernel):
    with channels(bridge, kernel, V1, session=False) as ws:
        check_lines(run_printing(ws, 60, {20: lambda: net.cut(3)}), 60, 1)


def test_what_the_ide_sends_while_the_line_is_down_is_sent_after_it_in_order(bridge, net, kernel):
    drops = bridge.log().count(f"kernel {kernel[:8]}: the connection to the server dropped")
    with channels(bridge, kernel) as ws:
        assert execute(ws, "n = 0")[0] == ""
        net.cut(3)
        wait_for_log(bridge, f"kernel {kernel[:8]}: the connection to the server dropped", drops + 1)
        first = execute_request("n += 1; print('first', n)")
        ws.send(to_v1(first))  # held by the bridge while no connection is open
        assert execute(ws, "n += 1; print('second', n)")[0] == "second 2\n"  # sent after the first one
    wait_for_log(bridge, "2 the IDE sent meanwhile forwarded", 1)


def test_a_silent_line_is_found_by_the_pings(bridge, net, kernel):
    """No FIN, no RST: the bridge's ping goes unanswered, and it dials again; the stall ends after that."""
    drops = bridge.log().count("no answer to a ping")
    stalled = []

    def stall():
        net.stall()
        stalled.append(time.monotonic())

    def poll():
        if stalled and net.flowing.is_set() is False and bridge.log().count("no answer to a ping") > drops:
            print(f"the bridge found the silent line after {time.monotonic() - stalled[0]:.1f} s")
            net.resume()

    with channels(bridge, kernel) as ws:
        try:
            lines = run_printing(ws, 60, {20: stall}, poll)
        finally:
            net.resume()
        check_lines(lines, 60, 1)
        assert execute(ws, "1 + 1")[2] == "2"


def test_a_stopped_bridge_goes_on_where_it_stopped(bridge, kernel):
    """SIGSTOP of the bridge (a laptop's sleep, as far as the bridge's own clock goes) longer than the ping
    timeout: when it runs again it judges the line afresh and the output goes on."""
    pids = [int(p) for p in os.popen(f"pgrep -g {os.getpgid(bridge.proc.pid)}").read().split()]

    def pause():
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(6)  # the suspended time itself: nothing to wait on while the bridge cannot run
        for pid in pids:
            os.kill(pid, signal.SIGCONT)

    with channels(bridge, kernel) as ws:
        check_lines(run_printing(ws, 60, {20: pause}), 60, 1)
        assert execute(ws, "1 + 1")[2] == "2"


def restart_then_run(c_restart, ws, rounds: int, timeout: float) -> list[bool]:
    ran = []
    for i in range(rounds):
        assert c_restart().status_code == 200
        try:
            ran.append(execute(ws, f"{i} + 1", timeout=timeout)[2] == str(i + 1))
        except TimeoutError:
            ran.append(False)
    return ran


def test_twenty_restarts_each_followed_at_once_by_a_cell(bridge, hub, kernel):
    """On a kernel that has run a cell, as an IDE's has by the time its user restarts it. A restart of a kernel
    just started, before its first cell, lost the next cell once in about six CI runs (also straight to the hub,
    more often): not covered here; the closing note of issue 30 says so."""
    with rest(bridge) as c, channels(bridge, kernel) as ws:
        assert execute(ws, "0", timeout=60)[2] == "0"
        through = restart_then_run(lambda: c.post(f"/api/kernels/{kernel}/restart"), ws, 20, 20)
    direct = straight_to_the_hub(hub)
    print(f"cells that ran after a restart: through the bridge {sum(through)} of 20 {marks(through)}; "
          f"straight to the hub {sum(direct)} of {len(direct)} {marks(direct)} (informational)")
    assert all(through), marks(through)


def test_a_kernel_the_server_restarted_after_it_died_runs_the_next_cell(bridge, kernel):
    """The server restarts a dead kernel itself and says `restarting` on IOPub: the bridge moves the socket to a
    new connection, as after a restart through it."""
    switched = f"kernel {kernel[:8]}: resumed on a new connection after the kernel's restart"
    with channels(bridge, kernel) as ws:
        assert execute(ws, "1 + 1")[2] == "2"
        ws.send(to_v1(execute_request("import os; os._exit(1)")))
        wait_for_log(bridge, switched, 1, 60)
        assert execute(ws, "2 + 1", timeout=60)[2] == "3"


def marks(ran: list[bool]) -> str:
    return "".join("." if r else "x" for r in ran)


def straight(hub) -> httpx.Client:
    """A client of the hub itself, as alice, beside the bridge."""
    return httpx.Client(verify=ssl.create_default_context(cafile=hub["ca_file"]), timeout=60,
                        headers={"Authorization": f"token {hub['users']['alice']['token']}"})


def straight_to_the_hub(hub, rounds: int = 20) -> list[bool]:
    """The same, without the bridge, for comparison (field note 47): a hung cell is given up after 5 s."""
    base = f"https://{hub['host']}:{hub['port']}/user/alice"
    tls = ssl.create_default_context(cafile=hub["ca_file"])
    auth = {"Authorization": f"token {hub['users']['alice']['token']}"}
    with straight(hub) as c:
        ext = {"sni_hostname": hub["tls_name"]}
        kernel = c.post(f"{base}/api/kernels", json={"name": "python3"}, extensions=ext).json()["id"]
        try:
            with ws_connect(f"wss://{hub['host']}:{hub['port']}/user/alice/api/kernels/{kernel}/channels"
                            f"?session_id={uuid.uuid4().hex}", ssl=tls, server_hostname=hub["tls_name"],
                            additional_headers=auth, subprotocols=[V1], open_timeout=30, max_size=None) as ws:
                execute(ws, "0", timeout=60)  # a kernel that has run a cell, as through the bridge
                return restart_then_run(lambda: c.post(f"{base}/api/kernels/{kernel}/restart", extensions=ext),
                                        ws, rounds, 5)
        finally:
            c.delete(f"{base}/api/kernels/{kernel}", extensions=ext)


def closed_with(ws, seconds: float) -> ConnectionClosed:
    deadline = time.monotonic() + seconds
    while True:
        try:
            ws.recv(timeout=max(0.1, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            return closed
        except TimeoutError:
            pytest.fail(f"the socket was not closed within {seconds} s")


def test_a_window_that_runs_out_closes_the_socket_with_the_reason(hub, net, start_bridge):
    b = start_bridge(hub, env=bridge_env(hub, net, JUPYTER_RESUME_WINDOW="3"))
    with rest(b) as c:
        kernel = c.post("/api/kernels", json={"name": "python3"}).json()["id"]
        with channels(b, kernel) as ws:
            assert execute(ws, "1 + 1")[2] == "2"
            net.cut(8)
            closed = closed_with(ws, 30)
        print(f"closed: {closed.rcvd.code} {closed.rcvd.reason!r}")
        assert closed.rcvd.code == 1001
        assert "no connection to the server for 3 s" in closed.rcvd.reason
        wait_for_log(b, f"kernel {kernel[:8]}: closed the IDE's socket: ", 1)
        net.heal()
        c.delete(f"/api/kernels/{kernel}")


def test_a_kernel_deleted_meanwhile_closes_the_socket_with_the_reason(bridge, hub, net, kernel):
    with channels(bridge, kernel) as ws:
        assert execute(ws, "1 + 1")[2] == "2"
        net.cut(4)
        with straight(hub) as c:
            r = c.delete(f"https://{hub['host']}:{hub['port']}/user/alice/api/kernels/{kernel}",
                         extensions={"sni_hostname": hub["tls_name"]})
        assert r.status_code == 204, r.text
        closed = closed_with(ws, 30)
    print(f"closed: {closed.rcvd.code} {closed.rcvd.reason!r}")
    assert closed.rcvd.code == 4404
    assert "no longer exists on the server (404)" in closed.rcvd.reason


def proxy_api(hub) -> httpx.Client:
    """The REST API of the hub's configurable-http-proxy, with the token the hub gave it (in its environment)."""
    pid = int((Path(hub["workdir"]) / "jupyterhub-proxy.pid").read_text())
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    token = next(e.partition(b"=")[2].decode() for e in environ if e.startswith(b"CONFIGPROXY_AUTH_TOKEN="))
    return httpx.Client(base_url=f"http://127.0.0.1:{hub['proxy_api_port']}",
                        headers={"Authorization": f"token {token}"}, timeout=30)


def error_pages(hub) -> int:
    """How many times the hub has served the proxy's 404 page (a request the proxy had no route for)."""
    return Path(hub["log_file"]).read_text(errors="replace").count("/hub/error/404")


def test_a_proxy_without_routes_yet_is_not_taken_for_a_deleted_kernel(bridge, hub, net, kernel):
    """A restarted proxy has no routes until the hub adds them again, and answers every dial meanwhile with 404 (the
    hub's error page): the bridge dials on until the route is back, where it used to close the IDE's socket as if
    the kernel were gone (4404)."""
    with proxy_api(hub) as proxy, channels(bridge, kernel) as ws:
        assert execute(ws, "x = 6 * 7; x")[2] == "42"
        routes = proxy.get("/api/routes").json()
        before = error_pages(hub)
        try:
            for path in routes:
                assert proxy.delete(f"/api/routes{path}").status_code == 204, path
            net.cut(0.5)
            deadline = time.monotonic() + 30
            while error_pages(hub) < before + 3:  # three dials answered by the hub's 404 page
                assert time.monotonic() < deadline, "the bridge did not dial again through the proxy"
                time.sleep(0.1)
        finally:
            for path, route in routes.items():
                kept = {k: v for k, v in route.items() if k != "last_activity"}
                assert proxy.post(f"/api/routes{path}", json=kept).status_code == 201, path
        assert execute(ws, "x + 1", timeout=RECV)[2] == "43"  # the same socket, the same kernel


def test_a_terminal_is_attached_again_after_a_cut(bridge, net):
    with rest(bridge) as c:
        name = c.post("/api/terminals").json()["name"]
        try:
            with ws_connect(f"ws://127.0.0.1:{bridge.port}/terminals/websocket/{name}", open_timeout=30,
                            additional_headers={"Authorization": f"token {bridge.token}"}) as ws:
                assert "before-cut" in echo(ws, "before-cut")
                resumed = bridge.log().count(f"terminal {name}: resumed")
                net.cut(2)
                wait_for_log(bridge, f"terminal {name}: resumed", resumed + 1)
                assert "after-cut" in echo(ws, "after-cut")  # the same shell, on the same socket
        finally:
            c.delete(f"/api/terminals/{name}")


def echo(ws, word: str, seconds: float = 30) -> str:
    ws.send(json.dumps(["stdin", f"echo {word}-$((6*7))\r"]))
    seen, deadline = "", time.monotonic() + seconds
    while f"{word}-42" not in seen:
        kind, *data = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if kind == "stdout":
            seen += data[0]
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", seen)


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` and its children listen on, from /proc."""
    inodes = set()
    for proc in [pid, *map(int, os.popen(f"pgrep -P {pid}").read().split())]:
        for fd in os.listdir(f"/proc/{proc}/fd"):
            try:
                target = os.readlink(f"/proc/{proc}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_only_mitmproxy_reaches_the_relay(bridge, kernel):
    """The relay listens on 127.0.0.1 for mitmproxy's upgrades only: without the ticket the bridge made for one,
    or with a made-up one, it refuses (and dials nothing)."""
    relay_ports = listening_ports(bridge.proc.pid) - {bridge.port}
    assert len(relay_ports) == 1, relay_ports
    url = f"ws://127.0.0.1:{relay_ports.pop()}/user/alice/api/kernels/{kernel}/channels"
    for headers in ({}, {"X-Bridge-Relay": "made-up"}, {"X-Bridge-Relay": "(single-use, redacted)"}):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, additional_headers=headers, open_timeout=10)
        assert refused.value.response.status_code == 403


def test_mitmweb_shows_a_resumed_flow_as_resumed(hub, net, start_bridge):
    """The IDE's side of a held socket is one live flow in mitmweb: under the hub's URL, with the IDE's messages,
    the ticket redacted, and a comment that says it resumed (not failed)."""
    web_port = free_port()
    b = start_bridge(hub, env=bridge_env(hub, net), web=True, args=["--set", f"web_port={web_port}"])
    web_token = b.log().split(f"127.0.0.1:{web_port}/?token=", 1)[1].split()[0]
    with rest(b) as c:
        kernel = c.post("/api/kernels", json={"name": "python3"}).json()["id"]
        with channels(b, kernel) as ws:
            assert execute(ws, "1 + 1")[2] == "2"
            net.cut(1)
            wait_for_log(b, f"kernel {kernel[:8]}: resumed", 1)
            assert execute(ws, "2 + 1")[2] == "3"
            flows = httpx.get(f"http://127.0.0.1:{web_port}/flows", params={"token": web_token}, timeout=30).json()
            flow = next(f for f in flows if f["request"]["path"].endswith(f"{kernel}/channels") or
                        f"{kernel}/channels?" in f["request"]["path"])
            print(f"mitmweb: {flow['request']['scheme']}://{flow['request']['host']}:{flow['request']['port']}"
                  f"{flow['request']['path'][:60]}... comment {flow['comment']!r}")
            assert (flow["request"]["host"], flow["request"]["port"]) == (hub["host"], net.port)
            assert flow["websocket"] and flow["websocket"]["timestamp_end"] is None  # live, not failed
            assert flow["comment"].startswith("resumed after")
            assert ["X-Bridge-Relay", "(single-use, redacted)"] in flow["request"]["headers"]
            messages = httpx.get(f"http://127.0.0.1:{web_port}/flows/{flow['id']}/messages/content/Auto.json",
                                 params={"token": web_token}, timeout=30)
            assert messages.status_code == 200 and len(messages.json()) > 2
        c.delete(f"/api/kernels/{kernel}")
