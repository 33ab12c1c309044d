"""``python -m devhub``: start a local JupyterHub with TLS, users, tokens and running servers."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from devhub.hub import DevHub, Failed, Stopped, say


def names(text: str) -> list[str]:
    return [u.strip() for u in text.split(",") if u.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m devhub", description=__doc__)
    p.add_argument("--workdir", required=True, type=Path, help="state, certificates, logs (created)")
    p.add_argument("--port", type=int, default=0, help="public TLS port on 127.0.0.1 (0: a free one)")
    p.add_argument("--ready-file", type=Path, help="JSON written (atomically) once everything is ready")
    p.add_argument("--ready-fd", type=int, metavar="FD",
                   help="an inherited pipe: one line is written to it once the ready file is, then it is closed "
                        "(end-of-file without a line: devhub exited); devhub/launcher.py waits on it")
    p.add_argument("--users", default="alice", help="comma-separated user names (default: alice)")
    p.add_argument("--authenticator", choices=["password", "null"], default="password",
                   help="password: one shared password (in the ready file); null: an SSO-like sign-in that "
                        "takes no password (a 'Sign in with devhub SSO' button)")
    p.add_argument("--sharing", action="store_true", help="users may share their servers (the shares!user scope)")
    p.add_argument("--iopub-data-rate-limit", type=float, default=None, metavar="BYTES_PER_S",
                   help="ZMQChannelsWebsocketConnection.iopub_data_rate_limit of the servers")
    p.add_argument("--base-url", default="/", help="JupyterHub base_url (default /)")
    p.add_argument("--no-start", action="store_true", help="do not start the users' servers")
    p.add_argument("--send-ca", action="store_true",
                   help="the public side presents its CA after its own certificate (as many hubs send an "
                        "intermediate); without it, only its own certificate")
    p.add_argument("--spawn-fail", default="", metavar="USERS", help="comma-separated users whose spawns fail")
    p.add_argument("--spawn-reject", default="", metavar="USERS",
                   help="comma-separated users whose spawns the hub rejects (no capacity: 400, a SpawnException on 6.x)")
    p.add_argument("--spawn-delay", default="", metavar="USER=SECONDS,...",
                   help="users whose spawns wait this many seconds first")
    add_token_options(p)
    return p


def add_token_options(p: argparse.ArgumentParser) -> None:
    """What the token tests need: what a server receives, and the hub as an OAuth provider (issues 17, 21)."""
    p.add_argument("--record-auth", action="store_true",
                   help="each single-user server appends the Authorization header of every request it receives "
                        "(a JSON line: method, path, authorization) to <workdir>/auth-records/<user>.jsonl "
                        "before handling it; the ready file names each user's file (auth_record)")
    p.add_argument("--oauth-client", metavar="NAME",
                   help="register an OAuth client: the service NAME (client id service-NAME, secret its API token, "
                        "no roles; redirect URI http://127.0.0.1:<--oauth-port>/oauth_callback) that users may "
                        "authorize; the ready file has it under oauth_client")
    p.add_argument("--oauth-port", type=int, default=8765, help="the OAuth client's redirect port (default 8765)")
    p.add_argument("--oauth-require-pkce", action="store_true",
                   help="the hub refuses OAuth authorizations without PKCE (c.JupyterHub.oauth_require_pkce)")


def parse_args(argv=None) -> argparse.Namespace:
    p = parser()
    a = p.parse_args(argv)
    a.users, a.spawn_fail, a.spawn_reject = names(a.users), names(a.spawn_fail), names(a.spawn_reject)
    try:
        a.spawn_delay = {u.strip(): float(sec) for u, _, sec in
                         (item.partition("=") for item in a.spawn_delay.split(",") if item.strip())}
    except ValueError:
        p.error("--spawn-delay: USER=SECONDS,...")
    if not a.users:
        p.error("--users: at least one user name")
    base = "/" + a.base_url.strip("/") + "/"
    a.base_url = "/" if base == "//" else base
    return a


def main(argv=None) -> int:
    hub = DevHub(parse_args(argv))

    def on_signal(signum, frame):
        hub.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        try:
            hub.start()
        except Stopped:
            return 0
        except Failed as e:
            say(f"devhub: {e}")
            return 1
        return hub.run()
    finally:
        if hub.proc is not None:
            hub.stop()
            say("devhub: stopped")
