"""`python -m addon.commands.startup mitmdump|mitmweb [mitmproxy args]`: mitmdump or mitmweb, as their own commands run
them, except that client connections wait until mitmproxy has finished starting (addon/commands/launch.py runs this).

Why (issue 9, mitmproxy 12.3.1): `Master.run` starts the proxy servers (`Proxyserver.setup_servers`) before it
calls the addons' `running` hooks, and `TlsConfig` loads its certificate store only in `running`. A request
handled in between reaches `TlsConfig.request` → `crl_path()` with `certstore` still None; the AttributeError
is logged, and `ErrorCheck`, which watches the log until start-up has ended, exits the process. Bare mitmdump
has the window too; the bridge widens it: mitmproxy loads `-s addon/main.py` in a task one loop turn later,
right after the socket started listening, and the import blocks the loop while clients' connections queue up.

So the master holds every client connection in `client_connected` until its `running` hooks have all returned
(our own `running`, around mitmproxy's). A held request is answered once the proxy is ready; a start that
fails still exits, closing held connections. The held hook is added when the master is built, before any
server listens, so no connection passes unheld. The bridge's addons still come through `-s addon/main.py`:
there, in ScriptLoader's place in the chain, they see flows before `Save` (`-w`) and the dumper do (field
note 25); the script is loaded before the first connection is accepted and long before `running`."""

import asyncio
import sys

from mitmproxy import master
from mitmproxy.tools import cmdline
from mitmproxy.tools import main as mitmproxy_main


class HoldUntilStarted:
    """Keeps each new client connection waiting until `release()` (the end of the master's start-up)."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    def release(self) -> None:
        self.started.set()

    async def client_connected(self, client) -> None:
        await self.started.wait()


def holding(master_cls: type[master.Master]) -> type[master.Master]:
    """master_cls whose client connections wait for the end of its start-up."""

    class Holding(master_cls):
        def __init__(self, opts) -> None:
            super().__init__(opts)
            self.hold = HoldUntilStarted()
            self.addons.add(self.hold)

        async def running(self) -> None:
            await super().running()
            self.hold.release()

    return Holding


def dump_filter(args) -> dict:
    """As mitmproxy's `mitmdump` command: a filter expression among the arguments limits what is shown/saved."""
    if not args.filter_args:
        return {}
    f = " ".join(args.filter_args)
    return dict(save_stream_filter=f, readfile_filter=f, dumper_filter=f)


def main(argv: list[str]) -> None:
    from mitmproxy.tools import dump
    from mitmproxy.tools import web

    tool, args = argv[0], argv[1:]
    sys.argv[0] = tool  # mitmproxy's usage and error lines name the command, as when run as mitmdump/mitmweb
    if tool == "mitmweb":
        mitmproxy_main.run(holding(web.master.WebMaster), cmdline.mitmweb, args)
    else:
        mitmproxy_main.run(holding(dump.DumpMaster), cmdline.mitmdump, args, dump_filter)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("mitmdump", "mitmweb"):
        sys.exit("usage: python -m addon.commands.startup mitmdump|mitmweb [mitmproxy args]")
    main(sys.argv[1:])
