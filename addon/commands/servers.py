"""`./run.sh servers [--json]`, `./run.sh start [SERVER]`, `./run.sh stop [SERVER]`: see, start and stop your
servers on the hub from a terminal, without the bridge running (`python -m addon.commands.servers servers|start|stop`).

Stopping a server frees what it holds on the cluster (a node, a GPU, a batch allocation) at once, instead of
when the hub's idle culler gets to it."""

import asyncio
import dataclasses
import json
import logging
import os
import sys
import time

from addon import store
from addon.hub import api as hub
from addon.core import owner
from addon.commands import launch
from addon.core import hub_versions
from addon.core import lifecycle
from addon.core import settings
from addon.core import spawn_options
from addon.core.errors import BridgeError
from addon.core.invocation import RUN
from addon.core.printable import LINE
from addon.core.printable import columns
from addon.core.printable import printable
from addon.core.settings import Settings

STOP_TIMEOUT = 120.0  # a spawner's stop (SIGTERM, then SIGKILL; a batch job's cancel) ends well within this
POLL_INTERVAL = 0.5
HEADINGS = ["  SERVER", "STATE", "URL", "STARTED", "LAST ACTIVITY", "OPTIONS"]


class CommandFailed(BridgeError):
    """The command cannot do what was asked; the message says what to do."""


def own_rows(user_model: dict, used: tuple[str, str]) -> list[dict]:
    """One row per server of the user, the default one first (listed even when the hub has no model of it)."""
    owner, servers = user_model.get("name", ""), dict(user_model.get("servers") or {})
    servers.setdefault("", {"name": "", "stopped": True})
    return [{"owner": owner, "server": name, "state": lifecycle.state(m), "url": m.get("url") or "",
             "started": m.get("started") or "", "last_activity": m.get("last_activity") or "",
             "options": m.get("user_options") or {}, "shared_by": "", "used": (owner, name) == used}
            for name, m in sorted(servers.items())]


def shared_rows(shares: list[dict], used: tuple[str, str]) -> list[dict]:
    """The servers other users shared with this one; the hub tells only whether each is ready."""
    rows = []
    for share in shares:
        server = share.get("server") or {}
        owner, name = (server.get("user") or {}).get("name", ""), server.get("name", "")
        rows.append({"owner": owner, "server": name, "state": "ready" if server.get("ready") else "not ready",
                     "url": server.get("url") or "", "started": "", "last_activity": "", "options": {},
                     "shared_by": owner, "used": (owner, name) == used})
    return rows


def table(rows: list[dict]) -> str:
    """Plain columns for a terminal, each cell escaped (the hub's text); '*' marks the server the bridge is set
    to use."""
    def cells(row: dict) -> list[str]:
        name = row["server"] or "(default)"
        name = f"{name} (shared by {row['shared_by']})" if row["shared_by"] else name
        shown = [name, row["state"], row["url"], str(row["started"])[:19], str(row["last_activity"])[:19],
                 spawn_options.shown(row["options"])]
        return [("* " if row["used"] else "  ") + printable(shown[0])] + [printable(c) for c in shown[1:]]
    return columns([HEADINGS] + [cells(r) for r in rows])


async def user_name(h: hub.Hub) -> str:
    """The name of the user whose token this is."""
    me = await owner.whose_token(h)
    if me.kind != "user":
        raise CommandFailed(f"JUPYTERHUB_API_TOKEN belongs to the {me.kind} '{me.name}', not to a user.")
    return me.name


def not_shown(what: str, scope: str, refusal: hub.HubError | None) -> str:
    """One line for a part of the list the token may not see: the bridge's words, then the hub's own."""
    said = f" (the hub said: {refusal.message})" if refusal else ""
    return f"{what}: not shown, the token lacks {scope}; run {RUN} login for one that has it{said}"


async def own_part(h: hub.Hub, me: str, used: tuple[str, str]) -> tuple[list[dict], str]:
    try:
        model = await h.user_model(me)
    except hub.HubError as e:
        if e.status not in (403, 404):
            raise
        return [], not_shown("your own servers", f"read:servers!user={me}", e)
    if "servers" not in model:  # the user, without their servers: their states would be made up
        return [], not_shown("your own servers", f"read:servers!user={me}", None)
    return own_rows(model, used), ""


async def shared_part(h: hub.Hub, me: str, used: tuple[str, str]) -> tuple[list[dict], str]:
    version = await h.version()
    if not hub_versions.has_sharing(version):
        return [], f"servers shared with you: none, JupyterHub {version} has no sharing (5.0 and later have it)"
    try:
        rows = shared_rows(await h.shared(me), used)
    except hub.HubError as e:
        if e.status != 403:
            raise
        return [], not_shown("servers shared with you", f"read:users:shares!user={me}", e)
    return rows, (hub_versions.sharing_warning(version) or "") if rows else ""


async def listing(h: hub.Hub, s: Settings) -> tuple[list[dict], list[str]]:
    """The rows of the servers the token may see, and one line for each part it may not (two: it may see none)."""
    me = await user_name(h)
    used = (s.username or me, s.named_server)
    own, own_missing = await own_part(h, me, used)
    shared, shared_missing = await shared_part(h, me, used)
    return own + shared, [line for line in (own_missing, shared_missing) if line]


async def start(h: hub.Hub, s: Settings, server: str) -> str:
    """Start a server with JUPYTER_SERVER_OPTIONS, printing the hub's progress; the line to end with."""
    user = s.username or await user_name(h)
    what = f"server '{server}' of '{user}'" if server else f"the default server of '{user}'"
    if await lifecycle.server_state(h, user, server) == "ready":
        return f"{what} is already running"
    options = f" with options {spawn_options.shown(s.server_options)}" if s.server_options else ""
    show(f"starting {what}{options}...")
    try:
        async with asyncio.timeout(s.start_timeout):
            await lifecycle.start_and_wait(h, dataclasses.replace(s, username=user, named_server=server))
    except TimeoutError:
        raise CommandFailed(f"{what} did not start within {s.start_timeout:g} s (JUPYTER_START_TIMEOUT); the hub "
                            f"may still be starting it: `{RUN} servers` shows its state.") from None
    except lifecycle.StartFailed as e:
        raise CommandFailed(str(e)) from None
    return f"{what} is ready"


async def stop(h: hub.Hub, s: Settings, server: str) -> str:
    """Stop a server (never delete it) and follow it until the hub says it has stopped."""
    user = s.username or await user_name(h)
    what = f"server '{server}' of '{user}'" if server else f"the default server of '{user}'"
    if await lifecycle.server_state(h, user, server) == "stopped":
        return f"{what} is not running"
    t0 = time.monotonic()
    try:
        await h.stop(user, server)
    except hub.HubError as e:
        lacks = f": the token lacks the scope delete:servers!user={user}" if e.status == 403 else ""
        raise CommandFailed(f"The hub refused to stop {what}{lacks} (the hub said: {e.message}).",
                            f"Run {RUN} login." if lacks else "") from None
    show(f"stopping {what}...")
    while time.monotonic() - t0 < STOP_TIMEOUT:
        if (found := await lifecycle.server_state(h, user, server)) is None:
            return f"the hub is stopping {what} (this token may not follow its state)"
        if found == "stopped":
            return f"{what} has stopped ({time.monotonic() - t0:.1f} s)"
        await asyncio.sleep(POLL_INTERVAL)
    raise CommandFailed(f"{what} is still {found} after {STOP_TIMEOUT:g} s: `{RUN} servers` shows its state.")


USAGE = f"usage: {RUN} servers [--json] | start [SERVER] | stop [SERVER]  [--set option=value ...]"


def show(line: str, file=None) -> None:
    """The one printer of these commands' lines, which quote the hub: escaped and bounded (the table escapes its
    cells, the JSON escapes itself)."""
    print(printable(line, LINE), file=file or sys.stdout, flush=True)


async def run(command: str, args: list[str], s: Settings, as_json: bool) -> int:
    h = hub.Hub(s)
    if command == "servers":
        rows, missing = await listing(h, s)
        if len(missing) == 2:  # the token may see none of them
            show(f"error: {missing[0]}", sys.stderr)
            show(missing[1], sys.stderr)
            return 1
        print(json.dumps(rows, indent=2) if as_json else table(rows))
        for line in missing:  # on stderr: the JSON on stdout stays whole
            show(f"note: {line}", sys.stderr)
        return 0
    server = args[0].strip("/") if args else s.named_server
    show(await (start if command == "start" else stop)(h, s, server))
    return 0


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("servers", [])
    positional = [a for i, a in enumerate(rest) if not a.startswith("-") and (i == 0 or rest[i - 1] != "--set")]
    if command not in ("servers", "start", "stop") or len(positional) > (0 if command == "servers" else 1):
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="  %(message)s")  # the hub's progress
    try:
        s = settings.from_environment(os.environ, launch.set_overrides(rest), store.load(os.environ))
        if not s.hub_token:
            raise CommandFailed("JUPYTERHUB_API_TOKEN (or JUPYTERHUB_API_TOKEN_FILE) is not set and there is no "
                                "stored login: these commands ask the hub with your token.", f"Run {RUN} login.")
        return asyncio.run(run(command, positional, s, "--json" in rest))
    except (BridgeError, ValueError, hub.HubError) as e:
        show(f"error: {e}", sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
