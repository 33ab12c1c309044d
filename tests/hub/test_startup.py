"""Issues 9 and 19: no client can make the bridge exit during its start-up, whatever it does (an IDE polling from
the first moment, a port probe's connect/close, half a request, a ClientHello on the plain port, a WebSocket
upgrade): the proxy listens only once mitmproxy has finished starting (addon/commands/startup.py)."""

import asyncio
import contextlib
import socket
import statistics
import time

import pytest
from mitmproxy import certs
from mitmproxy import options
from mitmproxy.tools import dump

from addon.commands import startup
from bench import startup as probe
from devhub.ports import free_ports

LOCAL_TOKEN = "startup-test-local-token-4f1c9e"
STARTS = 5


def started_master(tmp_path, port: int):
    master = startup.listening_after_start(dump.DumpMaster, str(tmp_path))(options.Options())
    master.options.update(mode=["reverse:http://127.0.0.1:9/"], listen_host="127.0.0.1", listen_port=port,
                          termlog_verbosity="error", flow_detail=0)
    return master


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except ConnectionRefusedError:
        return True


class SeesThePort:
    """An addon that records whether the proxy's port refused connections in its `running` hook, and sets
    `listening` once the proxy's servers have changed and listen."""

    def __init__(self, master, port: int) -> None:
        self.proxyserver, self.port, self.refused = master.addons.get("proxyserver"), port, None
        self.listening = asyncio.Event()
        self.proxyserver.servers.changed.connect(self.servers_changed)

    def running(self) -> None:
        self.refused = refuses(self.port)

    def servers_changed(self) -> None:
        if self.proxyserver.listen_addrs():
            self.listening.set()


@contextlib.asynccontextmanager
async def running_until_listening(tmp_path, port: int):
    """A started master (as above) run until its proxy listens, and stopped after the block."""
    master = started_master(tmp_path, port)
    sees = SeesThePort(master, port)
    master.addons.add(sees)
    run = asyncio.ensure_future(master.run())
    await asyncio.wait_for(sees.listening.wait(), 10)
    try:
        yield master, sees
    finally:
        master.shutdown()
        await asyncio.wait_for(run, 10)


async def test_the_proxy_listens_only_after_the_running_hooks_have_loaded_the_certificate_store(tmp_path):
    (port,) = free_ports(1)
    async with running_until_listening(tmp_path, port) as (master, sees):
        assert sees.refused is True  # nothing listened while the running hooks ran
        assert master.addons.get("tlsconfig").certstore is not None and not refuses(port)


async def test_mitmproxys_folder_is_the_bridges_and_its_certificate_store_is_loaded_once(tmp_path, monkeypatch):
    """Issue 19's start-up time: a confdir set as a change (as `--set confdir=` did) has TlsConfig load its
    certificate store (~40 ms) once more before the load at `running`."""
    loads, load = [], certs.CertStore.from_store
    monkeypatch.setattr(certs.CertStore, "from_store", lambda **kw: loads.append(kw["path"]) or load(**kw))
    (port,) = free_ports(1)
    async with running_until_listening(tmp_path, port):
        pass
    assert loads == [str(tmp_path)]
    assert (tmp_path / "mitmproxy-ca.pem").is_file()  # mitmproxy's own CA files went into the bridge's folder


async def test_a_port_in_use_still_ends_the_start_with_status_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        master = started_master(tmp_path, taken.getsockname()[1])
        with pytest.raises(SystemExit) as exit:
            await asyncio.wait_for(master.run(), 10)
    assert exit.value.code == 1


@pytest.mark.parametrize("web", [False, True], ids=["dump", "web"])
def test_no_client_makes_the_bridge_exit_during_start_up(hub, start_bridge, web):
    env = {"JUPYTERHUB_API_TOKEN": hub["users"]["alice"]["token"], "JUPYTER_PROXY_TOKEN": LOCAL_TOKEN}
    auth = f"token {LOCAL_TOKEN}"
    exited, seconds = [], []
    for _ in range(STARTS):
        started = time.monotonic()
        bridge = start_bridge(hub, env=env, web=web, wait=False)
        took = probe.probe(bridge.proc, bridge.port, auth, started)
        if took is None:
            exited.append(bridge.log())
        else:
            seconds.append(took)
            assert probe.answer(bridge.port, auth) == 200, bridge.log()
            assert "Error logged during startup" not in bridge.log()
        bridge.stop()
    assert not exited, f"{len(exited)} of {STARTS} starts exited under the probe; the first:\n{exited[0]}"
    print(f"start to first answer under the mixed probe: median {statistics.median(seconds):.2f} s")
