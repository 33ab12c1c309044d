"""Issue 19: the renewal's clock after a suspend, and the login's lock two bridges take in turn (pure parts)."""

import asyncio
import os
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from addon.core import login_record
from addon import renew
from addon import store

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)


class Laptop:
    """A wall clock and a sleep that advances it; `suspend_after` naps in, the lid closes for `suspended`."""

    def __init__(self, suspend_after: int | None = None, suspended: timedelta = timedelta(0)) -> None:
        self.now, self.naps = NOW, []
        self.suspend_after, self.suspended = suspend_after, suspended

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += timedelta(seconds=seconds)
        if len(self.naps) == self.suspend_after:
            self.now += self.suspended  # the monotonic clock a plain sleep counts on stood still meanwhile


def wait(due, laptop, changed=lambda: False):
    asyncio.run(renew.wait_until(due, changed, laptop.clock, laptop.sleep))


def test_a_wait_ends_within_one_step_of_a_resume_past_its_time():
    laptop = Laptop(suspend_after=2, suspended=timedelta(hours=3))
    wait(NOW + timedelta(seconds=250), laptop)
    assert laptop.naps == [renew.STEP, renew.STEP]  # not the 244 s a monotonic sleep would still have to go
    assert all(nap <= renew.STEP for nap in laptop.naps)


def test_a_wait_without_a_suspend_ends_at_its_time_in_short_steps():
    laptop = Laptop()
    wait(NOW + timedelta(seconds=10), laptop)
    assert laptop.now == NOW + timedelta(seconds=10) and max(laptop.naps) <= renew.STEP


def test_a_wait_ends_when_the_login_file_changes():
    laptop, looks = Laptop(), iter([False, False, True])
    wait(None, laptop, lambda: next(looks))  # None: an expired token waits for a new login only
    assert len(laptop.naps) == 2


def test_a_wait_already_due_does_not_sleep():
    laptop = Laptop()
    wait(NOW - timedelta(seconds=1), laptop)
    assert laptop.naps == []


TOKEN = login_record.HubToken(token="t", expires_at="2026-12-02T12:00:20.000000Z", lifetime=20)


@pytest.mark.parametrize("now, to_renewal, expected", [
    (NOW, 16.0, NOW + timedelta(seconds=16)),  # the renewal is due first
    (NOW + timedelta(seconds=17), 0.0, NOW + timedelta(seconds=20)),  # a failed renewal: wake at the expiry
    (NOW + timedelta(seconds=30), 0.0, NOW + timedelta(seconds=30 + renew.LONGEST_SLEEP)),  # expired already
])
def test_wake_at(now, to_renewal, expected):
    assert renew.wake_at(now, TOKEN, to_renewal) == expected


@pytest.mark.parametrize("record, seconds, expected", [
    (TOKEN, 19.9, False),
    (TOKEN, 20, True),  # expired at its time
    (login_record.HubToken(token="t"), 10 ** 9, False),  # never expires
    (None, 0, False),  # no stored token in use
])
def test_expired(record, seconds, expected):
    assert renew.expired(record, NOW + timedelta(seconds=seconds)) is expected
    if record:  # the per-request check: the same answer from wall-clock seconds
        assert ((NOW + timedelta(seconds=seconds)).timestamp() >= renew.expiry_seconds(record.expires_at)) is expected


def test_one_holder_of_the_login_lock_at_a_time(tmp_path):
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir(mode=0o700)
    first, second = store.open_lock(environ), store.open_lock(environ)  # two bridges: two open files
    try:
        assert store.take_lock(first) and not store.take_lock(second)
        os.close(first)  # the first bridge is done (or died): the lock goes with its file
        assert store.take_lock(second)
    finally:
        os.close(second)
    assert oct((tmp_path / "home" / store.LOCK_NAME).stat().st_mode & 0o777) == "0o600"


def test_the_login_lock_waits_its_turn_without_blocking_the_event_loop(tmp_path, monkeypatch):
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path)}
    os.chmod(tmp_path, 0o700)
    monkeypatch.setattr(renew, "LOCK_WAIT", 0.3)
    held = store.open_lock(environ)
    assert store.take_lock(held)

    async def turns():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.get_running_loop().create_task(tick())
        with pytest.raises(TimeoutError):
            async with renew.login_locked(environ):
                pass
        os.close(held)
        async with renew.login_locked(environ):
            pass
        ticker.cancel()
        return ticks

    assert asyncio.run(turns()) > 5  # the loop went on while the lock was held elsewhere


def test_each_save_gives_the_file_a_new_stamp(tmp_path):
    environ = {"JUPYTERHUB_BRIDGE_HOME": str(tmp_path / "home")}
    assert store.stamp(environ) is None
    store.save(login_record.Login(hub_token=TOKEN), environ)
    first = store.stamp(environ)
    store.save(login_record.Login(hub_token=TOKEN), environ)  # the same content: still another file
    assert first is not None and store.stamp(environ) != first
