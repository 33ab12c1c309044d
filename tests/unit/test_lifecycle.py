"""Units of the lifecycle: which answers mean a stopped server, one start for many waiters, timeouts,
the hub's progress stream as events."""

import asyncio

import pytest

from addon.hub import api as hub
from addon.core import lifecycle
from addon.core import settings

BASE = "/jupyter/"


def s(**over):
    values = {o.name: o.default for o in settings.OPTIONS}
    values.update({"jupyter_server_ip_or_name": "10.0.0.5", "jupyter_username": "alice", **over})
    return settings.resolve(values, environ={})


@pytest.mark.parametrize("status, headers, cookies, stopped", [
    (302, {"location": "/jupyter/hub/user/alice/api/status"}, [], True),
    (302, {"location": "/jupyter/hub/spawn-pending/alice"}, [], True),
    (302, {"location": "https://jupyterhub:8443/jupyter/hub/user/alice/"}, [], True),
    (302, {"location": "/jupyter/user/alice/lab?"}, [], False),
    (302, {"location": "/jupyter/hub/api/oauth2/authorize?client_id=x"}, [], False),  # a login, not a stop
    (424, {"content-type": "application/json"}, [], True),
    (503, {"content-type": "text/html"}, [], True),
    (503, {"content-type": "application/json"}, [], False),  # the server's own 503
    (403, {"content-type": "text/html"}, ["_xsrf=x; Max-Age=3600; Path=/jupyter/hub/"], True),
    (403, {"content-type": "text/html"}, ["_xsrf=x; Path=/jupyter/user/alice/"], False),
    (403, {"content-type": "application/json"}, [], False),
    (200, {"content-type": "text/html"}, [], False),
])
def test_stopped_answers(status, headers, cookies, stopped):
    assert lifecycle.stopped_answer(status, headers, cookies, BASE) is stopped


def test_why_the_bridge_will_not_start_it():
    assert "JUPYTERHUB_API_TOKEN" in lifecycle.cannot_start(s())
    assert "JUPYTER_AUTOSTART is off" in lifecycle.cannot_start(s(jupyterhub_api_token="t" * 32,
                                                                  jupyter_autostart="off"))
    assert lifecycle.cannot_start(s(jupyterhub_api_token="t" * 32)) is None


@pytest.mark.parametrize("over, words", [
    ({"jupyter_autostart": "maybe"}, "JUPYTER_AUTOSTART='maybe' is not a switch"),
    ({"jupyter_start_timeout": "0"}, "JUPYTER_START_TIMEOUT='0' is not a number of seconds"),
    ({"jupyter_start_timeout": "nan"}, "is not a number of seconds"),
])
def test_bad_lifecycle_settings(over, words):
    with pytest.raises(ValueError, match=words):
        s(**over)


def test_username_is_optional_with_a_token_only():
    assert s(jupyter_username="", jupyterhub_api_token="t" * 32).username == ""
    with pytest.raises(ValueError, match="JUPYTER_USERNAME is not set"):
        s(jupyter_username="")


def test_server_paths_escape_names():
    assert hub.server_path("a b", "") == "/users/a%20b/server"
    assert hub.server_path("alice", "gpu/1") == "/users/alice/servers/gpu%2F1"


def test_sse_events_keep_what_is_incomplete():
    events, rest = hub.sse_events([":keepalive", "", 'data: {"progress": 50}', "", 'data: {"ready"'])
    assert events == [{"progress": 50}] and rest == ['data: {"ready"']


def test_hub_message_reads_json_or_text():
    assert hub.hub_message(403, b'{"message": "requires any of [start:servers]"}') == "requires any of [start:servers]"
    assert hub.hub_message(500, b"") == "HTTP 500"
    assert hub.hub_message(404, b'{"status": 404, "message": null}') == "HTTP 404"
    assert hub.hub_message(502, b"Bad gateway") == "Bad gateway"


class FakeHub:
    """The calls start_and_wait makes, scripted: answers to the start request and progress streams."""

    def __init__(self, posts, streams):
        self.posts, self.streams, self.started = list(posts), list(streams), 0

    async def whoami(self):
        return {"name": "alice", "kind": "user", "scopes": ["start:servers!user=alice"]}

    async def start(self, user, server, options=None):
        self.started += 1
        answer = self.posts.pop(0)
        await asyncio.sleep(0.01)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def progress(self, user, server):
        stream = self.streams.pop(0)
        if isinstance(stream, Exception):
            raise stream
        for event in stream:
            yield event


async def test_start_follows_progress_until_ready(caplog):
    fake = FakeHub([202], [[{"progress": 0, "message": "Server requested"}, {"progress": 100, "ready": True,
                                                                             "message": "Server ready"}]])
    with caplog.at_level("INFO"):
        await lifecycle.start_and_wait(fake, s(jupyterhub_api_token="t" * 32))
    assert "Starting your server: 0% Server requested" in caplog.text


async def test_start_asks_again_after_a_pending_stop():
    fake = FakeHub([hub.HubError(400, "alice is pending stop"), 201],
                   [hub.HubError(400, "not starting"), hub.HubError(400, "not starting"), [{"ready": True}]])
    await lifecycle.start_and_wait(fake, s(jupyterhub_api_token="t" * 32))
    assert fake.started == 2


async def test_progress_not_there_yet_is_asked_again():
    """Seen on the real hub: the progress stream answered 404 before the start request had reached it."""
    fake = FakeHub([202], [hub.HubError(404, "Not Found"), [{"progress": 100, "ready": True}]])
    await lifecycle.start_and_wait(fake, s(jupyterhub_api_token="t" * 32))


@pytest.mark.parametrize("posts, streams, words", [
    ([hub.HubError(403, "requires any of [start:servers]")], [hub.HubError(400, "no")] * 3, "'start:servers'"),
    ([202], [[{"progress": 100, "failed": True, "message": "Spawn failed: boom"}]], "Spawn failed: boom"),
    ([hub.HubError(0, "cannot reach the hub")], [hub.HubError(0, "cannot reach the hub")], "Retry later"),
])
async def test_start_failures_say_why(posts, streams, words):
    with pytest.raises(lifecycle.StartFailed, match=words.replace("[", r"\[")):
        await lifecycle.start_and_wait(FakeHub(posts, streams), s(jupyterhub_api_token="t" * 32))


async def test_one_start_for_many_waiters_and_a_new_one_afterwards():
    calls = []

    async def start():
        calls.append(1)
        await asyncio.sleep(0.05)

    starter = lifecycle.Starter(start, timeout=5)
    await asyncio.gather(*(starter.run() for _ in range(10)))
    assert len(calls) == 1 and not starter.busy
    await starter.run()
    assert len(calls) == 2


async def test_a_waiter_that_leaves_does_not_cancel_the_start():
    done = asyncio.Event()

    async def start():
        await asyncio.sleep(0.05)
        done.set()

    starter = lifecycle.Starter(start, timeout=5)
    leaving = asyncio.ensure_future(starter.run())
    await asyncio.sleep(0.01)
    leaving.cancel()
    await starter.run()
    assert done.is_set()


async def test_timeout_is_shared_and_says_so():
    starter = lifecycle.Starter(lambda: asyncio.sleep(10), timeout=0.1)
    results = await asyncio.gather(starter.run(), starter.run(), return_exceptions=True)
    assert all(isinstance(r, lifecycle.StartFailed) and "within 0.1 s" in str(r) for r in results)


def test_progress_lines_are_printed_when_they_change_a_few_a_second_at_most(caplog):
    """Issue 28: a hub's flood of small valid progress events printed 916,604 lines in one start."""
    now = [0.0]
    log = lifecycle.ProgressLog(clock=lambda: now[0])
    with caplog.at_level("INFO"):
        for i in range(10_000):  # a second's flood: each event another line, and each repeated
            now[0] = i / 10_000
            log({"progress": i // 2, "message": "x"})
        log({"progress": 99, "message": "x"})  # a new line within the interval: not shown...
        log({"progress": 100, "ready": True, "message": "ready"})  # ...the last one is
        log({"progress": 100, "ready": True, "message": "ready"})  # shown once
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Starting your server: 0% x" and lines[-1] == "Starting your server: 100% ready"
    assert len(lines) == 4 + 1 and len(set(lines)) == len(lines), lines  # at 0, 0.25, 0.5 and 0.75 s; the last
