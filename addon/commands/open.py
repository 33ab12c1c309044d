"""`./run.sh open [--no-open] [--set option=value ...]`: a browser's own way in to the running bridge.

Prints a URL on the bridge's browser name with a ticket that the bridge takes once, within a minute, and opens
it where a desktop browser is available (--no-open: prints it only). The browser gets its cookie there and the
same URL without the ticket, so the IDE's permanent token is never typed into a browser nor kept in its history.
The bridge need not share anything with this command but its token (JUPYTER_PROXY_TOKEN, or the one
`./run.sh login` stored)."""

import os
import socket
import sys
import time
import webbrowser
from collections.abc import Mapping

from addon.core import login_record
from addon import store
from addon.commands import launch
from addon.core import credentials
from addon.core import guard
from addon.core.invocation import RUN
from addon.core.invocation import RUN_SH
from addon.core import settings
from addon.core.settings import Settings


def login_url(s: Settings, now: float) -> str:
    """JupyterLab on the browser's own name (on the bridge's address off loopback), with a fresh ticket."""
    browser = guard.browser_of(s)
    base = f"http://{browser}/" if browser else s.connect_url
    if not s.local_secret:
        return f"{base}lab"  # the bridge asks for no token
    return f"{base}lab?{credentials.LOGIN}={guard.login_ticket(s.local_secret, now)}"


def cannot_open(s: Settings, token_known: bool) -> str | None:
    if not s.hub_token:
        return (f"the bridge holds no hub token (JUPYTERHUB_API_TOKEN), so a browser brings its own: open "
                f"{s.connect_url}lab?token=<your JupyterHub API token>.")
    if s.local_secret and not token_known:
        return (f"the bridge makes a new token at each start when neither JUPYTER_PROXY_TOKEN nor {RUN} login "
                "gives it one, and this command cannot know it: set JUPYTER_PROXY_TOKEN for both, run "
                f"{RUN} login, or open the URL the bridge printed.")
    return None


def token_known(s: Settings, stored: login_record.Login, overrides: Mapping[str, str], environ: Mapping[str, str]) -> bool:
    """Whether the local token is the running bridge's: given, not made up at random for this process."""
    return ("jupyter_proxy_token" in overrides or environ.get("JUPYTER_PROXY_TOKEN") is not None
            or bool(stored.local_token) and s.local_secret == stored.local_token)


def has_desktop(environ: Mapping[str, str]) -> bool:
    """A graphical browser can open: without one, `webbrowser` would run a text browser in this terminal."""
    return sys.platform == "darwin" or any(environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"))


def bridge_answers(s: Settings) -> bool:
    try:
        with socket.create_connection((launch.bind_address(s.listen_host), s.listen_port), timeout=2):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(__doc__.replace(RUN_SH, RUN))  # the docstring names the checkout's command
        return 0
    overrides = launch.set_overrides(argv)
    try:
        stored = store.load(os.environ)
        s = settings.from_environment(os.environ, overrides, stored)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if why := cannot_open(s, token_known(s, stored, overrides, os.environ)):
        print(f"error: {why}", file=sys.stderr)
        return 1
    if not bridge_answers(s):
        print(f"warning: nothing answers at {s.connect_url} yet: start the bridge ({RUN}) within "
              f"{guard.TICKET_SECONDS} s, or run this again then.", file=sys.stderr)
    url = login_url(s, time.time())
    print(f"Open in your browser (works once, within {guard.TICKET_SECONDS} s): {url}", flush=True)
    if "--no-open" not in argv and has_desktop(os.environ) and not webbrowser.open(url):
        print("No browser could be started here: open the URL above yourself.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
