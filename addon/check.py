"""`python -m addon.check [--set option=value ...]`: a preflight to run before opening the IDE.

Prints a checklist (✓ passed, ✗ failed with its fix, – skipped) and stops with exit status 1 at the first
failure that would stop the IDE. It dials the hub itself, the way the bridge does: the bridge need not run."""

import dataclasses
import http.client
import json
import os
import socket
import ssl
import sys
from email.message import Message

from cryptography import x509

from addon import credentials
from addon import diagnose
from addon import forward
from addon import hub
from addon import launch
from addon import route
from addon import settings
from addon.settings import Settings

TIMEOUT = 10.0


class Failed(Exception):
    def __init__(self, what: str, fix: str, details: tuple[str, ...] = ()) -> None:
        super().__init__(what)
        self.what, self.fix, self.details = what, fix, details


def dial(s: Settings) -> socket.socket:
    try:
        return socket.create_connection((s.server_host, s.server_port), timeout=TIMEOUT)
    except OSError as e:
        raise failure(diagnose.Answer(None, error=str(e) or type(e).__name__), s) from e


def failure(answer: diagnose.Answer, s: Settings, cert: x509.Certificate | None = None) -> Failed:
    found = diagnose.diagnose(answer, diagnose.facts(s, cert))
    if found is None:
        return Failed(f"{answer.status} {answer.error or diagnose.message(answer.body)}",
                      "See the message above; `./run.sh web` shows the whole exchange.")
    details = ()
    if cert is not None:
        c = diagnose.describe(cert)
        details = (f"the hub's certificate: names {', '.join(c.names) or '(none)'}; subject {c.subject}; "
                   f"issuer {c.issuer}; valid {c.not_before} to {c.not_after}",)
    return Failed(found.cause, found.fix, details)


def unverified_certificate(s: Settings) -> x509.Certificate | None:
    """The certificate the hub presents, read without trusting it, to say why it is not trusted."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with ctx.wrap_socket(dial(s), server_hostname=s.tls_name) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, Failed):
        return None
    return x509.load_der_x509_certificate(der) if der else None


class HubConnection(http.client.HTTPSConnection):
    """HTTPS to the hub's address, with the TLS name for SNI and verification (the address may be an IP)."""

    def __init__(self, s: Settings) -> None:
        super().__init__(s.server_host, s.server_port, timeout=TIMEOUT, context=hub.tls_context(s))
        self.settings = s

    def connect(self) -> None:
        self.sock = self._context.wrap_socket(dial(self.settings), server_hostname=self.settings.tls_name)


def fetch(s: Settings, path: str, headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage, str]:
    conn = HubConnection(s)
    try:
        conn.request("GET", path, headers={"Host": s.hub_authority, **headers})
        r = conn.getresponse()
        return r.status, r.headers, r.read(65536).decode(errors="replace")
    finally:
        conn.close()


def hub_api(s: Settings, path: str) -> tuple[int, dict]:
    auth = {"Authorization": f"token {s.hub_token}"} if s.hub_token else {}
    status, _, body = fetch(s, f"{s.base_url}hub/api{path}", auth)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, {}


def check_address(s: Settings) -> str:
    try:
        found = socket.getaddrinfo(s.server_host, s.server_port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise failure(diagnose.Answer(None, error=str(e)), s) from e
    dial(s).close()
    return f"{s.server_host} resolves to {found[0][4][0]} and accepts TCP on port {s.server_port}"


def check_tls(s: Settings) -> str:
    try:
        with hub.tls_context(s).wrap_socket(dial(s), server_hostname=s.tls_name) as tls:
            cert = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))
    except ssl.SSLError as e:
        raise failure(diagnose.Answer(None, error=str(e)), s, unverified_certificate(s)) from e
    c = diagnose.describe(cert)
    return (f"TLS verified for '{s.tls_name}' with {s.ca_file or 'the system trust store'} "
            f"(issuer {c.issuer}, valid until {c.not_after})")


def check_hub(s: Settings) -> str:
    status, body = hub_api(s, "")
    if status != 200 or "version" not in body:
        raise Failed(f"{s.dial_url}{s.base_url.lstrip('/')}hub/api answered {status}, not JupyterHub's version.",
                     "Check JUPYTERHUB_BASE_URL (e.g. /jupyter/ when the hub lives under a prefix) and the port.")
    return f"JupyterHub {body['version']} answers at {s.base_url}hub/api"


def check_token(s: Settings) -> str:
    status, me = hub_api(s, "/user")
    tail = credentials.redact(s.hub_token or "")
    if status != 200:
        raise Failed(f"The hub rejected JUPYTERHUB_API_TOKEN ({tail}): it is wrong, expired or revoked ({status}).",
                     "Create a new token on the hub's Token page and set JUPYTERHUB_API_TOKEN to it.")
    owner, scopes = me.get("name"), me.get("scopes", [])
    if s.username and owner != s.username:
        raise Failed(f"The token ({tail}) belongs to '{owner}', not to JUPYTER_USERNAME '{s.username}'.",
                     f"Set JUPYTER_USERNAME={owner}, or use a token of '{s.username}'.")
    allowed = {"access:servers", f"access:servers!user={owner}", f"access:servers!server={owner}/{s.named_server}"}
    if not allowed & set(scopes):
        raise Failed(f"The token ({tail}) of '{owner}' lacks the scope access:servers (it has: "
                     f"{', '.join(sorted(scopes)) or 'none'}), so your server refuses it.",
                     "Create a token without limiting its scopes, or with access:servers!user=<you>.")
    status, token = hub_api(s, f"/users/{owner}/tokens/{me.get('token_id')}")
    expires = (token.get("expires_at") or "never") if status == 200 else "unknown (no read:tokens scope)"
    return f"token {tail} of '{owner}' is valid, may access servers, expires {expires}"


def check_server(s: Settings) -> str:
    status, user = hub_api(s, f"/users/{s.username}")
    if status != 200:
        return f"– server state unknown: the token may not read it ({status})"
    name = f"'{s.named_server}'" if s.named_server else "default"
    server = user.get("servers", {}).get(s.named_server)
    if not server:
        raise Failed(f"Your {name} server is stopped (or its last start failed).",
                     f"Start it on {s.dial_url}{s.base_url.lstrip('/')}hub/home, then run this check again.")
    if server.get("pending") or not server.get("ready"):
        raise Failed(f"Your {name} server is {server.get('pending') or 'not ready'} (pending).",
                     "Wait until it has started (a minute or two), then run this check again.")
    return f"your {name} server is running at {server.get('url')}"


def check_kernelspecs(s: Settings) -> str:
    headers = Message()  # looked up case-insensitively, as the bridge's request headers are
    headers["Host"] = f"127.0.0.1:{s.listen_port}"
    if s.local_secret:
        headers["Authorization"] = f"token {s.local_secret}"
    try:
        plan = forward.request_changes("/api/kernelspecs", headers, s)
    except route.Refused as e:
        raise Failed(e.message, "Check the settings above.") from e
    sent = {k: v for k, v in plan.headers.items() if v is not None}
    status, response_headers, body = fetch(s, plan.target, sent)
    if status != 200:
        raise failure(diagnose.Answer(status, response_headers, body, credential="Authorization" in sent), s)
    specs = json.loads(body)
    return f"/api/kernelspecs answers through the bridge's code path: {', '.join(specs['kernelspecs'])} " \
           f"(default {specs.get('default')})"


def paste_url(s: Settings, environ=os.environ) -> str:
    if s.hub_token and environ.get("JUPYTER_PROXY_TOKEN") is None:
        return f"{s.connect_url}?token=<the token the bridge prints at start; set JUPYTER_PROXY_TOKEN to fix it>"
    return launch.connect_url(s)


def run(s: Settings) -> int:
    steps = [check_address, check_tls, check_hub]
    steps += [check_token, check_server, check_kernelspecs] if s.hub_token else []
    for step in steps:
        try:
            line = step(s)
        except Failed as f:
            print(f"✗ {f.what}")
            for detail in f.details:
                print(f"    {detail}")
            print(f"    fix: {f.fix}")
            return 1
        print(line if line.startswith("– ") else f"✓ {line}")
        if step is check_token and not s.username:  # the bridge, too, uses the token's owner then
            s = dataclasses.replace(s, username=hub_api(s, "/user")[1]["name"])
    if not s.hub_token:
        print("– token, server state and /api/kernelspecs not checked: JUPYTERHUB_API_TOKEN is not set, "
              "the IDE brings its own hub token")
    print(f"Paste into PyCharm: {paste_url(s)}")
    return 0


def main(argv: list[str]) -> int:
    try:
        s = settings.from_environment(overrides=launch.set_overrides(argv))
    except ValueError as e:
        print(f"✗ settings: {e}")
        return 1
    server = f"server '{s.named_server}' of " if s.named_server else ""
    user = f"user '{s.username}'" if s.username else "the hub token's owner"
    print(f"✓ settings: {server}{user} on {s.dial_url} (TLS name '{s.tls_name}'), "
          f"base URL {s.base_url}")
    return run(s)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
