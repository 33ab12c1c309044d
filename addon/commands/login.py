"""`./run.sh login [HUB_URL]` and `./run.sh logout`: sign in once, keep the hub's settings and a hub token that
expires in a file only you can read (addon/store.py), and give that token back to the hub when you leave.

login asks for what neither --set, the environment nor an earlier login gave: the hub's URL, the TLS name when
the URL names an IP, the CA file, the user name; it checks the address and TLS before it asks for the password,
then has the hub make a token with the fewest scopes the bridge needs. Hubs that take no password (SSO) get the
token page to copy a token from."""

import argparse
import asyncio
import dataclasses
import getpass
import os
import re
import secrets
import socket
import sys
import webbrowser
from urllib.parse import urlsplit

from cryptography import x509

from addon.core import diagnose
from addon.core import login_record
from addon.core import trust as hub_trust
from addon.commands import check
from addon.hub import api as hub
from addon.core import owner
from addon.core import profiles
from addon.commands import launch
from addon.commands import logout
from addon.commands import oauth
from addon.core import settings
from addon.core.errors import BridgeError
from addon.core.invocation import RUN
from addon.core.printable import LINE
from addon.core.printable import printable
from addon import store
from addon.hub import tokens
from addon.core.settings import Settings

class Stop(BridgeError):
    """Login cannot go on: the message says why and what to do."""


def parse_hub_url(text: str) -> dict[str, str]:
    """'https://10.1.2.3:8000/jupyter/' -> address, port and base URL (as option values). A pasted page of the
    hub ('…/jupyter/hub/login') gives its base URL too."""
    text = text.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    if parts.scheme != "https":
        raise Stop(f"{text!r}: the bridge talks to the hub over HTTPS only: use an https:// URL.")
    try:
        port = parts.port or 443
    except ValueError:
        raise Stop(f"{text!r}: the port is not a number.") from None
    if not parts.hostname:
        raise Stop(f"{text!r}: no address in it: use e.g. https://hub.example.org/ or https://10.1.2.3:8000/.")
    base = re.sub(r"(^|/)hub(/.*)?$", "/", parts.path)  # the hub's own pages live under <base>hub/
    return {"jupyter_server_ip_or_name": parts.hostname, "jupyter_server_port": str(port),
            "jupyterhub_base_url": base or "/"}


def takes_password(login_page: str) -> bool:
    """The hub's login page has a password field only when its authenticator takes passwords."""
    return re.search(r"""type\s*=\s*["']?password""", login_page, re.IGNORECASE) is not None


def ask(prompt: str, interactive: bool, option: str, default: str = "") -> str:
    if not interactive:
        if default:
            return default
        raise Stop(f"{settings.ENV_OF[option]} is not set and there is no terminal to ask on: set it, "
                   "or give it with --set " + f"{option}=...")
    answer = input(f"{prompt}{f' [{default}]' if default else ''}: ").strip()
    return answer or default


def gather(args, environ) -> dict[str, str]:
    """The option values login uses: --set and HUB_URL over the environment over the stored login (when it is
    the same hub), the rest asked for."""
    given = {**launch.set_overrides(sum((["--set", v] for v in args.set), [])),
             **(parse_hub_url(args.hub_url) if args.hub_url else {})}
    stored = store.load(environ).values()
    if args.hub_url and stored.get("jupyter_server_ip_or_name") != given["jupyter_server_ip_or_name"]:
        stored = {}  # another hub: its TLS name and CA do not apply
    known = {**stored, **{o.name: environ[o.env] for o in settings.OPTIONS if o.env in environ}, **given}
    values = {o.name: known.get(o.name, o.default) for o in settings.OPTIONS if not o.secret} | logout.NOT_ASKED
    interactive = sys.stdin.isatty() and not (args.password_stdin or args.token_stdin)
    if "jupyter_server_ip_or_name" not in known:
        values |= parse_hub_url(ask("JupyterHub URL (e.g. https://hub.example.org/ or https://10.1.2.3:8000/)",
                                    interactive, "jupyter_server_ip_or_name"))
    if "jupyter_server_name" not in known and settings.is_ip(values["jupyter_server_ip_or_name"]):
        values["jupyter_server_name"] = ask("The name in the hub's TLS certificate", interactive,
                                            "jupyter_server_name", settings.IP_TLS_NAME)
    if "jupyter_username" not in known and not (args.token_stdin or args.browser):
        values["jupyter_username"] = ask("User name on the hub", interactive, "jupyter_username")
    return values


def confirmed(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def confirm_base_url(s: Settings, interactive: bool) -> None:
    """A base URL other than / is shown, and on a terminal confirmed, before a password or token goes there: under
    the hub's host a path can be a user's server (the settings refuse those JupyterHub reserves: field note 49)."""
    if s.base_url == "/":
        return
    url = f"{s.dial_url}{s.base_url.lstrip('/')}"
    check.say(f"The hub's base URL is {s.base_url}: your password or sign-in and the hub token go to {url}hub/.")
    if interactive and not confirmed(f"Is {url} your hub's own address, as its admin gave it?"):
        raise Stop(f"login stopped: nothing was sent. Run {RUN} login with the hub's own URL.")


def reach(values: dict[str, str], fingerprint: str | None = None) -> tuple[Settings, login_record.Trust]:
    """The settings for the new login and what verified the hub, after the address, TLS and hub checks (the
    password waits for them)."""
    try:
        s = settings.resolve({**values, "jupyter_username": values["jupyter_username"] or "-"}, os.environ)
    except ValueError as e:
        raise Stop(str(e)) from None
    s = dataclasses.replace(s, hub_token=None, username=values["jupyter_username"])
    c = check.Checklist(s, hub.Hub(s))
    for step in (check.check_address, first_trust(fingerprint), check.check_tls, check.check_hub):
        try:
            if line := asyncio.run(step(c)):
                check.say(f"✓ {line}")
        except check.Failed as f:
            check.report(f)
            raise Stop(f"login stopped: fix the above, then run {RUN} login again.") from None
    return c.s, c.trust


def first_trust(fingerprint: str | None):
    """The step that decides what verifies the hub, before the TLS check verifies it so: a CA file given; else
    the system store, pinned to its CA that verifies the hub now; else (or with a fingerprint given) the topmost
    certificate the hub presents, confirmed by its fingerprint or by the user on a terminal (ssh's first use)."""
    async def decide(c: check.Checklist) -> str:
        s = c.s
        if s.ca_file:
            c.trust = login_record.Trust(s.ca_file, s.trust.sha256)
            return ""
        if not fingerprint:
            try:
                anchor = (await c.hub.verified_chain())[-1]
            except hub.HubError:
                anchor = None  # not verified by the system store: the user's word decides, below
            if anchor is not None:
                c.trust = login_record.Trust(pin=hub_trust.fingerprint(anchor))
                return f"the system trust store verifies the hub: its CA {c.trust.pin} is pinned for this login"
        try:
            chain = await c.hub.presented()
        except hub.HubError as e:
            raise check.Failed(e.message, "Check the address and port.") from e
        cert = certificate_to_pin(s, chain, fingerprint)
        c.s = dataclasses.replace(s, trust=hub_trust.pinned(cert, f"{s.server_host}:{s.server_port}"))
        c.hub = hub.Hub(c.s)
        c.trust = login_record.Trust(pin=c.s.trust.pin, certificate=c.s.trust.pem.decode("ascii"))
        return f"trusting {c.s.trust.text} (pinned: a chain without it is refused)"
    return decide


def certificate_to_pin(s: Settings, chain: list[x509.Certificate], fingerprint: str | None) -> x509.Certificate:
    """The certificate to pin: the one with the given fingerprint, else the topmost one presented, once the user
    said yes on a terminal. Raises Stop (nothing stored) otherwise."""
    top = chain[-1]
    if not fingerprint:
        check.say(f"The system trust store does not verify {s.dial_url}. It presents:")
    for cert in chain:
        about = diagnose.describe(cert)
        check.say(f"  subject {about.subject}; issuer {about.issuer}; valid {about.not_before} to {about.not_after}")
    presented = hub_trust.fingerprint(top)
    which = "its CA" if len(chain) > 1 else "the hub's own certificate (it sends no CA)"
    if fingerprint:
        wanted = hub_trust.normal_fingerprint(fingerprint)
        if found := [cert for cert in chain if hub_trust.fingerprint(cert) == wanted]:
            check.say(f"  {wanted}: the fingerprint you gave, presented by the hub")
            return found[0]
        raise Stop(f"the hub presents no certificate with the fingerprint you gave: expected {wanted}, presented "
                   f"{presented} ({which}). Nothing was stored; check the fingerprint with your admins.")
    check.say(f"  fingerprint of {which}: {presented}")
    if len(chain) == 1:
        check.say("  (when the hub's certificate is renewed, you will be asked again)")
    if not sys.stdin.isatty():
        raise Stop("there is no terminal to ask whether to trust it on: check the fingerprint with your admins and "
                   "give it with --ca-fingerprint (or JUPYTER_CA_FINGERPRINT), or set JUPYTER_CLUSTER_CA_CERT.")
    if not confirmed(f"Trust it for {s.server_host}?"):
        raise Stop("not trusted: nothing was stored.")
    return top


async def sign_in(s: Settings, password: str, lifetime: int) -> login_record.HubToken:
    """Have the hub make a token for the user's name and password; the stored record of it."""
    auth = {"username": s.username, "password": password}
    made, why = await tokens.make_own(hub.Hub(s), s.username, lifetime, auth, say=lambda note: check.say(f"  {note}"))
    if why == tokens.WRONG_PASSWORD:
        raise Stop(f"the hub refused the password of '{s.username}' (or the user name): try again.")
    if made is None:
        raise Stop(f"{why}: no token was made.")
    return made


async def pasted(s: Settings, token: str) -> login_record.HubToken:
    """A token the user copied from the hub's token page: checked with the hub, then kept like a made one."""
    h = hub.Hub(dataclasses.replace(s, hub_token=token))
    try:
        me = await owner.whose_token(h)
    except hub.HubError as e:
        raise Stop(f"the hub did not accept that token ({e.message}): copy it again from the token page.") from None
    if s.username and me.name != s.username:
        raise Stop(f"that token belongs to '{me.name}', not to '{s.username}'.")
    model = {"token": token, "id": me.token_id}
    try:
        model |= await h.token_model(me.name, me.token_id or "")
    except hub.HubError:
        pass  # the token may not read its own model: expiry unknown
    lifetime = None
    if (made := login_record.parse_time(model.get("created"))) and (ends := login_record.parse_time(model.get("expires_at"))):
        lifetime = int((ends - made).total_seconds())
    return tokens.record(model, {"scopes": model.get("scopes"), "expires_in": lifetime}, me.name)


def credentials_for(s: Settings, args, interactive: bool) -> login_record.HubToken:
    """The new token: made from the password, or pasted from the token page on hubs that take no password."""
    if args.browser and (token := oauth.browser_token(s, args.set, args.open, interactive)):
        given = asyncio.run(pasted(dataclasses.replace(s, username=""), token))  # whom the hub signed in
        signed_in(given.user, s.username, interactive)
        return oauth.own_token(s, given, "the sign-in's OAuth token")
    page = ""
    if not (args.token_stdin or args.browser):
        answer = asyncio.run(hub.Hub(s).request("GET", f"{s.base_url}hub/login", [("Host", s.hub_authority)]))
        page = answer.body.decode(errors="replace")
    if args.token_stdin or args.browser or not takes_password(page):
        token_page = f"{s.dial_url}{s.base_url.lstrip('/')}hub/token"
        if args.password_stdin:
            raise Stop(f"this hub's sign-in takes no password (single sign-on): make a token on {token_page} "
                       "and give it with --token-stdin.")
        why = "" if args.browser else "This hub's sign-in takes no password (single sign-on). "
        if not args.token_stdin:
            print(f"{why}Sign in on {token_page}, make a token "
                  f"there (one that expires; scopes: {' '.join(tokens.wanted_scopes(s.username or '<you>'))}, or none: "
                  "all of yours) and paste it here.")
            if sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
                webbrowser.open(token_page)  # not without a desktop: it would start a text browser in this terminal
        token = sys.stdin.readline().strip() if args.token_stdin else getpass.getpass("Token (hidden): ").strip()
        return oauth.own_token(s, asyncio.run(pasted(s, token)), "the pasted token")
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif interactive:
        password = getpass.getpass(f"Password of '{s.username}' (hidden): ")
    else:
        raise Stop("there is no terminal to ask for the password on: give it with --password-stdin.")
    return asyncio.run(sign_in(s, password, s.token_lifetime))


def signed_in(user: str, expected: str, interactive: bool) -> None:
    """The account a browser sign-in came back with is the user's: the one known (stored, --set, the environment),
    else the one they confirm. Another account's code can reach the callback with this sign-in's state (a local
    user reads it from the browser's command line) on a hub that does not require PKCE (field note 50)."""
    if expected and user != expected:
        raise Stop(f"the sign-in came back signed in as '{user}', not as '{expected}': nothing was stored. If you "
                   f"did not sign in as '{user}', another's sign-in reached {RUN} login: tell the hub's admin "
                   f"({oauth.ADMIN} says what the hub needs).")
    if not expected and not (interactive and confirmed(f"The hub signed you in as '{user}'. Is that you?")):
        raise Stop(f"the sign-in as '{user}' was not confirmed: nothing was stored.")


def warn_if_admin(s: Settings, made: login_record.HubToken) -> None:
    """A hub admin's stored token can make a token with all admin rights (it holds `tokens`; field note 42)."""
    try:
        me = asyncio.run(owner.whose_token(hub.Hub(dataclasses.replace(s, hub_token=made.token))))
    except hub.HubError:
        return
    if me.admin:
        check.say(f"warning: '{me.name}' is an admin of this hub: the stored hub token can make a token with all "
                  "admin rights (it holds the scope tokens). Keep the login file to yourself; for daily work "
                  "consider an account that is not an admin.")


def profile_port(args, old: login_record.Login, environ) -> dict[str, str]:
    """A profile other than `default` keeps the port of its bridge, so that bridges of two profiles run side by side
    and each IDE's URL stays the same: the port given (--set, JUPYTER_PROXY_PORT), else the one it kept, else the
    first free one from 8000 on that no other profile keeps."""
    this = store.profile(environ)
    if this == profiles.DEFAULT:
        return {}
    given = launch.set_overrides(sum((["--set", v] for v in args.set), [])).get("jupyter_proxy_port")
    port = given or environ.get(settings.ENV_OF["jupyter_proxy_port"]) or old.settings.get("jupyter_proxy_port")
    if not port:
        others = [store.load(environ, name=name).settings for name in store.profile_names(environ) if name != this]
        taken = {int(kept.get("jupyter_proxy_port") or profiles.FIRST_PORT) for kept in others}
        port = str(profiles.next_port(taken, port_free))
    return {"jupyter_proxy_port": port}


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def login(args, environ=os.environ) -> int:
    old = store.load(environ)
    values = gather(args, environ)
    s, trust = reach(values, args.ca_fingerprint)  # what verified the hub: stored with the token, for no other peer
    confirm_base_url(s, sys.stdin.isatty())
    made = credentials_for(s, args, sys.stdin.isatty() and not args.password_stdin)
    kept = {"jupyter_server_ip_or_name": s.server_host, "jupyter_server_port": str(s.server_port),
            "jupyter_server_name": s.tls_name, "jupyterhub_base_url": s.base_url, "jupyter_username": made.user}
    kept |= {"jupyter_cluster_ca_cert": s.ca_file} if s.ca_file else {}  # absolute: the bridge starts elsewhere
    kept |= {name: values[name] for name in ("jupyter_named_server", "jupyter_server_options") if values[name]}
    kept |= profile_port(args, old, environ)
    local = old.local_token if not args.new_local_token else None
    new = login_record.Login(settings=kept, hub_token=made, local_token=local or secrets.token_urlsafe(24), trust=trust)
    where = store.save(new, environ)
    if old.hub_token and old.hub_token.token != made.token:
        check.say(f"  the earlier login: {logout.revoke(old)}")
    scopes = ", ".join(made.scopes or ["as the token page made it"])
    check.say(f"Logged in to {s.dial_url}{s.base_url.lstrip('/')} as '{made.user}', trusting {trust.text()}. The "
              f"hub token {made.expiry_text()}; its scopes: {scopes}. Kept in {where}; it goes only to the hub's API "
              "(servers get an access token to themselves).")
    warn_if_admin(s, made)
    try:
        print(f"Now start the bridge with {RUN} and paste into PyCharm: "
              f"{launch.connect_url(settings.from_environment(environ, stored=new))}")
    except ValueError as e:
        print(f"warning: the bridge will not start with these settings: {e}")
    return 0


def arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"{RUN} login", description=__doc__.split("\n\n")[1])
    parser.add_argument("hub_url", nargs="?", help="the hub's URL, e.g. https://hub.example.org/jupyter/")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    given.add_argument("--token-stdin", action="store_true",
                       help="read a token made on the hub's token page from standard input (hubs without passwords)")
    parser.add_argument("--browser", action="store_true",
                        help="sign in on the hub's own page in your browser (single sign-on; the hub's OAuth client)")
    parser.add_argument("--no-open", dest="open", action="store_false", help="--browser: print the URL only")
    parser.add_argument("--ca-fingerprint", default=os.environ.get("JUPYTER_CA_FINGERPRINT") or None,
                        metavar="sha256:HEX", help="trust a hub whose chain holds a certificate with this public-key "
                        "fingerprint, without asking (default: $JUPYTER_CA_FINGERPRINT)")
    parser.add_argument("--new-local-token", action="store_true",
                        help="make a new token for the bridge's URL (the IDE then needs the new URL)")
    parser.add_argument("--set", action="append", default=[], metavar="OPTION=VALUE", help=f"a setting ({RUN} help)")
    args = parser.parse_args(argv)
    if args.browser and args.password_stdin:  # else a hub without the OAuth client would be called password-less
        parser.error("--browser signs in on the hub's own page (a password or single sign-on there): leave out "
                     "--password-stdin (or --browser).")
    return args


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["logout"]:
            return logout.logout()
        return login(arguments(argv[1:] if argv[:1] == ["login"] else argv))
    except (BridgeError, ValueError, hub.HubError) as e:
        print(printable(f"error: {e}", LINE), file=sys.stderr)  # the hub's words in it, escaped
        return 1
    except (KeyboardInterrupt, EOFError):
        print("\nlogin stopped: nothing was stored.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
