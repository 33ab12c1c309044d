"""`./run.sh admin`: for the hub's admin, the OAuth client that `login --browser` signs users in through.

oauth-config prints the jupyterhub_config.py lines (a service that is only an OAuth client: no roles, so its
secret, which every user holds, can do nothing by itself) and how to hand the secret to users; register-oauth
registers the same client at run time through the Hub API (JupyterHub 5.0+, a token with admin:services in
JUPYTERHUB_API_TOKEN) and prints its secret once. Either way users need the scope access:services!service=<name>
to authorize it, which only the hub's configuration can give (JupyterHub 6: extra_user_scopes, 5: load_roles)."""

import argparse
import asyncio
import json
import os
import secrets
import sys
from urllib.parse import quote

from addon.commands import launch
from addon.commands.oauth import client_scopes
from addon.core import hub_versions
from addon.core import settings
from addon.core.errors import BridgeError
from addon.core.invocation import RUN
from addon.core.oauth_flow import Client
from addon.core.options import OPTIONS
from addon.core.printable import printable
from addon.hub import api as hub
from addon import store

NAME = "jupyterhub-bridge"
PORT = int(next(o.default for o in OPTIONS if o.name == "jupyter_oauth_port"))


def client_of(name: str, port: int) -> Client:
    return Client(f"service-{name}", "", port)  # the hub wants a service's client id to start with service-


def service(name: str, port: int, hub_version: str = "") -> dict:
    """The service as the hub takes it (config or POST /hub/api/services/<name>), without its secret; its scopes
    those the hub's version defines (a 4.1 hub refuses to start with one it does not)."""
    c = client_of(name, port)
    return {"name": name, "oauth_client_id": c.id, "oauth_redirect_uri": c.redirect_uri,
            "oauth_client_allowed_scopes": client_scopes(hub_version)}


def user_scope(name: str) -> str:
    return f"access:services!service={name}"


def user_scope_lines(name: str, hub_version: str = "") -> str:
    """How users get the scope to authorize the client: extra_user_scopes (6.0+), else the default user role; both
    when the hub's version is not known."""
    role = f'c.JupyterHub.load_roles = [{{"name": "user", "scopes": ["self", "{user_scope(name)}"]}}]'
    major = hub_versions.major(hub_version)
    if major is not None and major < 6:
        return f"# Users may authorize the client (JupyterHub {hub_version} has no extra_user_scopes: the default " \
               f"user role, with the scope added):\n{role}\n"
    return f"""# Users may authorize the client (JupyterHub 6.x):
c.JupyterHub.extra_user_scopes = {{"{user_scope(name)}"}}
""" + ("" if major else f"""# JupyterHub 5.x and 4.x have no extra_user_scopes: the default user role, with the scope added, instead:
# {role}
""")


# Required: without it the hub exchanges a code asked for without PKCE whatever verifier comes with it (field note
# 50), so a local user who reads a sign-in's state (on the browser's command line) can deliver their own code.
PKCE_LINES = """# Required (JupyterHub 6.0+): refuse authorizations without PKCE (the bridge always sends it). Without it,
# another local user can complete a user's `login --browser` with their own account.
c.JupyterHub.oauth_require_pkce = True
"""


def pkce_lines(hub_version: str) -> str:
    major = hub_versions.major(hub_version)
    if major is not None and major < 6:
        return (f"# JupyterHub {hub_version} cannot require PKCE (6.0 can): another local user who reads a sign-in's "
                "state could complete a user's\n# `login --browser` with their own account; `login` then shows whom "
                "the hub signed in and asks.\n")
    return PKCE_LINES


SCOPES_4 = "# JupyterHub 4.x: leave read:users:shares!user out of the client's scopes (4.x has no sharing).\n"


def config_snippet(name: str, port: int, hub_version: str = "") -> str:
    """The jupyterhub_config.py lines for this hub's version ('': for any, the differences commented)."""
    secret = ',\n    "api_token": os.environ["BRIDGE_OAUTH_SECRET"],\n}'
    spec = json.dumps(service(name, port, hub_version), indent=4).replace("\n}", secret)
    which = f" (for JupyterHub {hub_version}, the version of your hub)" if hub_version else ""
    return f"""# jupyterhub_config.py: the OAuth client of jupyterhub-bridge (`jupyterhub-bridge login --browser`){which}.
# Its secret is the service's api_token; the service has no roles, so the secret alone can do nothing.
# Make one with `openssl rand -hex 32` and give it to the hub as BRIDGE_OAUTH_SECRET.
import os
c.JupyterHub.services.append({spec})
{user_scope_lines(name, hub_version)}{pkce_lines(hub_version)}{"" if hub_version else SCOPES_4}"""


def known_version(args) -> str:
    """The version of the hub the settings name (--set, the environment, the stored login), or '' when they name
    none or it does not say."""
    try:
        s = settings.from_environment(os.environ, launch.set_overrides(sum((["--set", v] for v in args.set), [])),
                                      store.load(os.environ))
        return asyncio.run(hub.Hub(s).version())
    except (BridgeError, ValueError, hub.HubError):
        return ""


def hand_out(name: str, port: int) -> str:
    c = client_of(name, port)
    port_line = "" if port == PORT else f"JUPYTER_OAUTH_PORT={port} and "
    return (f"Hand the secret to your users (it is the same for all: PKCE and the fixed redirect URI "
            f"{c.redirect_uri} protect each sign-in): each puts it in a file only they can read (chmod 600) and "
            f"sets {port_line}JUPYTER_OAUTH_CLIENT_SECRET_FILE=<that file>"
            f"{'' if name == NAME else f' and JUPYTER_OAUTH_CLIENT_ID={c.id}'}, then runs: "
            "jupyterhub-bridge login --browser https://<your hub>/")


async def register(h: hub.Hub, name: str, port: int, secret: str) -> str:
    """POST /hub/api/services/<name>; what went wrong, or '' when the hub registered it."""
    body = json.dumps({**service(name, port), "api_token": secret}).encode()
    answer = await h.api("POST", f"/services/{quote(name, safe='')}", body)
    why = {404: "this hub has no service API (JupyterHub 5.0 or newer has it): use oauth-config",
           405: "this hub has no service API (JupyterHub 5.0 or newer has it): use oauth-config",
           403: "the token in JUPYTERHUB_API_TOKEN lacks the scope admin:services",
           409: f"the hub has a service '{name}' already"}
    if answer.status == 201:
        return ""
    return why.get(answer.status, "") or printable(hub.hub_message(answer.status, answer.body))


def register_oauth(args) -> int:
    s = settings.from_environment(os.environ, launch.set_overrides(sum((["--set", v] for v in args.set), [])),
                                  store.load(os.environ))
    if not s.hub_token:
        raise BridgeError("register-oauth needs a token with admin:services:", "set JUPYTERHUB_API_TOKEN.")
    secret = secrets.token_hex(32)
    if why := asyncio.run(register(hub.Hub(s), args.name, args.port, secret)):
        raise BridgeError(f"the hub did not register the OAuth client: {why}.")
    print(f"Registered the OAuth client {client_of(args.name, args.port).id} (service '{args.name}'). Its secret, "
          f"shown this once:\n{secret}\n")
    print(f"Users still need the scope {user_scope(args.name)}, and the hub must require PKCE, which only the "
          f"hub's configuration does:\n{user_scope_lines(args.name)}{PKCE_LINES}\n{hand_out(args.name, args.port)}")
    return 0


def admin_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"{RUN} admin", description=__doc__.split("\n\n")[1])
    words = parser.add_subparsers(dest="word", required=True)
    for word, text in (("oauth-config", "print the jupyterhub_config.py lines of the OAuth client"),
                       ("register-oauth", "register the OAuth client through the Hub API and print its secret")):
        sub = words.add_parser(word, help=text)
        sub.add_argument("--port", type=int, default=PORT, help=f"the users' JUPYTER_OAUTH_PORT (default {PORT})")
        sub.add_argument("--name", default=NAME, help=f"the service's name (default {NAME})")
        sub.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE",
                         help=f"a setting: the hub's address and CA ({RUN} help)")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = admin_arguments(argv)
    try:
        if args.word == "register-oauth":
            return register_oauth(args)
        print(f"{config_snippet(args.name, args.port, known_version(args))}\n{hand_out(args.name, args.port)}")
        return 0
    except (BridgeError, ValueError, hub.HubError) as e:
        print(printable(f"error: {e}", 2000), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
