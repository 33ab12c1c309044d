"""Login profiles: several hubs or accounts side by side, each with its own stored login, trust, local token and
port. Which profile a command uses: `--profile NAME` > JUPYTERHUB_BRIDGE_PROFILE > the saved default (`profile use`)
> `default`, as gh, gcloud and kubectl choose theirs. The `default` profile is the login file of before profiles,
so a user with one login changes nothing. Pure rules; the files are addon/store.py's."""

import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping

from addon.core.errors import SettingError
from addon.core.invocation import RUN

DEFAULT = "default"
ENV = "JUPYTERHUB_BRIDGE_PROFILE"
FLAG = "--profile"
FIRST_PORT = 8000
PORTS_TRIED = 1000
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # also a folder name: no '/', no leading '.'


def valid(name: str, source: str) -> str:
    """The profile name, or SettingError saying what a name may be."""
    if not NAME.fullmatch(name):
        raise SettingError(f"{source} {name!r} is not a profile name: use letters, digits, '.', '_' and '-' "
                           "(at most 64, starting with a letter or digit), e.g. 'work' or 'course-2026'.")
    return name


def take_flag(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--profile NAME` (or `--profile=NAME`) taken out of a command line, wherever it stands before `--`; the
    name (None: not given) and the rest, in order. Raises SettingError for a flag without a name."""
    name, rest, args = None, [], iter(argv)
    for arg in args:
        if arg == "--":
            rest += [arg, *args]
            break
        if arg == FLAG:
            name = next(args, None)
            if name is None or name.startswith("-"):
                raise SettingError(f"{FLAG} needs a profile name: {FLAG} NAME ({RUN} profile list shows them).")
        elif arg.startswith(FLAG + "="):
            name = arg.partition("=")[2]
        else:
            rest.append(arg)
    return (None if name is None else valid(name, FLAG)), rest


def chosen(environ: Mapping[str, str], saved: str | None) -> str:
    """The profile in use: the environment (where --profile puts it) over the saved default over `default`."""
    if name := environ.get(ENV, "").strip():
        return valid(name, ENV)
    return valid(saved, "the saved default profile") if saved else DEFAULT


def next_port(taken: Iterable[int], free: Callable[[int], bool], first: int = FIRST_PORT) -> int:
    """The first port from `first` on that no other profile keeps and that nothing listens on now."""
    kept = set(taken)
    for port in range(first, first + PORTS_TRIED):
        if port not in kept and free(port):
            return port
    raise SettingError(f"no free port among {first}-{first + PORTS_TRIED - 1} for the bridge of this profile: "
                       "set JUPYTER_PROXY_PORT.")
