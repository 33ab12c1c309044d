"""`./run.sh login --browser`: sign in on the hub's own login page (single sign-on included) through the hub's OAuth
client for the bridge, then swap the token that gives for the bridge's own expiring, least-privilege one.

The flow (authorization code with PKCE S256 and a random state; field note 44): print the authorize URL (and open
it where a desktop browser is), listen on 127.0.0.1:<JUPYTER_OAUTH_PORT> only while waiting for the browser to come
back to /oauth_callback, check the state, exchange the code and the verifier at <hub>/hub/api/oauth2/token with the
client's id and secret. The OAuth token then has the hub make the bridge's token (as a password login does) and is
revoked: what stays is what `login` stores for a password. A pasted token goes the same way when it may mint."""

import asyncio
import dataclasses
import os
import secrets
import webbrowser

from addon.core import hub_versions
from addon.core import login_record
from addon.commands import launch
from addon.commands import open as open_command
from addon.core import oauth_flow as flow
from addon.core import option_values
from addon.core.errors import BridgeError
from addon.core.invocation import RUN
from addon.core.oauth_flow import CALLBACK_PATH
from addon.core.oauth_flow import Callback
from addon.core.oauth_flow import Client
from addon.core.options import OPTIONS
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.core.settings import Settings
from addon.hub import api as hub
from addon.core import owner
from addon.hub import tokens

WAIT = 300.0  # seconds the browser has to come back
HEAD_LIMIT = 16384  # a browser's request head to the callback is well under this
HEAD_TIMEOUT = 10.0
ADMIN = f"{RUN} admin oauth-config"
def client_scopes(hub_version: str = "") -> list[str]:
    """Those of the bridge's token, on one's own account, that this hub's version defines: a 4.1 hub refuses an
    authorization naming a scope it does not define (error=invalid_scope)."""
    return [f"{scope}!user" for scope, _ in tokens.SCOPES if hub_versions.defines(hub_version, scope)]


SCOPES = client_scopes()  # on a hub that does not say its version, and in `admin oauth-config`


def hub_url(s: Settings) -> str:
    """The hub's public URL as the user gave it to login, e.g. https://hub.example.org/jupyter/."""
    return f"{s.dial_url}{s.base_url.lstrip('/')}"


def no_client_line(why: str, client: Client) -> str:
    return printable(f"The hub has no OAuth client for the bridge ({why}): its admin must add '{client.id}' with "
                     f"the redirect URI {client.redirect_uri} ({ADMIN} prints how). Using the hub's token page "
                     "instead.", LINE)


def read_secret(environ, values: dict[str, str]) -> str:
    """The client's secret: JUPYTER_OAUTH_CLIENT_SECRET, else the file JUPYTER_OAUTH_CLIENT_SECRET_FILE names,
    refused when others can read it; empty when neither is set."""
    if secret := environ.get("JUPYTER_OAUTH_CLIENT_SECRET", "").strip():
        return secret
    if not (raw := values["jupyter_oauth_client_secret_file"].strip()):
        return ""
    return option_values.private_file(raw, "JUPYTER_OAUTH_CLIENT_SECRET_FILE")


def client(sets: list[str], environ) -> Client:
    """The OAuth client login --browser uses: --set over the environment over the defaults."""
    given = launch.set_overrides(sum((["--set", v] for v in sets), []))
    values = {o.name: given.get(o.name, environ.get(o.env, o.default)) for o in OPTIONS if not o.secret}
    return Client(values["jupyter_oauth_client_id"].strip(), read_secret(environ, values),
                  option_values.port(values, "jupyter_oauth_port"))


def oauth_error(answer: hub.Answer) -> str:
    """The hub's refusal at the token endpoint: the OAuth error (and description), else its message; escaped."""
    try:
        found = answer.json()
    except Exception:  # not JSON: the hub's message says what it can
        found = {}
    words = " ".join(filter(None, (found.get("error"), found.get("error_description")))) if found else ""
    return printable(words or hub.hub_message(answer.status, answer.body))


def code_form(c: Client, code: str, verifier: str) -> dict[str, str]:
    return {"grant_type": "authorization_code", "code": code, "redirect_uri": c.redirect_uri, "client_id": c.id,
            "client_secret": c.secret, "code_verifier": verifier}


async def missing_client(h: hub.Hub, c: Client) -> str:
    """Why the hub cannot sign the bridge in, asked before the browser is: a code that is none is refused as
    invalid_grant only once the client and its secret were accepted. Empty when it can."""
    answer = await h.oauth_token(code_form(c, f"none-{secrets.token_urlsafe(8)}", flow.pkce()[0]))
    error = oauth_error(answer)
    if answer.status == 400 and "invalid_client" not in error:
        return ""
    return error if "invalid_client" in error else f"{answer.status} {error}"


async def answer_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, state: str,
                     done: asyncio.Future) -> None:
    """One request to the listener: its page, and the sign-in's outcome when it is this sign-in's answer."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        found = flow.callback(target, state) if method == "GET" else Callback("elsewhere")
        if done.done() and found.kind != "elsewhere":
            found = Callback("stranger", "a sign-in came back already")
        writer.write(flow.page(found.kind))
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError, ValueError):
        return
    finally:
        writer.close()
    if found.kind == "stranger":
        print(printable(f"  refused a request to {CALLBACK_PATH}: {found.value}.", LINE), flush=True)
    elif found.kind != "elsewhere" and not done.done():
        done.set_result(found)


async def wait_for_browser(c: Client, state: str, url: str, open_it: bool) -> Callback | None:
    """Listen on 127.0.0.1 while the user signs in; what came back, or None after WAIT seconds."""
    done = asyncio.get_running_loop().create_future()
    try:
        server = await asyncio.start_server(lambda r, w: answer_one(r, w, state, done), "127.0.0.1", c.port,
                                            limit=HEAD_LIMIT)
    except OSError as e:
        raise BridgeError(f"cannot listen on 127.0.0.1:{c.port} for the sign-in ({e.strerror}):",
                          "end what uses that port (the hub's client expects that one), then run login again.")
    async with server:
        print(f"Open this URL to sign in: {url}", flush=True)
        if open_it and open_command.has_desktop(os.environ):
            webbrowser.open(url)
        print(f"Waiting for the browser to come back (up to {WAIT / 60:g} minutes; Ctrl-C ends it).", flush=True)
        try:
            return await asyncio.wait_for(done, WAIT)
        except TimeoutError:
            return None


NO_ANSWER = (f"No sign-in came back within {WAIT / 60:g} minutes. If the hub's page said 'You do not have "
             "permission to access …' (users lack access:services!service=<the client>) or named the redirect URI, "
             f"the hub's admin must fix the client ({ADMIN} prints how). Using the hub's token page instead.")


async def browser_sign_in(h: hub.Hub, c: Client, open_it: bool, interactive: bool) -> str | None:
    """The OAuth token of a sign-in in the browser, or None (after one line saying why) to use the token page."""
    if why := await missing_client(h, c):
        print(no_client_line(why, c))
        return None
    if not (h.settings.username or interactive):  # login compares whom the hub signed in with the user's name
        raise BridgeError("login --browser without a terminal needs your user name, to check whom the hub signed "
                          "in:", "add --set jupyter_username=<your user name on the hub>.")
    state, (verifier, challenge) = secrets.token_urlsafe(24), flow.pkce()
    scopes = client_scopes(await h.version())
    came = await wait_for_browser(c, state, flow.authorize_url(hub_url(h.settings), c, state, challenge, scopes), open_it)
    if came is None:
        print(NO_ANSWER)
        return None
    if came.kind == "refused":
        raise BridgeError(f"the hub did not sign you in: {printable(came.value)}.")
    answer = await h.oauth_token(code_form(c, came.value, verifier))
    token = answer.json().get("access_token") if answer.status == 200 else None
    if token:
        return str(token)
    if "invalid_client" in (error := oauth_error(answer)) or "redirect" in error:
        print(no_client_line(error, c))
        return None
    raise BridgeError(f"the hub did not give a token for the sign-in: {error}.", "Run login --browser again.")


def browser_token(s: Settings, sets: list[str], open_it: bool, interactive: bool, environ=os.environ) -> str | None:
    """login --browser: the OAuth token of a sign-in on the hub's page; None (said why) to use the token page.
    Without a terminal to confirm whom the hub signed in, the user's name must be known (s.username)."""
    c = client(sets, environ)
    if not c.secret:
        print(f"No OAuth client secret: set JUPYTER_OAUTH_CLIENT_SECRET_FILE to the file the hub's admin handed "
              f"out ({ADMIN} tells them how). Using the hub's token page instead.")
        return None
    return asyncio.run(browser_sign_in(hub.Hub(dataclasses.replace(s, hub_token=None)), c, open_it, interactive))


async def swap(s: Settings, given: login_record.HubToken) -> tuple[login_record.HubToken | None, str]:
    """The bridge's own token in place of `given` (revoked then), or (None, why it is kept)."""
    h = hub.Hub(dataclasses.replace(s, hub_token=given.token))
    me = await owner.whose_token(h)
    if not me.may_mint():
        return None, f"it may not make tokens (no scope tokens!user={me.name}), so the bridge cannot renew it"
    made, why = await tokens.make_own(h, me.name, s.token_lifetime)
    if made is None:
        return None, why
    answer = await h.revoke_token(me.name, me.token_id or given.id or "")
    if answer.status != 204:
        print(printable(f"  could not revoke {given.user}'s given token: "
                        f"{hub.hub_message(answer.status, answer.body)}", LINE))
    return made, ""


def own_token(s: Settings, given: login_record.HubToken, what: str) -> login_record.HubToken:
    """login: exchange `what` (the pasted token, the sign-in's OAuth token) for the bridge's own expiring token and
    revoke it, saying so; keep it where that cannot be, saying why."""
    made, why = asyncio.run(swap(s, given))
    if made:
        print(f"Exchanged {what} for the bridge's own token ({made.expiry_text()}, the scopes of a password login) "
              f"and revoked {what}.")
        return made
    print(printable(f"Kept {what} as it is: {why}.", LINE))
    return given
