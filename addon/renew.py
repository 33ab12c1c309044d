"""Keeps the hub token of `./run.sh login` alive: when less than a fifth of its lifetime is left (looked at start
and then when due), the bridge has the hub make the successor with the token itself (same scopes and lifetime),
keeps it, serves new requests with it (open connections stay as they are) and revokes the old one. When it
cannot, it warns once a day with the date of expiry and `./run.sh login`.

Time is the wall clock's, looked at every few seconds: the monotonic clock asyncio sleeps on stands still while
a laptop is suspended, so a plain sleep would wake long after the renewal was due. A token that expired meanwhile
is not offered to the hub: the bridge says once in its log, and in its answer to each of its clients, that it
expired and to run `./run.sh login`, and serves again as soon as that login has written the file.

Two bridges on one login take turns (the login's lock file): each re-reads the file under the lock before it
renews, and adopts the successor another one stored instead of making its own, so that none is left holding a
token another one revoked."""

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Awaitable
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from functools import lru_cache

from mitmproxy import http

from addon.core import login_record
from addon.core.invocation import RUN
from addon import rewrite
from addon import store
from addon.config import Config
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.hub import api as hub
from addon.core import owner
from addon.hub import tokens

logger = logging.getLogger(__name__)

# Look again at least this often: a failed renewal is tried again.
LONGEST_SLEEP = 300.0
# Between two looks at the wall clock and the login file (a stat): a resumed laptop renews, and a new login is
# followed, within this many seconds.
STEP = 3.0
LOCK_WAIT = 40.0  # another bridge renewing holds the lock for a few hub calls (each up to hub.API_TIMEOUT)
WARN_EVERY = timedelta(days=1)
LOGGED_OUT = (f"You logged out ({RUN} logout removed the login): the bridge serves no more. Run {RUN} login, "
              "then start the bridge again.")
EXPIRED = "bridge_login_expired"  # flow.metadata: refused for an expired login token, and logged already


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def seconds_to_renewal(now: datetime, expires_at: datetime | None, lifetime: int | None) -> float | None:
    """Seconds until the successor is due (0: now); None when the token never expires or its lifetime is
    unknown (nothing to renew)."""
    if expires_at is None or not lifetime:
        return None
    due = expires_at - timedelta(seconds=lifetime / 5)
    return max(0.0, (due - now).total_seconds())


def pause(to_renewal: float | None) -> float:
    """How long to sleep before looking again (None: nothing to renew, 0: a renewal just failed)."""
    return min(to_renewal, LONGEST_SLEEP) if to_renewal else LONGEST_SLEEP


def expired(record: login_record.HubToken | None, now: datetime) -> bool:
    expires = login_record.parse_time(record.expires_at) if record else None
    return expires is not None and expires <= now


@lru_cache(maxsize=4)
def expiry_seconds(expires_at: str | None) -> float:
    """The expiry as wall-clock seconds (time.time()), parsed once per token; inf for a token that never expires."""
    expires = login_record.parse_time(expires_at)
    return expires.timestamp() if expires else float("inf")


def wake_at(now: datetime, record: login_record.HubToken, to_renewal: float | None) -> datetime:
    """When to look again: at the renewal (or after a pause), and at the latest when the token expires."""
    wake = now + timedelta(seconds=pause(to_renewal))
    expires = login_record.parse_time(record.expires_at)
    return min(wake, expires) if expires and expires > now else wake


async def wait_until(due: datetime | None, changed: Callable[[], bool], clock: Callable[[], datetime] = now_utc,
                     sleep: Callable[[float], Awaitable] = asyncio.sleep) -> None:
    """Return when the wall clock reaches `due` (None: never) or `changed()` says so, looking every STEP s."""
    while not changed():
        left = STEP if due is None else (due - clock()).total_seconds()
        if left <= 0:
            return
        await sleep(min(STEP, left))


@contextlib.asynccontextmanager
async def login_locked(environ):
    """Hold the login's lock (store.open_lock); TimeoutError after LOCK_WAIT s. Waits without blocking the
    bridge's event loop."""
    fd = store.open_lock(environ)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while not store.take_lock(fd):
            if time.monotonic() > deadline:
                raise TimeoutError(f"another bridge has held {store.LOCK_NAME} for {LOCK_WAIT:g} s")
            await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)


class Renew:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.task: asyncio.Task | None = None
        self.warned: datetime | None = None
        self.ours = False  # the bridge sends the stored token (and then follows the file)
        self.seen: tuple | None = None  # store.stamp of the file as last read
        self.told: str | None = None  # the expired token whose expiry the log has told

    def running(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.keep_alive())

    def done(self) -> None:
        if self.task:
            self.task.cancel()

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """The bridge's own clients get no answer made with an expired login token, nor once the login is gone
        (`./run.sh logout`), whatever answer the addons before had made (an access token the expired one could not
        make, say): they get what to do."""
        record = self.config.stored_token
        if not (flow.live and flow.metadata.get(rewrite.BRIDGES) and (record or self.config.logged_out)):
            return
        if self.config.logged_out:
            flow.request.stream = False
            flow.response = rewrite.own_response(flow, 503, LOGGED_OUT)
            flow.comment, flow.marked = LOGGED_OUT, ":warning:"
            return
        if time.time() >= expiry_seconds(record.expires_at):  # expired(), without a datetime per request
            self.tell_expired(record)
            flow.request.stream = False
            flow.response = rewrite.own_response(flow, 403, login_record.refused_token_advice(record))
            flow.comment, flow.marked = login_record.refused_token_advice(record), ":warning:"  # as the diagnosis does
            flow.metadata[EXPIRED] = True

    def tell_expired(self, record: login_record.HubToken) -> None:
        if self.told != record.token:
            self.told = record.token
            logger.warning(login_record.refused_token_advice(record))

    def file_changed(self) -> bool:
        return store.stamp(self.config.environ) != self.seen

    def follow(self) -> login_record.Login | None:
        """The stored login, when the bridge sends its token, after switching to a token that another bridge
        or ./run.sh login stored; None when the stored token is not the bridge's to renew."""
        s = self.config.settings
        self.seen = store.stamp(self.config.environ)
        try:
            login = store.load(self.config.environ)
            stored = login.hub_token_for(s.server_host, s.server_port, s.tls_name, s.ca_file, s.base_url,
                                         s.trust.sha256) \
                if s and s.hub_token else None
        except ValueError as e:
            logger.warning(printable(f"the hub token will not be renewed: {e}", LINE))
            return None
        if self.ours and login.hub_token is None:  # ./run.sh logout (or rm) removed the login the bridge serves with
            if not self.config.logged_out:
                logger.warning(LOGGED_OUT)
            self.config.logged_out = True
            return None
        if stored is None or (stored.token != s.hub_token and not self.ours):
            return None  # the bridge does not use the stored token (JUPYTERHUB_API_TOKEN, say): not ours to renew
        if stored.token != s.hub_token:
            self.config.use(dataclasses.replace(s, hub_token=stored.token), stored)
            logger.info(f"now sending the hub token that {RUN} login keeps (it was replaced)")
        self.ours = True
        return login

    async def keep_alive(self) -> None:
        while (login := self.follow()) is not None:
            record, now = login.hub_token, now_utc()
            if expired(record, now):  # the hub would refuse it: only a new login helps
                self.tell_expired(record)
                await wait_until(None, self.file_changed)
                continue
            wait = seconds_to_renewal(now, login_record.parse_time(record.expires_at), record.lifetime)
            if wait == 0 and await self.renew(record):
                continue  # look at the successor
            await wait_until(wake_at(now, record, wait), self.file_changed)

    async def renew(self, old: login_record.HubToken) -> bool:
        """Make, store and use the successor, under the login's lock; True: look at the file again now."""
        try:
            async with login_locked(self.config.environ):
                login = self.follow()  # another bridge may have renewed it meanwhile: then take that one
                if login is None or login.hub_token != old:
                    return True
                return await self.make_successor(login, old)
        except (TimeoutError, OSError, ValueError) as e:
            return self.warn(old, str(e))

    async def make_successor(self, login: login_record.Login, old: login_record.HubToken) -> bool:
        s = self.config.settings
        request = tokens.token_request(f"jupyterhub-bridge on {socket.gethostname()} (renewed)", old.lifetime,
                                       list(old.scopes) if old.scopes else None)
        try:
            me = await owner.whose_token(self.config.hub)
            if not me.may_mint():
                return self.warn(old, f"the token lacks the scope tokens!user={me.name}")
            answer = await self.config.hub.mint_token(old.user, request)
        except hub.HubError as e:
            return self.warn(old, e.message)
        if answer.status != 201:
            return self.warn(old, hub.hub_message(answer.status, answer.body))
        new = tokens.record(answer.json(), request, old.user)
        try:
            store.save(dataclasses.replace(login, hub_token=new), self.config.environ)
        except OSError as e:  # the successor expires unused; the old token goes on until then
            return self.warn(old, f"cannot write {store.path(self.config.environ)}: {e.strerror}")
        self.seen = store.stamp(self.config.environ)
        self.config.use(dataclasses.replace(s, hub_token=new.token), new)
        await self.revoke(old, me.token_id or old.id)
        logger.info(f"renewed the hub token: the new one {new.expiry_text()}")
        return True

    async def revoke(self, old: login_record.HubToken, token_id: str | None) -> None:
        try:
            revoked = await self.config.hub.revoke_token(old.user, token_id)
            if revoked.status != 204:
                logger.warning(printable(f"renewed the hub token, but the hub did not revoke the old one: "
                                         f"{hub.hub_message(revoked.status, revoked.body)}", LINE))
        except hub.HubError as e:
            logger.warning(printable(f"renewed the hub token, but could not revoke the old one: {e.message}", LINE))

    def warn(self, old: login_record.HubToken, why: str) -> bool:
        now = now_utc()
        if self.warned is None or now - self.warned >= WARN_EVERY:
            self.warned = now
            logger.warning(printable(f"could not renew the hub token ({why}); it {old.expiry_text()}: run "
                                     f"{RUN} login.", LINE))
        return False
