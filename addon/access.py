"""The access token: the only credential the bridge sends to the server it serves (issue 17).

The hub token (the login's, or JUPYTERHUB_API_TOKEN) can do all its owner can, minting tokens included; a server's
code sees every Authorization header it receives (field note 43). So at start the bridge has the hub make, with
the hub token, a token limited to `access:servers!server=<owner>/<server>` that lives
JUPYTER_ACCESS_TOKEN_LIFETIME seconds, sends only that upstream, renews it when a fifth of its lifetime is left
(open connections stay as they are), and revokes it when it stops cleanly. The start does not wait for the hub: the
first requests of the bridge's own clients wait for the token; if the hub could not make it, the next request asks
again (until then they get a 503), not sooner than a back-off that doubles after each failure (RETRY_FIRST to
RETRY_MAX). Requests of other clients (no credential, a foreign Host) neither wait nor ask (addon/core/forward.py
wants_access_token)."""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable
from datetime import datetime
from datetime import timezone

from mitmproxy import http

from addon.core import forward
from addon.core import guard
from addon.core import hub_versions
from addon.core import login_record
from addon.config import Config
from addon.core.errors import BridgeError
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.hub import api as hub
from addon.hub import tokens
from addon.renew import seconds_to_renewal

logger = logging.getLogger(__name__)

RETRY = 30.0  # seconds before a failed renewal is tried again
RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds between the bridge's clients' attempts to have the first token made
REVOKE_TIMEOUT = 5.0  # a stop waits this long at most for the hub to revoke the access token


def running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class Access:
    def __init__(self, config: Config, browsers: guard.BrowserAccess | None = None) -> None:
        self.config = config
        self.browsers = browsers or guard.BrowserAccess()  # RewriteRequest's: who holds the browser's cookie
        self.token: login_record.HubToken | None = None  # the access token in use, as the hub made it
        self.making: asyncio.Task | None = None  # the one attempt under way
        self.renewal: asyncio.Task | None = None
        self.backoff, self.retry_at = 0.0, 0.0  # after a failed attempt: its wait, and when it ends (monotonic)
        self.shared_checked = False  # whether the hub's version was checked for sharing's bug (once)
        self.sweep: asyncio.Task | None = None  # the leftovers of earlier bridges, revoked once

    def configure(self, updated: set[str]) -> None:
        """Ask the hub as soon as the settings are known (at start: while the script loads, so that the hub answers
        while mitmproxy finishes starting), without waiting: the port opens meanwhile, and the first requests wait
        for the token (requestheaders). No loop runs in a test's configure: `running` asks then."""
        if self.needed() and running_loop():
            self.start_making()

    def running(self) -> None:
        if self.needed() and self.making is None:  # configured before the loop ran
            self.start_making()
        self.renewal = asyncio.get_running_loop().create_task(self.keep_alive())

    def requestheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """The token is being made, the hub could not make it (or a reconfiguration dropped it): the bridge's own
        clients wait for it, or ask again. With the token there (most requests), no coroutine is made."""
        if flow.live and not flow.response and self.needed() and forward.wants_access_token(
                flow.request.path, forward.header_table(flow.request.headers.fields), self.config.settings,
                self.browsers):
            return self.ensure()
        return None

    def needed(self) -> bool:
        s = self.config.settings
        return s is not None and bool(s.hub_token) and not s.server_token and not self.config.logged_out

    def start_making(self) -> asyncio.Task:
        """The one attempt under way, started when there is none and the back-off after a failure is over (until
        then, the failed one)."""
        if self.making is None or self.making.done() and time.monotonic() >= self.retry_at:
            self.making = asyncio.get_running_loop().create_task(self.make())
        return self.making

    async def ensure(self) -> None:
        if self.needed():
            await asyncio.shield(self.start_making())

    async def make(self, why: str = "") -> bool:
        """Have the hub make an access token and serve with it; False (logged) when it did not."""
        s = self.config.settings
        try:
            new = await tokens.access_token(self.config.hub, s.username, s.named_server, s.access_token_lifetime, why)
        except BridgeError as e:
            self.failed(str(e))
            return False
        except hub.HubError as e:  # a stored token the hub refuses: say to log in again
            advice = login_record.refused_token_advice(self.config.stored_token) if e.status == 403 else ""
            self.failed(f"{e.message}. {advice}" if advice else e.message)
            return False
        self.config.access_problem, old, self.token, self.backoff = "", self.token, new, 0.0
        self.config.use(dataclasses.replace(self.config.settings, server_token=new.token), self.config.stored_token)
        if new.user != s.username and not self.shared_checked:
            await self.warn_of_sharing()
        if new.id is None:
            logger.info("the hub token may not make tokens: it is sent to your own server as it is")
        else:
            logger.info(printable(f"made the access token for {tokens.access_scope(s.username, s.named_server)}: "
                                  f"it {new.expiry_text()}", LINE))
        if old and (trouble := await tokens.revoke_access(self.config.hub, old)):
            logger.warning(printable(f"could not revoke the previous access token: {trouble}", LINE))
        if self.sweep is None and new.id is not None:
            self.sweep = asyncio.get_running_loop().create_task(self.revoke_leftovers(new.user))
        return True

    async def warn_of_sharing(self) -> None:
        """Serving a server another user shared (the token is not its owner's): warn, once, on a hub whose
        sharing has the bug 5.5.1 fixed."""
        self.shared_checked = True
        try:
            warning = hub_versions.sharing_warning(await self.config.hub.version())
        except hub.HubError:
            return  # the version is only for this warning
        if warning:
            logger.warning(printable(f"{warning}.", LINE))

    async def revoke_leftovers(self, user: str) -> None:
        """Revoke the access tokens that bridges on this machine made and left valid (killed, or stopped before
        SIGHUP was handled): found by their note, their process gone."""
        try:
            revoked, _ = await tokens.revoke_leftovers(self.config.hub, user)
        except hub.HubError:
            return  # the hub did not answer: they expire by themselves
        if revoked:
            logger.info(f"revoked {revoked} access token(s) that earlier bridges on this machine left valid")

    def failed(self, why: str) -> None:
        """Log the failure once; the bridge's clients that it leaves without a token are told it too (rewrite.py).
        The next attempt waits for the back-off."""
        self.backoff = min(RETRY_MAX, max(RETRY_FIRST, 2 * self.backoff))
        self.retry_at = time.monotonic() + self.backoff
        why = printable(why, LINE)
        if why != self.config.access_problem:
            logger.warning(f"no access token for your server yet ({why}); the bridge asks the hub again when its "
                           f"clients next need it, waiting longer after each failure (at most {RETRY_MAX:g} s).")
        self.config.access_problem = why

    async def keep_alive(self) -> None:
        if self.making:
            await asyncio.wait([self.making])  # the first token, or the first failure (tried again below)
        while True:
            token = self.token
            wait = seconds_to_renewal(datetime.now(timezone.utc), login_record.parse_time(token.expires_at),
                                      token.lifetime) if token and token.id else None
            if wait is None:
                await asyncio.sleep(RETRY)  # none yet, or one that is not renewed: look again later
            elif wait > 0:
                await asyncio.sleep(wait)
            elif not await self.make(" (renewed)"):
                await asyncio.sleep(RETRY)

    async def done(self) -> None:
        for task in (self.renewal, self.making, self.sweep):
            if task:
                task.cancel()
        if self.token is None or self.token.id is None:
            return
        try:
            trouble = await asyncio.wait_for(tokens.revoke_access(self.config.hub, self.token), REVOKE_TIMEOUT)
        except TimeoutError:
            trouble = f"the hub did not answer within {REVOKE_TIMEOUT:g} s"
        if trouble:
            logger.warning(printable(f"could not revoke the access token at stop: {trouble}; it "
                                     f"{self.token.expiry_text()}", LINE))
        else:
            logger.info("revoked the access token")
