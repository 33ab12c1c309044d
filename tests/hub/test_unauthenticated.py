"""Issue 28: requests without a credential made the bridge call the hub with the login token while it had no access
token (20 such requests, 40 Hub API calls). Counted at a real hub, in its own log: the guard runs first, only the
bridge's own clients wait for or trigger the access token, and failed attempts back off."""

import re
import time
from pathlib import Path

import httpx

WAIT = 30.0
REFUSED_TOKEN = "not-a-hub-token-0123456789abcdef"  # the hub refuses it (as a revoked login token): 403
LOCAL = "unauthenticated-test-local-token-7d2a"
# The hub's log line of each Hub API request that the refused token made (it names no user: "(@127.0.0.1)")
REFUSED_CALL = re.compile(r"\] 403 \w+ /hub/api/\S* \(@127\.0\.0\.1\)")


def refused_calls(hub) -> int:
    return len(REFUSED_CALL.findall(Path(hub["log_file"]).read_text(errors="replace")))


def test_requests_without_a_credential_make_no_hub_api_call(hub, start_bridge):
    bridge = start_bridge(hub, env={"JUPYTERHUB_API_TOKEN": REFUSED_TOKEN, "JUPYTER_PROXY_TOKEN": LOCAL})
    deadline = time.monotonic() + WAIT
    while "no access token for your server yet" not in bridge.log() and time.monotonic() < deadline:
        time.sleep(0.1)  # the attempt at start has failed
    assert "no access token for your server yet" in bridge.log(), bridge.log()
    before = refused_calls(hub)
    assert before >= 1  # the refused token's calls are counted
    with httpx.Client(base_url=bridge.url, timeout=WAIT) as c:
        answers = [c.get("/api/contents").status_code for _ in range(10)]
        answers += [c.get("/api/contents", headers={"Host": "evil.example"}).status_code for _ in range(10)]
        assert answers == [401] * 10 + [403] * 10
        calls = refused_calls(hub) - before
        assert calls == 0, f"{calls} Hub API calls for 20 requests without the bridge's token"
        # The bridge's own clients ask again, once per back-off (1 s after the failure at start, then 2 s, ...)
        own = [c.get("/api/contents", headers={"Authorization": f"token {LOCAL}"}).status_code for _ in range(10)]
    assert own == [503] * 10
    assert refused_calls(hub) - before <= 2, refused_calls(hub) - before  # one call (whoami) per attempt
