"""`python -m addon.commands.launch dump|web [mitmproxy args]`: check the settings, print the banner, start mitmproxy.

The settings are checked here first so that a bad one stops the start with one line, not a traceback."""

import asyncio
import dataclasses
import ipaddress
import os
import socket
import ssl
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from addon.commands import startup
from addon.hub import api as hub
from addon.core import owner
from addon.hub import tokens
from addon.core import settings
from addon.core.invocation import RUN
from addon.core.printable import LINE
from addon.core.printable import printable
from addon import store

ADDON = Path(__file__).resolve().parents[1]  # the addon package: its main.py is the -s script
TOOLS = {"dump": "mitmdump", "web": "mitmweb"}


def set_overrides(args: list[str]) -> dict[str, str]:
    """Values of the bridge's own options among mitmproxy's `--set name=value` arguments."""
    found = {}
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "--set" and i + 1 < len(args) else arg.removeprefix("--set=")
        if (arg == "--set" or arg.startswith("--set=")) and "=" in value:
            name, _, v = value.partition("=")
            if name in settings.OPTION_NAMES:
                found[name] = v
    return found


def bind_address(host: str) -> str:
    """mitmproxy listens on an IP address only; 'localhost' is the IPv4 loopback."""
    if host == "localhost" or settings.is_ip(host):
        return "127.0.0.1" if host == "localhost" else host
    return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]


def mitmproxy_args(tool: str, s: settings.Settings) -> list[str]:
    """mitmproxy's arguments; its folder (confdir) is set apart, by startup.main: the bridge's own."""
    args = [
        "--mode", f"reverse:{s.dial_url}",
        "--listen-host", bind_address(s.listen_host),
        "--listen-port", str(s.listen_port),
        "--set", "connection_strategy=lazy",  # an unreachable hub gives a 502, not a dropped connection
        "--set", "keep_host_header=true",  # the bridge sets Host itself
        "--set", f"stream_large_bodies={s.stream_bodies}",  # in bytes: rewrites happen in the *headers hooks
        "-s", str(ADDON / "main.py"),
    ]
    if tool == "mitmweb":
        args += ["--set", "web_host=127.0.0.1", "--set", "web_open_browser=false"]
    return args


def own_confdir(environ) -> str:
    """The bridge's mitmproxy folder (its config.yaml, mitmproxy's CA files), one for every profile: in the bridge's
    folder, or a private temporary one where there is no config folder (no HOME)."""
    where = store.home_folder(environ)
    if where is None:
        return tempfile.mkdtemp(prefix="jupyterhub-bridge-mitmproxy-")
    (where / "mitmproxy").mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(where / "mitmproxy")


# mitmproxy's own listen options, which would bypass the bridge's rules (loopback unless asked, a local token off
# loopback, the banner's address, the reverse mode to the hub): option -> its spellings and the bridge's setting
LISTEN_OPTIONS = {
    "listen_host": (("--listen-host",), "", "JUPYTER_PROXY_IP_OR_NAME (--set jupyter_proxy_ip_or_name=...)"),
    "listen_port": (("--listen-port",), "p", "JUPYTER_PROXY_PORT (--set jupyter_proxy_port=...)"),
    "mode": (("--mode",), "m", "JUPYTER_SERVER_IP_OR_NAME and JUPYTER_SERVER_PORT (the bridge is a reverse proxy "
                               "to the hub)"),
}
SWITCHES = "hqvnk"  # mitmproxy's one-letter options without a value: `-qp 8000` is `-q -p 8000`


def listen_option(arg: str) -> str | None:
    """The mitmproxy listen option that `arg` gives, spelt as argparse takes it (`--listen-host`, an
    abbreviation such as `--listen-h`, `--mode=...`, `-p8000`, `-qp`), or None."""
    if arg.startswith("--"):
        flag = arg.partition("=")[0]
        return next((name for name, (flags, _, _) in LISTEN_OPTIONS.items()
                     if len(flag) > 2 and any(f.startswith(flag) for f in flags)), None)
    if arg.startswith("-") and len(arg) > 1:
        letter = arg[1:].lstrip(SWITCHES)[:1]
        return next((name for name, (_, short, _) in LISTEN_OPTIONS.items() if short and letter == short), None)
    return None


def trust_args(s: settings.Settings, confdir: str) -> list[str]:
    """mitmproxy verifies the hub with what the Hub client does: a private copy (0600, in the bridge's own folder)
    of the certificates the settings loaded and checked, never the CA file again (it may change during the run);
    else the system store the Hub client reads (mitmproxy alone would take certifi's)."""
    if s.trust.pem is None:
        paths = ssl.get_default_verify_paths()
        return ([*(["--set", f"ssl_verify_upstream_trusted_ca={paths.cafile}"] if paths.cafile else []),
                 *(["--set", f"ssl_verify_upstream_trusted_confdir={paths.capath}"] if paths.capath else [])])
    fd, temporary = tempfile.mkstemp(dir=confdir, prefix=".hub-trust-", suffix=".tmp")  # created 0600
    with os.fdopen(fd, "wb") as f:
        f.write(s.trust.pem)
    target = os.path.join(confdir, f"hub-trust-{s.listen_port}.pem")  # per bridge: two may trust differently
    os.replace(temporary, target)
    return ["--set", f"ssl_verify_upstream_trusted_ca={target}"]


def own_options(extra: list[str]) -> None:
    """Refuse what would undo the bridge's own mitmproxy options among the user's arguments: a confdir (it would
    bring its own config.yaml back), and mitmproxy's listen options and reverse mode, also as `--set`."""
    values = [b for a, b in zip(extra, extra[1:]) if a == "--set"] + [a[6:] for a in extra if a.startswith("--set=")]
    if any(value.startswith("confdir=") for value in values):
        raise ValueError("confdir: the bridge runs mitmproxy with a folder of its own (its config.yaml applies "
                         "after the command line); leave confdir out.")
    for given, name in [*((a, listen_option(a)) for a in extra if a != "--set" and not a.startswith("--set=")),
                        *((f"--set {v}", v.partition("=")[0]) for v in values)]:
        if name in LISTEN_OPTIONS:
            raise ValueError(f"{given.partition('=')[0]}: the bridge sets "
                             f"mitmproxy's {name} itself, from {LISTEN_OPTIONS[name][2]}; leave it out.")


LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp{,6}


def proc_address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in the host's byte order, in hex."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i:i + 4][::-1] if sys.byteorder == "little" else raw[i:i + 4] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(words)
    return ip.ipv4_mapped or ip if ip.version == 6 else ip


def listeners(table: str, port: int, bind: str) -> set[int]:
    """The uids of the sockets in a /proc/net/tcp{,6} table that listen on `port` where a client of the bridge
    (at `bind`, or at 'localhost') would reach them: `bind`, a loopback address, or every address."""
    uids = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[3] != LISTEN_STATE:
            continue
        address, _, hex_port = fields[1].partition(":")
        ip = proc_address(address)
        if int(hex_port, 16) == port and (ip.is_loopback or ip.is_unspecified or str(ip) == bind):
            uids.add(int(fields[7]))
    return uids


def squatter_warning(s: settings.Settings, bind: str, tables: Sequence[Path] = (Path("/proc/net/tcp"),
                                                                             Path("/proc/net/tcp6"))) -> list[str]:
    """A warning when another user's process listens on the bridge's port while it is down: the IDE would send it
    the bridge's local token (and `open`'s ticket goes there too). Linux only (where /proc/net/tcp is); elsewhere
    nothing is said."""
    uids = set()
    for table in tables:
        try:
            uids |= listeners(table.read_text(), s.listen_port, bind)
        except (OSError, ValueError):
            continue
    others = sorted(uids - {os.getuid()})
    if not others:
        return []
    who = ", ".join(account(uid) for uid in others)
    return [f"  warning: another user ({who}) has a process listening on port {s.listen_port}: an IDE that connects "
            f"there while the bridge is down sends it the bridge's token. Use another JUPYTER_PROXY_PORT; if your "
            f"IDE has reached it, replace the token ({RUN} login --new-local-token, or a new JUPYTER_PROXY_TOKEN)."]


def account(uid: int) -> str:
    import pwd  # POSIX only, as /proc is: not imported where the bridge may run without it (Windows)
    try:
        return f"{pwd.getpwuid(uid).pw_name}, uid {uid}"
    except KeyError:
        return f"uid {uid}"


def connect_url(s: settings.Settings) -> str:
    if not s.hub_token:
        return f"{s.connect_url}?token=<your JupyterHub API token>"
    return f"{s.connect_url}?token={s.local_secret}" if s.local_secret else s.connect_url


def token_owner(s: settings.Settings) -> tuple[settings.Settings, list[str]]:
    """Ask the hub whose token the bridge holds: the owner is the user when JUPYTER_USERNAME is empty, and a
    different one is worth a warning. Raises ValueError when no user name can be found."""
    if not s.hub_token:
        return s, []
    try:
        me = asyncio.run(owner.whose_token(hub.Hub(s)))
    except hub.PinBroken:
        raise  # a hub that is not the one the login pinned: no start
    except hub.HubError as e:
        if not s.username:
            raise ValueError(f"JUPYTER_USERNAME is not set and the hub did not say whose JUPYTERHUB_API_TOKEN is "
                             f"({e.message}): set JUPYTER_USERNAME.") from None
        return s, [f"  warning: could not ask the hub whose the token is: {e.message}"]
    name, kind = me.name, me.kind
    if not s.username:
        if kind != "user":
            raise ValueError(f"JUPYTER_USERNAME is not set and JUPYTERHUB_API_TOKEN belongs to the {kind} "
                             f"'{name}', not to a user: set JUPYTER_USERNAME.")
        return dataclasses.replace(s, username=name), [f"  user '{name}' is the owner of the hub token"]
    if why_not := tokens.cannot_send(me, s.username):
        raise ValueError(f"{why_not}: run {RUN} login (its token may make the access token), or give "
                         "JUPYTERHUB_API_TOKEN a token with the scope tokens.")
    if name != s.username and me.may_reach(s.username, s.named_server):
        start = "starts it" if me.may_start(s.username, s.named_server) else "cannot start it"
        return s, [f"  the server of '{s.username}' is shared with you ('{name}'): the bridge uses your token; "
                   f"when the server is stopped it {start}; the server gets only an access token to itself"]
    if name != s.username:
        return s, [f"  warning: the hub token belongs to the {kind} '{name}', not to JUPYTER_USERNAME "
                   f"'{s.username}': the hub refuses it unless '{name}' may use that user's server."]
    return s, []


def banner(s: settings.Settings, notes: Sequence[str] = ()) -> str:
    """What the bridge prints at start, with the notes under it; each line escaped: the user's name may be the
    hub's word (the token's owner), and names are the hub's too."""
    server = f"server '{s.named_server}' of user '{s.username}'" if s.named_server else f"user '{s.username}'"
    token = (f"for clients with the bridge's token, sends your server an access token that the hub token "
             f"(…{s.hub_token[-4:]}) has the hub make" if s.hub_token
             else "clients bring their own hub token (set JUPYTERHUB_API_TOKEN to keep it out of the IDE)")
    lines = [
        f"JupyterHub bridge: listening on {s.connect_url}",
        f"  forwarding to {s.dial_url} (TLS name '{s.tls_name}'), {server}: {s.prefix}",
        f"  trusting {s.trust.text}; {token}",
        f"  paste into PyCharm: {connect_url(s)}",
        *([f"  a browser: {RUN} open (a single-use URL; the one above would stay in its history)"]
          if s.hub_token and s.local_secret else []),
        "  a stopped server: " + (f"started through the Hub API (waiting up to {s.start_timeout:g} s)"
                                  if s.hub_token and s.autostart else
                                  "503 (JUPYTER_AUTOSTART is off)" if s.hub_token else "503 (no hub token to start it)"),
    ]
    if s.hub_token and not s.local_secret:
        lines.append("  warning: JUPYTER_PROXY_TOKEN is empty: any local program can use your server.")
    if not settings.is_loopback(s.listen_host):
        lines.append(f"  warning: listening on {s.listen_host}, not loopback: others on the network can reach it.")
    return "\n".join(printable(line, LINE) for line in [*lines, *notes])


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TOOLS:
        print(f"usage: python -m addon.commands.launch {{{'|'.join(TOOLS)}}} [mitmproxy args]", file=sys.stderr)
        return 2
    tool, extra = TOOLS[argv[0]], argv[1:]
    try:
        stored = store.load(os.environ)
        s = settings.from_environment(os.environ, set_overrides(extra), stored)
        own_options(extra)
        confdir = own_confdir(os.environ)
        args = mitmproxy_args(tool, s) + trust_args(s, confdir)
        s, notes = token_owner(s)
        if not stored.holds(s.hub_token) and (why := stored.refusal(s.server_host, s.server_port, s.tls_name,
                                                                    s.ca_file, s.base_url, s.trust.sha256)):
            notes.append(f"  warning: the hub token {RUN} login stored is not used: {why}")
        notes += store.origin_lines(stored, os.environ, set_overrides(extra), settings.ENV_OF, s.hub_token,
                                    s.local_secret)
        notes += squatter_warning(s, bind_address(s.listen_host))
    except socket.gaierror as e:
        print(f"error: JUPYTER_PROXY_IP_OR_NAME: cannot resolve it ({e.strerror}).", file=sys.stderr)
        return 1
    except (ValueError, hub.PinBroken) as e:
        print(printable(f"error: {e}", LINE), file=sys.stderr)  # the hub's words (a user name, a message) escaped
        return 1
    print(banner(s, notes), flush=True)
    # The bridge's addons resolve the settings again: give them the same local secret, user and stored login settings.
    os.environ.update({**settings.with_stored(os.environ, stored), "JUPYTER_PROXY_TOKEN": s.local_secret,
                       "JUPYTER_USERNAME": s.username})
    # mitmdump/mitmweb through addon/commands/startup.py, which listens only once mitmproxy has started (issues 9, 19),
    # in this interpreter: a second one would import again what mitmproxy shares with this module (issue 19's start-up
    # time). The user's arguments come last (a filter expression takes the rest of the line); own_options refused a
    # confdir among them.
    startup.main([tool, *args, *extra], confdir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
