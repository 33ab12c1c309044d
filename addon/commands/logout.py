"""`./run.sh logout`: give the stored hub token back to the hub and delete what `./run.sh login` kept; when the
hub cannot be reached, delete it anyway (the token then expires by itself)."""

import asyncio
import os

from addon.core import login_record
from addon.hub import api as hub
from addon.hub import tokens
from addon.core import settings
from addon.core.printable import LINE
from addon.core.printable import printable
from addon import store
from addon.core.settings import Settings

NOT_ASKED = {  # login and logout take no token from the environment
    "jupyterhub_api_token": "", "jupyterhub_api_token_file": "", "jupyter_proxy_token": ""}


def stored_settings(login: login_record.Login) -> Settings:
    """The settings of the stored login, whatever the environment says now: its token belongs to that hub."""
    values = {o.name: o.default for o in settings.OPTIONS if not o.secret} | login.values() | NOT_ASKED
    token = login.hub_token.token if login.hub_token else ""
    return settings.resolve(values | {"jupyterhub_api_token": token}, os.environ, login)  # and its trust


def revoke(login: login_record.Login, with_access: bool = False) -> str:
    """Give the stored hub token back to the hub, and (with_access, for logout) the access tokens bridges here made
    with it; what happened, in words. A new login leaves those: a running bridge goes on with the new login."""
    token = login.hub_token
    if not token or not token.token or not token.id:
        return "no hub token to revoke"
    try:
        h = hub.Hub(stored_settings(login))
        access = access_tokens(h, token.user, token.id) if with_access else ""
        answer = asyncio.run(h.revoke_token(token.user, token.id))
    except (ValueError, hub.HubError) as e:
        return f"could not revoke the hub token ({getattr(e, 'message', e)}): it expires by itself " \
               f"({token.expiry_text()})"
    if answer.status in (204, 403, 404):  # 403/404: expired or revoked already
        return ("revoked the hub token" if answer.status == 204 else "the hub token was no longer valid") + access
    return f"could not revoke the hub token ({hub.hub_message(answer.status, answer.body)}){access}"


def access_tokens(h: hub.Hub, user: str, token_id: str) -> str:
    """Revoke the access tokens that bridges on this machine made with the login's token (a running bridge's too:
    it stops serving once the login is gone); what happened, as the rest of logout's sentence."""
    revoked, trouble = asyncio.run(tokens.revoke_leftovers(h, user, token_id))
    said = f" and {revoked} access token(s) of bridges on this machine" if revoked else ""
    return f"{said} (could not revoke their access tokens: {trouble})" if trouble else said


def logout(environ=os.environ) -> int:
    try:
        login = store.load(environ, private=False)  # one that others could read is the first to revoke
    except ValueError as e:
        login = login_record.Login()
        print(printable(f"warning: {e}", LINE))
    said = revoke(login, with_access=True) if login != login_record.Login() else "there was no stored login"
    removed = store.delete(environ)
    print(printable(f"Logged out: {said}; {'removed ' + str(store.path(environ)) if removed else 'no file to remove'}.",
                    LINE))  # `said` quotes the hub
    return 0
