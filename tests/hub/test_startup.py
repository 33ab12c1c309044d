"""Issue 9: a client that asks from the moment the bridge starts (PyCharm, kept open while the bridge restarts)
never makes it exit; its requests are answered once the bridge is ready (addon/commands/startup.py)."""

import asyncio
import http.client
import statistics
import time

import pytest
from mitmproxy import options
from mitmproxy.proxy import server_hooks
from mitmproxy.test import tflow
from mitmproxy.tools import dump

from addon.commands import startup

LOCAL_TOKEN = "startup-test-local-token-4f1c9e"
POLL_SECONDS = 0.02
START_TIMEOUT = 30.0


def status(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/status", headers={"Authorization": f"token {LOCAL_TOKEN}"})
        return conn.getresponse().status
    finally:
        conn.close()


def first_answer(bridge) -> tuple[float, int]:
    """Poll GET /api/status every 20 ms from now on: (seconds to the first answer, its status). Refused or
    closed connections are retried, as a client would; the bridge exiting fails the test."""
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        if bridge.proc.poll() is not None:
            pytest.fail(f"the bridge exited with {bridge.proc.returncode} during start-up:\n{bridge.log()}",
                        pytrace=False)
        try:
            return time.monotonic() - started, status(bridge.port)
        except (OSError, http.client.HTTPException):
            time.sleep(POLL_SECONDS)
    pytest.fail(f"no answer within {START_TIMEOUT:.0f} s:\n{bridge.log()}", pytrace=False)


async def test_a_connection_waits_until_the_running_hooks_have_loaded_the_certificate_store(tmp_path):
    master = startup.holding(dump.DumpMaster)(options.Options(confdir=str(tmp_path)))
    connected = asyncio.ensure_future(
        master.addons.trigger_event(server_hooks.ClientConnectedHook(tflow.tclient_conn())))
    await asyncio.sleep(0.05)
    assert not connected.done() and master.addons.get("tlsconfig").certstore is None
    await master.running()
    await asyncio.wait_for(connected, 5)
    assert master.addons.get("tlsconfig").certstore is not None
    await master.done()


@pytest.mark.parametrize("web, starts", [(False, 10), (True, 3)], ids=["dump", "web"])
def test_requests_during_start_up_are_answered_and_the_bridge_stays_up(hub, start_bridge, web, starts):
    env = {"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"], "JUPYTER_PROXY_TOKEN": LOCAL_TOKEN}
    seconds = []
    for _ in range(starts):
        bridge = start_bridge(hub, env=env, web=web, wait=False)
        took, first = first_answer(bridge)
        assert first == 200, bridge.log()
        # mitmproxy's start-up check exits right after the start-up hooks: still up and answering after it
        for _ in range(10):
            time.sleep(POLL_SECONDS)
            assert bridge.proc.poll() is None and status(bridge.port) == 200, bridge.log()
        assert "Error logged during startup" not in bridge.log()
        assert bridge.stop() is not None
        seconds.append(took)
    print(f"start to first answer: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s")
