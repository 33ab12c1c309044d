"""`./run.sh profile list | use NAME | remove NAME`: the login profiles, one for each hub or account you use side by
side (addon/core/profiles.py says which one a command uses). `login --profile NAME` makes one."""

import os
import sys

from addon import store
from addon.commands import logout
from addon.core import profiles
from addon.core.errors import SettingError
from addon.core.invocation import RUN
from addon.core.printable import LINE
from addon.core.printable import columns
from addon.core.printable import printable

USAGE = (f"usage: {RUN} profile list                the profiles: hub, user, server, bridge port, token expiry\n"
         f"       {RUN} profile use NAME            make NAME the default profile (--profile and "
         f"{profiles.ENV} still win)\n"
         f"       {RUN} profile remove NAME         log out of NAME (its hub token revoked) and remove it\n"
         f"A new profile: {RUN} login --profile NAME https://<your hub>/")
COLUMNS = ("", "profile", "hub", "user", "server", "port", "hub token")


def rows(environ) -> list[tuple[str, ...]]:
    """One row a profile; the one in use marked '*'."""
    current, found = store.profile(environ), []
    for name in store.profile_names(environ):
        kept = store.load(environ, name=name)
        values = kept.values()
        hub = (f"{values.get('jupyter_server_ip_or_name', '?')}:{values.get('jupyter_server_port', '?')}"
               f"{values.get('jupyterhub_base_url', '/')}")
        port = values.get("jupyter_proxy_port") or environ.get("JUPYTER_PROXY_PORT") or str(profiles.FIRST_PORT)
        found.append(("*" if name == current else "", name, hub, values.get("jupyter_username", "?"),
                      values.get("jupyter_named_server") or "(default)", port,
                      kept.hub_token.expiry_text() if kept.hub_token else "none"))
    return found


def known(name: str, environ) -> str:
    name = profiles.valid(name, "the profile")
    if name not in store.profile_names(environ):
        raise SettingError(f"there is no profile {name!r} ({RUN} profile list shows them): make it with "
                           f"{RUN} login --profile {name} https://<your hub>/")
    return name


def remove(name: str, environ) -> int:
    """As logout, for that profile; then its folder, when nothing else is left in it, and the saved default."""
    status = logout.logout({**environ, profiles.ENV: name})
    if name != profiles.DEFAULT:
        where = store.folder(environ, name)
        (where / store.LOCK_NAME).unlink(missing_ok=True)
        try:
            where.rmdir()
        except OSError:  # something the user put there: left alone
            pass
    if store.saved_profile(environ) == name:
        store.save_profile(profiles.DEFAULT, environ)
        print(f"The default profile is {profiles.DEFAULT} again.")
    return status


def main(argv: list[str], environ=os.environ) -> int:
    command, names = (argv[0], argv[1:]) if argv else ("list", [])
    if (command, len(names)) not in (("list", 0), ("use", 1), ("remove", 1)):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        if command == "list":
            found = rows(environ)
            # names and addresses came from the hub or the user: escaped
            shown = [COLUMNS, *[tuple(printable(cell) for cell in row) for row in found]]
            print(columns(shown) if found else f"No profile yet: {RUN} login https://<your hub>/ makes the default one.")
            return 0
        name = known(names[0], environ)
        if command == "remove":
            return remove(name, environ)
        store.save_profile(name, environ)
        print(f"The default profile is now {name}; --profile and {profiles.ENV} still choose another one.")
        return 0
    except SettingError as e:
        print(printable(f"error: {e}", LINE), file=sys.stderr)
        return 1
