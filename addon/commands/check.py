"""`python -m addon.commands.check [--set option=value ...]`: a preflight to run before opening the IDE.

Prints a checklist (✓ passed, ✗ failed with its fix, – skipped) and stops with exit status 1 at the first
failure that would stop the IDE. It dials the hub itself, the way the bridge does: the bridge need not run."""

import asyncio
import dataclasses
import os
import sys
from urllib.parse import quote

from cryptography import x509
from mitmproxy.http import Headers  # case-insensitive, as the bridge's request headers are

from addon.core import login_record
from addon.core import credentials
from addon.core import diagnose
from addon.core.errors import BridgeError
from addon.core.invocation import RUN
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.core import forward
from addon.hub import api as hub
from addon.core import owner
from addon.hub import tokens
from addon.commands import launch
from addon.core import route
from addon.core import settings
from addon import store
from addon.core.settings import Settings

TIMEOUT = 10.0
ACCESS_SECONDS = 120  # the access token check_kernelspecs uses, revoked after its one request


class Failed(BridgeError):
    """A check that failed: what, its fix, and details worth a line each."""

    def __init__(self, what: str, fix: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(what, fix)
        self.what, self.details = what, details


@dataclasses.dataclass
class Checklist:
    """What the steps learn on the way: the settings (with the token's owner once known), whose the token is and
    what it may do, whether the server is up to answer."""
    s: Settings
    hub: hub.Hub
    login: login_record.Login = login_record.Login()  # what ./run.sh login stored
    trust: login_record.Trust | None = None  # login: what verified the hub, to store
    token_owner: owner.TokenOwner | None = None
    server_down: bool = False


def failure(answer: diagnose.Outcome, s: Settings, cert: x509.Certificate | None = None) -> Failed:
    found = diagnose.diagnose(answer, diagnose.facts(s, cert))
    if found is None:
        status = f"HTTP {answer.status}: " if answer.status else ""  # None: no answer, only an error
        return Failed(f"{status}{answer.error or diagnose.message(answer.body)}",
                      f"See the message above; `{RUN} web` shows the whole exchange.")
    details = ()
    if cert is not None:
        c = diagnose.describe(cert)
        details = (f"the hub's certificate: names {', '.join(c.names) or '(none)'}; subject {c.subject}; "
                   f"issuer {c.issuer}; valid {c.not_before} to {c.not_after}",)
    return Failed(found.cause, found.fix, details)


async def check_address(c: Checklist) -> str:
    s = c.s
    try:
        found = await asyncio.get_running_loop().getaddrinfo(s.server_host, s.server_port)
        _, writer = await asyncio.wait_for(asyncio.open_connection(s.server_host, s.server_port), TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise failure(diagnose.Outcome(None, error=str(e) or "timed out"), s) from e
    writer.close()
    return f"{s.server_host} resolves to {found[0][4][0]} and accepts TCP on port {s.server_port}"


async def check_tls(c: Checklist) -> str:
    try:
        cert = await c.hub.handshake()
    except hub.PinBroken as e:
        raise Failed(e.message, f"Only once your hub's admins confirm the new certificate: {RUN} login.") from e
    except hub.HubError as e:
        try:
            unverified = await c.hub.handshake(verify=False)
        except hub.HubError:
            unverified = None
        raise failure(diagnose.Outcome(None, error=e.message), c.s, unverified) from e
    about = diagnose.describe(cert)
    return (f"TLS verified for '{c.s.tls_name}' with {c.s.trust.text} "
            f"(issuer {about.issuer}, valid until {about.not_after})")


async def check_hub(c: Checklist) -> str:
    s = c.s
    answer = await c.hub.api("GET", "", token=False)  # the version needs no token: none goes before the hub is known
    if answer.status != 200 or "version" not in answer.json():
        raise Failed(f"The hub at {s.dial_url} answered {answer.status} for {s.base_url}hub/api, not JupyterHub's "
                     "version.",
                     "Check JUPYTERHUB_BASE_URL (e.g. /jupyter/ when the hub lives under a prefix) and the port.")
    return f"JupyterHub {answer.json()['version']} answers at {s.base_url}hub/api"


async def check_token(c: Checklist) -> str:
    s = c.s
    tail = credentials.redact(s.hub_token or "")
    try:
        c.token_owner = me = await owner.whose_token(c.hub, expiry=True)
    except hub.HubError as e:
        if e.status == 0:
            raise
        raise Failed(f"The hub rejected JUPYTERHUB_API_TOKEN ({tail}): it is wrong, expired or revoked "
                     f"({e.status}).",
                     login_record.refused_token_advice(c.login.holds(s.hub_token))
                     or "Create a new token on the hub's Token page and set JUPYTERHUB_API_TOKEN to it.") from None
    if s.username and me.name != s.username:
        if me.may_reach(s.username, s.named_server):
            return f"token {tail} of '{me.name}' may use the server of '{s.username}': shared with you by {s.username}"
        raise Failed(f"The token ({tail}) belongs to '{me.name}', not to JUPYTER_USERNAME '{s.username}'.",
                     f"Set JUPYTER_USERNAME={me.name}, or use a token of '{s.username}'.")
    c.s = s = dataclasses.replace(s, username=me.name)  # the bridge, too, uses the token's owner when none is set
    if not me.may_reach(me.name, s.named_server):
        raise Failed(f"The token ({tail}) of '{me.name}' lacks the scope access:servers (it has: "
                     f"{', '.join(sorted(me.scopes)) or 'none'}), so your server refuses it.",
                     "Create a token without limiting its scopes, or with access:servers!user=<you>.")
    expires = (me.expires_at or "never") if me.expiry_known else "unknown (no read:tokens scope)"
    return f"token {tail} of '{me.name}' is valid, may access servers, expires {expires}"


def why_no_autostart(c: Checklist) -> str | None:
    """Why the bridge could not start a stopped server, or None when it will start it."""
    if not c.s.autostart:
        return "JUPYTER_AUTOSTART is off"
    if c.token_owner is None or not c.token_owner.may_start(c.s.username, c.s.named_server):
        return f"the token ({credentials.redact(c.s.hub_token or '')}) lacks the scope start:servers"
    return None


async def check_server(c: Checklist) -> str:
    s = c.s
    answer = await c.hub.api("GET", f"/users/{quote(s.username, safe='')}")
    servers = answer.json().get("servers")
    if answer.status != 200 or servers is None:
        why = answer.status if answer.status != 200 else "no read:servers scope"
        return f"– server state unknown: the token may not read it ({why})"
    name = f"'{s.named_server}'" if s.named_server else "default"
    server = servers.get(s.named_server) or {}
    if server.get("ready"):
        return f"your {name} server is running at {server.get('url')}"
    c.server_down, why_not, pending = True, why_no_autostart(c), server.get("pending")
    if pending and pending != "stop":
        then = "the bridge waits for it" if why_not is None else "wait a minute or two"
        return f"– your {name} server is starting (pending {pending}): {then}"
    if why_not:
        raise Failed(f"Your {name} server is stopped (or its last start failed), and the bridge will not start it: "
                     f"{why_not}.",
                     f"Start it on {s.hub_home}, then run this check again; or let the bridge start it "
                     "(JUPYTER_AUTOSTART=true and a token with the scope start:servers!user=<you>).")
    return f"– your {name} server is stopped: the bridge will start it on the IDE's first request"


async def check_kernelspecs(c: Checklist) -> str:
    s = c.s
    if c.server_down:
        return "– /api/kernelspecs not checked: your server is not running, so there is nothing to ask yet"
    try:  # as the bridge does: the server gets a short-lived access token, never the hub token
        access = await tokens.access_token(c.hub, s.username, s.named_server, ACCESS_SECONDS, " (check)")
    except BridgeError as e:
        raise Failed(e.message, e.fix) from e
    s = dataclasses.replace(s, server_token=access.token)
    headers = Headers(host=f"127.0.0.1:{s.listen_port}")
    if s.local_secret:
        headers["Authorization"] = f"token {s.local_secret}"
    try:
        plan = forward.request_changes("/api/kernelspecs", headers, s)
    except route.Refused as e:
        raise Failed(e.message, "Check the settings above.") from e
    for name, value in plan.headers.items():  # applied as the bridge applies its plan
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    answer = await asyncio.wait_for(c.hub.request("GET", plan.target, list(headers.items())), hub.API_TIMEOUT)
    await tokens.revoke_access(c.hub, access)
    if answer.status != 200:
        got = Headers([(k.encode(), v.encode()) for k, v in answer.headers])
        raise failure(diagnose.Outcome(answer.status, got, answer.body.decode(errors="replace"),
                                      credential="Authorization" in headers), s)
    specs = answer.json()
    return f"/api/kernelspecs answers through the bridge's code path: {', '.join(specs['kernelspecs'])} " \
           f"(default {specs.get('default')})"


def paste_url(s: Settings, stored: login_record.Login, environ=os.environ) -> str:
    if s.hub_token and environ.get("JUPYTER_PROXY_TOKEN") is None and s.local_secret != stored.local_token:
        return f"{s.connect_url}?token=<the token the bridge prints at start; set JUPYTER_PROXY_TOKEN to fix it>"
    return launch.connect_url(s)


def say(line: str) -> None:
    """The one printer of the checklist's lines, which quote the hub (its version, URLs, names, messages) and the
    certificate: escaped and bounded."""
    print(printable(line, LINE), flush=True)


def report(f: Failed) -> int:
    say(f"✗ {f.what}")
    for detail in f.details:
        say(f"    {detail}")
    say(f"    fix: {f.fix}")
    return 1


async def run(s: Settings, stored: login_record.Login) -> int:
    c = Checklist(s, hub.Hub(s), stored)
    steps = [check_address, check_tls, check_hub]
    steps += [check_token, check_server, check_kernelspecs] if s.hub_token else []
    for step in steps:
        try:
            line = await step(c)
        except Failed as f:
            return report(f)
        except (hub.HubError, TimeoutError) as e:  # the hub stopped answering half-way
            return report(failure(diagnose.Outcome(None, error=str(e) or "timed out"), c.s))
        say(line if line.startswith("– ") else f"✓ {line}")
    if not s.hub_token:
        say("– token, server state and /api/kernelspecs not checked: JUPYTERHUB_API_TOKEN is not set, "
              "the IDE brings its own hub token")
    say(f"Paste into PyCharm: {paste_url(s, stored)}")
    return 0


def main(argv: list[str]) -> int:
    if {"-h", "--help"} & set(argv):
        print(f"usage: {RUN} check [--set option=value ...]\n\n" + __doc__.split("\n\n", 1)[1]
              + f"\n\nThe settings it checks: {RUN} help")
        return 0
    try:
        stored = store.load(os.environ)
        s = settings.from_environment(os.environ, launch.set_overrides(argv), stored)
    except ValueError as e:
        say(f"✗ settings: {e}")
        return 1
    server = f"server '{s.named_server}' of " if s.named_server else ""
    user = f"user '{s.username}'" if s.username else "the hub token's owner"
    say(f"✓ settings: {server}{user} on {s.dial_url} (TLS name '{s.tls_name}'), base URL {s.base_url}")
    return asyncio.run(run(s, stored))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
