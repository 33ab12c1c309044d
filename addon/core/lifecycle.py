"""A stopped server is a pause, not an error: recognise the hub's answers for a server that is not running,
start it once however many requests notice, and let them all wait for that one start."""

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from urllib.parse import urlsplit

from addon.core.errors import BridgeError
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.core import spawn_options
from addon.core.errors import HubError
from addon.core import owner
from addon.core.settings import Settings

logger = logging.getLogger(__name__)
# Where the hub sends requests for a server that is stopped, pending or being started; other redirects into
# the hub (its OAuth login) are not about the server.
STOPPED_REDIRECTS = ("user/", "spawn-pending/", "spawn/")
STOPPED_STATUSES = frozenset({301, 302, 303, 307, 403, 424, 503})  # the only ones stopped_answer can be true for
RETRY_INTERVAL = 0.5  # between asking for a start and its progress stream being there
REFUSAL_WAIT = 5.0  # for the start request's own answer after the progress stream said the spawn failed
PROGRESS_INTERVAL = 0.25  # seconds between two progress lines, at least


# The first words of a start the hub's policy rejected, and of one that failed: told apart by the start request's
# answer (below 500: rejected), in `start`, in autostart's 503 and in the diagnosis (core/diagnose.py).
REJECTED = "The hub rejected the start of your server"
FAILED = "Your server failed to start"


class StartFailed(BridgeError):
    """The server is not running and the bridge could not change that; the message says what to do."""


def stopped_answer(status: int, headers: Mapping[str, str], set_cookies: list[str], base_url: str) -> bool:
    """True when the hub, not the user's server, answered: the server is stopped, pending or crashed.
    `headers` by lower-case name (forward.header_table; mitmproxy's Headers also do)."""
    if status not in STOPPED_STATUSES:
        return False
    hub = f"{base_url}hub/"
    location = urlsplit(headers.get("location", "")).path
    if status in (301, 302, 303, 307) and location.startswith(tuple(hub + p for p in STOPPED_REDIRECTS)):
        return True
    html = "text/html" in headers.get("content-type", "")
    if status == 424 or (status == 503 and html):
        return True  # "no longer running"; the proxy's error page for a crashed server
    # A write: the hub's own xsrf refusal, which sets its cookie for the hub's path.
    return status == 403 and html and any(f"path={hub}" in c.lower().replace(" ", "") for c in set_cookies)


def state(model: dict) -> str:
    """ready, pending with its action (spawn, stop), or stopped, from a server model of the hub."""
    if model.get("pending"):
        return f"pending {model['pending']}"
    if model.get("ready"):
        return "ready"
    return "stopped" if model.get("stopped", True) else "not ready"


async def server_state(h, user: str, server: str) -> str | None:
    """The state of one server; None when the token may not see that user's servers (one shared with it)."""
    try:
        model = await h.user_model(user)
    except HubError as e:
        if e.status in (403, 404):
            return None
        raise
    return state(model["servers"].get(server, {})) if "servers" in model else None


def cannot_start(s: Settings) -> str | None:
    """Why the bridge will not start the server itself, or None when it will."""
    if not s.hub_token:
        return (f"Your JupyterHub server is not running. Start it at {s.hub_home}, or give the bridge a hub token "
                "(JUPYTERHUB_API_TOKEN, with the 'start:servers' scope; 'servers' before JupyterHub 6) so that it "
                "starts the server itself.")
    if not s.autostart:
        return (f"Your JupyterHub server is not running and JUPYTER_AUTOSTART is off. Start it at {s.hub_home}, "
                "or turn JUPYTER_AUTOSTART on.")
    return None


async def not_yours(hub, s: Settings) -> str | None:
    """Why the bridge does not start another user's server shared with the token's owner, or None."""
    me = await owner.whose_token(hub)
    if me.name == s.username or me.may_start(s.username, s.named_server):
        return None
    return (f"The server of '{s.username}' is shared with you ('{me.name}') and it is not running: your "
            f"token may use it but not start it. Ask {s.username} to start it, then retry.")


def refusal(e: HubError, s: Settings) -> str:
    if e.status == 400 and s.server_options:
        return (f"The hub refused to start your server with JUPYTER_SERVER_OPTIONS "
                f"{spawn_options.shown(s.server_options)}: {e.message}. Set JUPYTER_SERVER_OPTIONS to options your "
                f"hub offers (its page {s.hub_origin}{s.base_url}hub/spawn shows them), or leave it empty.")
    if e.status == 403:
        return (f"The hub refused to start your server: {e.message}. The bridge's token (JUPYTERHUB_API_TOKEN) "
                f"needs the 'start:servers' scope (JupyterHub 6; 'servers' before). Or start it at {s.hub_home}.")
    if e.status == 0:
        return f"Your JupyterHub server is not running and the bridge could not start it: {e.message}. Retry later."
    if 400 <= e.status < 500:
        # The hub's policy said no (JupyterHub 6's SpawnException; a spawner's HTTPError below 500 before it): no
        # capacity, a quota, the options. Nothing failed, and a retry gets the same answer until that changes.
        return (f"{REJECTED}: {e.message} (HTTP {e.status}). Starting it again will not help until that changes: "
                f"see {s.hub_home}, or ask your hub admin.")
    return (f"{FAILED}: {e.message}. The hub's page {s.hub_home} shows the error; start the server again once it "
            "is fixed, or ask your hub admin.")


class ProgressLog:
    """The hub's progress of one start as lines in the bridge's log and in `./run.sh start`, the hub's words
    escaped: a line only when it changes, and at most one per PROGRESS_INTERVAL, except the last one (ready or
    failed). A hub that floods small valid events (916,604 lines in one start) gets a few lines a second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.last, self.at = clock, "", -math.inf

    def __call__(self, event: dict) -> None:
        line = printable(f"Starting your server: {event.get('progress', '?')}% {event.get('message', '')}".rstrip(),
                         LINE)
        now, last = self.clock(), event.get("ready") or event.get("failed")
        if line != self.last and (last or now - self.at >= PROGRESS_INTERVAL):
            self.last, self.at = line, now
            logger.info(line)


async def start_and_wait(hub, s: Settings) -> None:
    """Ask the hub to start the server and follow its progress until it is ready; raises StartFailed."""
    try:
        if why := await not_yours(hub, s):
            raise StartFailed(why)
        await _start_and_follow(hub, s.username, s.named_server, s.server_options)
    except HubError as e:
        raise StartFailed(refusal(e, s)) from None


def refused_request(e: BaseException | None) -> bool:
    return isinstance(e, HubError) and 400 <= e.status < 500


def asked_again(e: BaseException | None) -> bool:
    """A start refused only for now: the server is still stopping (400 '... is pending stop')."""
    return isinstance(e, HubError) and e.status == 400 and "is pending" in e.message


async def _start_and_follow(hub, user: str, server: str, options: dict | None = None) -> None:
    # The hub answers the start request only when the spawn ends (or after its slow_spawn_timeout), so the
    # progress stream is followed meanwhile; a start refused with 400 ('pending stop') is asked for again.
    post = asyncio.ensure_future(hub.start(user, server, options))
    log_progress = ProgressLog()
    try:
        while True:
            try:
                async for event in hub.progress(user, server):
                    log_progress(event)
                    if event.get("failed"):
                        # A refusal of the start request (400: the options) has the status and the reason; a
                        # spawn that failed has its reason only here (the request gets 500 'Internal Server Error').
                        await asyncio.wait([post], timeout=REFUSAL_WAIT)
                        if post.done() and not post.cancelled() and refused_request(post.exception()):
                            raise post.exception()
                        raise HubError(500, event.get("message") or "the spawn failed")
                    if event.get("ready"):
                        return
            except HubError as e:
                if e.status not in (400, 404):  # no start under way yet: the POST may not have reached the hub
                    raise
            if post.done():
                if asked_again(post.exception()):
                    post = asyncio.ensure_future(hub.start(user, server, options))
                else:
                    post.result()  # a refusal raises; a start that ended is followed above
            await asyncio.wait([post], timeout=RETRY_INTERVAL)
    finally:
        post.cancel()


class Starter:
    """One start at a time: whoever notices a stopped server first starts it; everyone waits for that start."""

    def __init__(self, start: Callable[[], Awaitable[None]], timeout: float) -> None:
        self._start = start
        self.timeout = timeout
        self._task: asyncio.Future | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Start the server, or join the start under way. Raises StartFailed."""
        if not self.busy:
            self._task = asyncio.ensure_future(self._within_timeout())
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())  # waiters may all be gone
        await asyncio.shield(self._task)

    async def _within_timeout(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._start()
        except TimeoutError:
            raise StartFailed(f"Your JupyterHub server did not start within {self.timeout:g} s "
                              "(JUPYTER_START_TIMEOUT). The hub may still be starting it: retry in a moment.") from None
