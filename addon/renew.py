"""Keeps the hub token of `./run.sh login` alive: when less than a fifth of its lifetime is left (looked at start
and then when due), the bridge has the hub make the successor with the token itself (same scopes and lifetime),
keeps it, serves new requests with it (open connections stay as they are) and revokes the old one. When it
cannot, it warns once a day with the date of expiry and `./run.sh login`."""

import asyncio
import dataclasses
import logging
import socket
from datetime import datetime
from datetime import timedelta
from datetime import timezone

from addon.hub import api as hub
from addon.hub import owner
from addon import store
from addon.hub import tokens
from addon.config import Config

logger = logging.getLogger(__name__)

# Look again at least this often: a login may have replaced the token, a suspended laptop's clock jumps, a failed
# renewal is tried again.
LONGEST_SLEEP = 300.0
WARN_EVERY = timedelta(days=1)


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


class Renew:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.task: asyncio.Task | None = None
        self.warned: datetime | None = None

    def running(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.keep_alive())

    def done(self) -> None:
        if self.task:
            self.task.cancel()

    async def keep_alive(self) -> None:
        ours = False
        while True:
            s = self.config.settings
            try:
                login = store.load()
            except ValueError as e:
                logger.warning(f"the hub token will not be renewed: {e}")
                return
            stored = login.hub_token_for(s.server_host, s.server_port) if s and s.hub_token else None
            if stored is None or (stored.token != s.hub_token and not ours):
                return  # the bridge does not use the stored token (JUPYTERHUB_API_TOKEN, say): not ours to renew
            if stored.token != s.hub_token:  # ./run.sh login again, or another bridge renewed it: follow the file
                self.config.use(dataclasses.replace(s, hub_token=stored.token), stored)
                logger.info("now sending the hub token that ./run.sh login keeps (it was replaced)")
            ours = True
            now = datetime.now(timezone.utc)
            wait = seconds_to_renewal(now, store.parse_time(stored.expires_at), stored.lifetime)
            if wait == 0 and await self.renew(login, stored):
                continue  # look at the successor
            await asyncio.sleep(pause(wait))

    async def renew(self, login: store.Login, old: store.HubToken) -> bool:
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
            store.save(dataclasses.replace(login, hub_token=new))
        except OSError as e:  # the successor expires unused; the old token goes on until then
            return self.warn(old, f"cannot write {store.path()}: {e.strerror}")
        self.config.use(dataclasses.replace(s, hub_token=new.token), new)
        try:
            revoked = await self.config.hub.revoke_token(old.user, me.token_id or old.id)
            if revoked.status != 204:
                logger.warning(f"renewed the hub token, but the hub did not revoke the old one: "
                               f"{hub.hub_message(revoked.status, revoked.body)}")
        except hub.HubError as e:
            logger.warning(f"renewed the hub token, but could not revoke the old one: {e.message}")
        logger.info(f"renewed the hub token: the new one {new.expiry_text()}")
        return True

    def warn(self, old: store.HubToken, why: str) -> bool:
        now = datetime.now(timezone.utc)
        if self.warned is None or now - self.warned >= WARN_EVERY:
            self.warned = now
            logger.warning(f"could not renew the hub token ({why}); it {old.expiry_text()}: run ./run.sh login.")
        return False
