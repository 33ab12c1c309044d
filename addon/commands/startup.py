"""`main(["mitmdump"|"mitmweb", *mitmproxy args])`: mitmdump or mitmweb, as their own commands run them, except that
the proxy starts listening only once mitmproxy has finished starting (addon/commands/launch.py calls it, in its own
interpreter, once the settings are checked).

Why (issues 9 and 19, mitmproxy 12.3.1; docs/mitmproxy-startup-window.md): `Master.run` opens the proxy's
listening socket (`Proxyserver.setup_servers`) before it calls the addons' `running` hooks, and `TlsConfig` loads
its certificate store only in `running`. A request handled in between meets `certstore` None; the AttributeError
is logged, and `ErrorCheck`, which exits on any error logged until start-up has ended, ends the process. Holding
connections in a `client_connected` hook instead (this module's first answer) opened another window: a client
that connects and leaves while held makes mitmproxy's connection handler crash (`assert handler`), which also
exits. Both are mitmproxy's windows; plain mitmdump has the first one too.

So there is no window: mitmproxy's own early `setup_servers` call does nothing, and the master binds the proxy's
socket itself at the end of `running`, after
  1. every addon's `running` hook has returned (the certificate store is loaded),
  2. every `-s` script has been loaded (mitmproxy loads them in a task of their own; the bridge's addons must
     see the first request: we give that task the loop until it has loaded or failed),
  3. mitmproxy's start-up error check has run and finished: an error logged before exits, as in mitmproxy;
     after it, what a client does is only logged, as in any later moment of mitmproxy's life.
Before that the port refuses connections, which every client (an IDE, a port probe) takes as "not up yet"; no
client connection exists during start-up, whatever it would do. This depends on the order of start-up, not on
its timing. A socket that cannot be bound (port in use) is reported by mitmproxy and exits with status 1, as
mitmproxy's own check would. The bridge's addons still come through `-s addon/main.py`: there, in
ScriptLoader's place in the chain, they see flows before `Save` (`-w`) and the dumper do (field note 25)."""

import asyncio
import os
import signal
import sys

from h11._receivebuffer import ReceiveBuffer
from mitmproxy import master
from mitmproxy.proxy import commands
from mitmproxy.proxy import events
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.layers.http._base import ReceiveHttp
from mitmproxy.proxy.layers.http._events import ErrorCode
from mitmproxy.proxy.layers.http._events import ResponseProtocolError
from mitmproxy.tools import cmdline
from mitmproxy.tools import main as mitmproxy_main

SCRIPT_LOAD_TURNS = 1000  # loop turns given to the `-s` scripts' loading task (mitmproxy 12.3.1 needs 2)
# An upstream's status line and header block: a hub's and a server's are a few KiB (the Hub client allows 16 KiB,
# h11's default); beyond this the answer is a 502 that says so.
RESPONSE_HEAD_LIMIT = 256 * 1024


async def listen_later() -> bool:
    """Stands in for Proxyserver.setup_servers during start-up: mitmproxy's early call binds nothing."""
    return True


async def scripts_loaded(m: master.Master) -> None:
    """Yield the loop until every `-s` script has been loaded or an error (a failed load) was logged."""
    loader, check = m.addons.get("scriptloader"), m.addons.get("errorcheck")
    for _ in range(SCRIPT_LOAD_TURNS):
        if all(s.ns is not None for s in loader.addons) or (check and check.logger.has_errored):
            return
        await asyncio.sleep(0)


def hang_up_as_terminate(m: master.Master) -> None:
    """SIGHUP (a closed terminal, a dropped SSH session) stops mitmproxy as its SIGTERM does, so that the addons'
    `done` hooks run: the bridge revokes its access token (mitmproxy handles SIGINT and SIGTERM only: field note 51).
    Called in mitmproxy's running loop, as its own handlers are."""
    if hasattr(signal, "SIGHUP"):  # not on Windows
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.call_soon_threadsafe(m.shutdown))


def listening_after_start(master_cls: type[master.Master], confdir: str) -> type[master.Master]:
    """master_cls whose proxy listens only once its start-up has finished, with mitmproxy's folder `confdir`."""

    class ListeningAfterStart(master_cls):
        def __init__(self, opts) -> None:
            # Set before mitmproxy's addons exist: mitmproxy reads `<confdir>/config.yaml` from here after the command
            # line (field note 41), and TlsConfig loads its certificate store once, at `running`; a confdir on the
            # command line is a change that has it load the store once more first (~40 ms of start-up, issue 19).
            opts.update(confdir=confdir)
            super().__init__(opts)
            self.addons.get("proxyserver").setup_servers = listen_later

        async def running(self) -> None:
            hang_up_as_terminate(self)
            await super().running()
            await scripts_loaded(self)
            if check := self.addons.get("errorcheck"):
                await check.shutdown_if_errored()
                check.finish()
            proxyserver = self.addons.get("proxyserver")
            del proxyserver.setup_servers  # mitmproxy's own again, for whoever calls it from now on
            if not await proxyserver.setup_servers():
                print("Error logged during startup, exiting...", file=sys.stderr)
                sys.exit(1)

    return ListeningAfterStart


def bound_response_heads() -> None:
    """Bound what mitmproxy holds of an upstream's HTTP/1 answer before its head is complete (field note 51).

    mitmproxy 12 appends whatever the server sends to the connection's ReceiveBuffer until a blank line ends the
    head (`Http1Client.read_headers`, "FIXME: protect against header size DoS"), without a limit: a server that
    sends a 100 MB header or a 200 MB status line had the bridge hold 599 MB and 1.72 GB. No addon hook sees an
    answer before its head is parsed, and mitmproxy has no option for it, so the one method is wrapped here, once,
    before any connection exists: after mitmproxy's own step, a head still incomplete beyond RESPONSE_HEAD_LIMIT
    ends the server connection with a protocol error, which mitmproxy answers as a 502 with that reason (as for a
    head it cannot parse). Everything else stays mitmproxy's own code. HTTP/1 is all there is to bound: the bridge's
    clients speak plain HTTP, so mitmproxy offers the server no ALPN (TlsConfig.tls_start_server) and the
    upstream answers in HTTP/1.1."""
    read_headers = _http1.Http1Client.read_headers

    def bounded_read_headers(self, event: events.ConnectionEvent):
        yield from read_headers(self, event)
        if (isinstance(event, events.DataReceived) and self.state == self.read_headers
                and self.stream_id is not None and len(self.buf) > RESPONSE_HEAD_LIMIT):
            self.buf, self.state = ReceiveBuffer(), self.done
            yield commands.CloseConnection(self.conn)
            yield ReceiveHttp(ResponseProtocolError(
                self.stream_id, f"the server's status line and headers are over {RESPONSE_HEAD_LIMIT // 1024} KiB: "
                "refused", ErrorCode.GENERIC_SERVER_ERROR))

    _http1.Http1Client.read_headers = bounded_read_headers


def dump_filter(args) -> dict:
    """As mitmproxy's `mitmdump` command: a filter expression among the arguments limits what is shown/saved."""
    if not args.filter_args:
        return {}
    f = " ".join(args.filter_args)
    return dict(save_stream_filter=f, readfile_filter=f, dumper_filter=f)


def main(argv: list[str], confdir: str) -> None:
    """Run mitmdump or mitmweb (argv[0]) with the rest of argv as their arguments and mitmproxy's folder `confdir`.
    Each imports only its own tool: mitmdump has no use for mitmweb's web application."""
    tool, args = argv[0], argv[1:]
    # What mitmproxy writes (`-w`/save_stream_file flows, mitmweb's included) holds the flows' headers and the
    # browser's host name, which is a secret (guard.py): owner-only, as the login file is, whatever the umask.
    os.umask(0o077)
    bound_response_heads()
    sys.argv[0] = tool  # mitmproxy's usage and error lines name the command, as when run as mitmdump/mitmweb
    if tool == "mitmweb":
        from mitmproxy.tools.web import master as web_master
        mitmproxy_main.run(listening_after_start(web_master.WebMaster, confdir), cmdline.mitmweb, args)
    else:
        from mitmproxy.tools import dump
        mitmproxy_main.run(listening_after_start(dump.DumpMaster, confdir), cmdline.mitmdump, args, dump_filter)
