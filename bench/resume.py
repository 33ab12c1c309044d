"""Kernel connections across cuts (issue 30's figures): one kernel WebSocket through the bridge, the network under
the bridge cut again and again during printing cells, the bridge stopped (SIGSTOP) for longer than the ping
timeout, then kernel restarts each followed at once by a cell on the same socket.

Starts, all on 127.0.0.1: a devhub hub, a NetRelay in front of it (devhub/net_relay.py, the tests' relay) and the
bridge (`./run.sh`) dialling the hub through the relay, with the default JUPYTER_RESUME_* settings. The client
speaks the default JSON protocol and sends no pings of its own (an IDE's sleep stops the IDE too; a client that
pinged a stopped bridge would close its own socket). For each cut a cell prints numbered lines every 100 ms, 2 s
before the cut, through it and 2 s after; the cut comes when line 20 arrives. Exits non-zero when a socket closed,
a cut lost more than one line, a line came out of order or twice, a reply or the next cell did not come, or a
restart's cell did not run.

    .venv-test/bin/python -m bench.resume                        # about 11 minutes
    .venv-test/bin/python -m bench.resume --cuts 2 --max-cut 6 --sleep 10 --restarts 3   # about 2 minutes"""

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from bench.measure import Target
from bench.measure import start_kernel
from bench.measure import stop_kernel
from bench.run import ROOT
from bench.run import SECRET
from bench.run import Processes
from bench.run import bridge_environment
from bench.run import start_hub
from bench.run import wait_port
from devhub.kernel_client import execute
from devhub.kernel_client import execute_request
from devhub.net_relay import NetRelay
from devhub.ports import free_ports

LINE_S = 0.1  # the cell prints a line every LINE_S seconds
LEAD = 20  # the fault comes when line LEAD arrives (2 s into the cell)
TAIL_S = 2.0  # seconds the cell prints after the fault's own length
SILENCE_S = 60.0  # seconds without a message, beyond the fault's length, after which the cell is given up
CELL_S = 60.0  # seconds the next short cell may take
RESTART_S = 30.0  # seconds the cell after a restart may take


def durations(n: int, low: float, high: float, seed: int) -> list[float]:
    """n cut lengths spread evenly over [low, high], in a fixed shuffled order."""
    values = [high] if n == 1 else [round(low + i * (high - low) / (n - 1), 1) for i in range(n)]
    random.Random(seed).shuffle(values)
    return values


def account(lines: list[int], n: int) -> dict:
    """What the IDE got of a cell that printed 1..n: the numbers missing, the ones that came after a higher number
    (out of order) and the repeats."""
    seen, top, late, repeated = set(), 0, 0, 0
    for x in lines:
        if x in seen:
            repeated += 1
            continue
        seen.add(x)
        late += x < top
        top = max(top, x)
    return {"lost": [i for i in range(1, n + 1) if i not in seen], "out_of_order": late, "duplicated": repeated}


def ranges(numbers: list[int]) -> str:
    """1,2,3,7 -> "1-3,7"; "-" for none."""
    spans = []
    for x in sorted(numbers):
        if spans and x == spans[-1][1] + 1:
            spans[-1][1] = x
        else:
            spans.append([x, x])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans) or "-"


def printing(n: int) -> str:
    return f"import time\nfor i in range(1, {n + 1}):\n    print(i, flush=True)\n    time.sleep({LINE_S})"


def open_socket(port: int, kernel: str):
    return ws_connect(f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}",
                      additional_headers={"Authorization": f"token {SECRET}"}, open_timeout=60, max_size=None,
                      ping_interval=None)


def run_printing(ws, n: int, fault, fault_s: float) -> dict:
    """Run the printing cell, calling fault() when line LEAD arrives; what arrived, bounded in time."""
    msg = execute_request(printing(n))
    msg_id = msg["header"]["msg_id"]
    ws.send(json.dumps(msg))
    text, arrivals, replied, idle, closed = "", [], False, False, None
    started = last = time.monotonic()
    deadline = started + n * LINE_S + fault_s + 2 * SILENCE_S
    try:
        while not (replied and idle) and time.monotonic() < deadline:
            if time.monotonic() - last > fault_s + SILENCE_S:
                break
            try:
                data = ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            last = time.monotonic()
            reply = json.loads(data)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "stream":
                arrivals.append(last)
                before = len(text.split())
                text += content["text"]
                if before < LEAD <= len(text.split()):
                    fault()
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
    except ConnectionClosed as e:
        closed = f"{e.rcvd.code} {e.rcvd.reason}" if e.rcvd else "closed without a close frame"
    silence = max((b - a for a, b in zip(arrivals, arrivals[1:])), default=0.0)
    return {"lines": [int(x) for x in text.split() if x.isdigit()], "replied": replied, "closed": closed,
            "silence_s": silence}


def next_cell(ws) -> tuple[bool, str | None]:
    """(whether `6 * 7` ran on the socket, the close if the socket closed)."""
    try:
        return execute(ws, "6 * 7", timeout=CELL_S)[2] == "42", None
    except TimeoutError:
        return False, None
    except ConnectionClosed as e:
        return False, f"{e.rcvd.code} {e.rcvd.reason}" if e.rcvd else "closed without a close frame"


def descendants(pid: int) -> list[int]:
    """pid and every process under it, from /proc."""
    out = [pid]
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            children = open(f"/proc/{pid}/task/{tid}/children").read().split()
        except OSError:
            continue
        for child in children:
            out += descendants(int(child))
    return out


class Sleep:
    """The bridge stopped (SIGSTOP) for `seconds` in a thread of its own, so that the client goes on waiting; end()
    sends SIGCONT at once if it has not been sent yet."""

    def __init__(self, pids: list[int], seconds: float):
        self.pids, self.seconds, self.woken = pids, seconds, threading.Event()
        self.thread = threading.Thread(target=self._sleep, daemon=True)

    def __call__(self) -> None:
        self.thread.start()

    def _sleep(self) -> None:
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            self.woken.wait(self.seconds)
        finally:
            for pid in self.pids:
                os.kill(pid, signal.SIGCONT)

    def end(self) -> None:
        self.woken.set()
        if self.thread.is_alive():
            self.thread.join(10)


def lines_for(fault_s: float) -> int:
    """Lines of a cell that prints LEAD lines before the fault, through it and TAIL_S seconds after it."""
    return LEAD + round((fault_s + TAIL_S) / LINE_S)


def row(name: str, fault_s: float, n: int, got: dict, ran: bool, closed: str | None) -> dict:
    return {"name": name, "fault_s": fault_s, "n": n, "arrived": len(got["lines"]), **account(got["lines"], n),
            "silence_s": got["silence_s"], "closed": got["closed"] or closed, "replied": got["replied"], "ran": ran}


def plan(net: NetRelay, cuts: list[float], sleep: Sleep) -> list[tuple[str, float, object]]:
    """(name, seconds, fault) for each cut, then the sleep."""
    steps = [(f"cut {i + 1}", s, lambda s=s: net.cut(s)) for i, s in enumerate(cuts)]
    return steps + ([("sleep", sleep.seconds, sleep)] if sleep.seconds > 0 else [])


def one_fault(ws, net: NetRelay, name: str, seconds: float, fault) -> dict:
    """A printing cell with the fault in it, then the next cell on the same socket: the row."""
    n = lines_for(seconds)
    print(f"  {name}: {seconds:g} s, cell of {n} lines", flush=True)
    try:
        got = run_printing(ws, n, fault, seconds)
    finally:
        if isinstance(fault, Sleep):
            fault.end()
        net.heal()
    ran, closed = (False, None) if got["closed"] else next_cell(ws)
    return row(name, seconds, n, got, ran, closed)


def restarts(ws, bridge: Target, kernel: str, rounds: int) -> tuple[list[bool], int]:
    """Restart the kernel through the bridge, then at once a cell on the same socket: whether each ran within
    RESTART_S, and how many times the socket closed (it is opened again then)."""
    ran, closes = [], 0
    for i in range(rounds):
        conn = bridge.connection(60)
        try:
            status, body = bridge.request(conn, "POST", f"/api/kernels/{kernel}/restart")
        finally:
            conn.close()
        if status != 200:
            print(f"  restart {i + 1}: {status} {body[:200]!r}", flush=True)
        try:
            ran.append(execute(ws, f"{i} + 1", timeout=RESTART_S)[2] == str(i + 1))
        except TimeoutError:
            ran.append(False)
        except ConnectionClosed:
            ran.append(False)
            closes += 1
            ws = open_socket(bridge.port, kernel)
    ws.close()
    return ran, closes


def yes(b: bool) -> str:
    return "yes" if b else "NO"


def table(rows: list[dict]) -> str:
    head = (f"{'':8} {'fault s':>7} {'lines':>5} {'arrived':>7} {'lost':>4} {'order':>5} {'dup':>3} "
            f"{'silence s':>9} {'closed':>6} {'reply':>5} {'next':>4}  lost lines")
    out = [head]
    for r in rows:
        out.append(f"{r['name']:8} {r['fault_s']:7g} {r['n']:5} {r['arrived']:7} {len(r['lost']):4} "
                   f"{r['out_of_order']:5} {r['duplicated']:3} {r['silence_s']:9.1f} "
                   f"{'YES' if r['closed'] else 'no':>6} {yes(r['replied']):>5} {yes(r['ran']):>4}  "
                   f"{ranges(r['lost'])}{' (closed: ' + r['closed'] + ')' if r['closed'] else ''}")
    return "\n".join(out)


def failures(rows: list[dict], ran: list[bool], restart_closes: int) -> list[str]:
    bad = []
    for r in rows:
        if r["closed"]:
            bad.append(f"{r['name']}: the socket closed ({r['closed']})")
        if len(r["lost"]) > 1:
            bad.append(f"{r['name']}: {len(r['lost'])} lines lost")
        if r["out_of_order"] or r["duplicated"]:
            bad.append(f"{r['name']}: {r['out_of_order']} out of order, {r['duplicated']} repeated")
        if not (r["replied"] and r["ran"]):
            bad.append(f"{r['name']}: reply {yes(r['replied'])}, next cell {yes(r['ran'])}")
    if restart_closes:
        bad.append(f"restarts: the socket closed {restart_closes} times")
    if not all(ran):
        bad.append(f"restarts: {ran.count(False)} of {len(ran)} cells did not run")
    return bad


def summary(rows: list[dict], ran: list[bool]) -> str:
    cuts = [r for r in rows if r["name"] != "sleep"]
    sleep = [r for r in rows if r["name"] == "sleep"]
    lost = [len(r["lost"]) for r in cuts]
    text = (f"cuts: {len(cuts)} ({min((r['fault_s'] for r in cuts), default=0):g}-"
            f"{max((r['fault_s'] for r in cuts), default=0):g} s), socket closed in "
            f"{sum(bool(r['closed']) for r in cuts)}, lines lost {sum(lost)} of {sum(r['n'] for r in cuts)} "
            f"(at most {max(lost, default=0)} in a cut), out of order or repeated "
            f"{sum(r['out_of_order'] + r['duplicated'] for r in cuts)}, replies {sum(r['replied'] for r in cuts)} "
            f"of {len(cuts)}, next cell ran {sum(r['ran'] for r in cuts)} of {len(cuts)}")
    for r in sleep:
        text += (f"; sleep {r['fault_s']:g} s: socket {'CLOSED' if r['closed'] else 'open'}, "
                 f"{len(r['lost'])} of {r['n']} lines lost, reply {yes(r['replied'])}, next cell {yes(r['ran'])}")
    return text + f"; restarts: {sum(ran)} of {len(ran)} cells ran within {RESTART_S:g} s"


def log_counts(log: Path, texts: tuple[str, ...], kernel: str = "") -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if kernel in line]
    return ", ".join(f"{sum(t in line for line in lines)} x {t!r}" for t in texts)


def bridge_log_lines(log: Path, kernel: str) -> list[str]:
    return [line for line in log.read_text(errors="replace").splitlines() if f"kernel {kernel[:8]}" in line]


def run(args) -> int:
    cuts = durations(args.cuts, args.min_cut, args.max_cut, args.seed)
    print(f"cut lengths (s, seed {args.seed}): {', '.join(f'{s:g}' for s in cuts)}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="bridge-resume-"))
    print(f"starting the hub, the relay and the bridge (logs: {workdir})...", flush=True)
    devhub = start_hub(workdir)
    hub = devhub.info
    procs = Processes(workdir)
    rows, ran, restart_closes = [], [], 0
    try:
        with NetRelay(hub["host"], hub["port"]) as net:
            (port,) = free_ports(1)
            env = bridge_environment(hub) | {"JUPYTER_SERVER_PORT": str(net.port), "JUPYTER_PROXY_PORT": str(port)}
            proc = procs.start("bridge", [str(ROOT / "run.sh")], env)
            wait_port(proc, port)
            pids = descendants(proc.pid)
            names = [Path(f"/proc/{p}/comm").read_text().strip() for p in pids]
            print(f"bridge: PID {', '.join(f'{p} ({n})' for p, n in zip(pids, names))}", flush=True)
            bridge = Target("bridge", "127.0.0.1", port, f"token {SECRET}")
            kernel = start_kernel(bridge)
            try:
                ws = open_socket(port, kernel)
                assert execute(ws, "1 + 1", timeout=CELL_S)[2] == "2", "the first cell did not run"
                for name, seconds, fault in plan(net, cuts, Sleep(pids, args.sleep)):
                    rows.append(one_fault(ws, net, name, seconds, fault))
                    print("    " + table(rows[-1:]).splitlines()[1], flush=True)
                    if rows[-1]["closed"]:  # the rest are measured on a new socket
                        ws.close()
                        ws = open_socket(port, kernel)
                print(f"  {args.restarts} restarts", flush=True)
                ran, restart_closes = restarts(ws, bridge, kernel, args.restarts)
            finally:
                stop_kernel(bridge, kernel)
            log_lines = bridge_log_lines(proc.log_path, kernel)
            bridge_log = log_counts(proc.log_path, ("the connection to the server dropped", "no answer to a ping",
                                                    "resumed on a new connection", "closed the IDE's socket"),
                                    f"kernel {kernel[:8]}")
            # the server's side: its own ping timeout, and what it kept for the session and replayed
            hub_log = log_counts(workdir / "hub" / "hub.log", ("WebSocket ping timeout", "Starting buffering",
                                                               "Replaying", "Discarding"))
    finally:
        procs.stop()
        devhub.stop()
    print()
    print(table(rows))
    print(summary(rows, ran))
    print(f"bridge log: {bridge_log} ({proc.log_path})")
    print(f"hub log: {hub_log}")
    bad = failures(rows, ran, restart_closes)
    for b in bad:
        print(f"FAILED {b}")
    if bad:
        print("the bridge's log lines for the kernel, the last 30:\n" + "\n".join(log_lines[-30:]))
    return 1 if bad else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.resume", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--cuts", type=int, default=20, help="cuts of the link, one per printing cell")
    ap.add_argument("--min-cut", type=float, default=5, help="the shortest cut (s)")
    ap.add_argument("--max-cut", type=float, default=30, help="the longest cut (s)")
    ap.add_argument("--seed", type=int, default=30, help="the order of the cut lengths")
    ap.add_argument("--sleep", type=float, default=90, help="seconds the bridge is stopped (SIGSTOP); 0: none")
    ap.add_argument("--restarts", type=int, default=20, help="kernel restarts, each followed at once by a cell")
    args = ap.parse_args(argv)
    if not (0 < args.min_cut <= args.max_cut and args.cuts >= 0 and args.sleep >= 0 and args.restarts >= 0):
        ap.error("need 0 < --min-cut <= --max-cut and counts and --sleep >= 0")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
