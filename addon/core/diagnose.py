"""Why a request failed, in words a user can act on: one table from what the hub, its proxy, jupyter_server,
the TLS layer and the bridge itself really answer, to one cause and one fix."""

import html
import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace

from cryptography import x509

from addon.core import lifecycle
from addon.core import login_record
from addon.core.invocation import RUN
from addon.core.settings import Settings
from addon.core.settings import host_in_url

IOPUB_MARK = b"IOPub data rate exceeded"


@dataclass(frozen=True)
class Outcome:
    """What came back for one request: a response, or the error text of a connection that failed."""
    status: int | None  # None: no response (connect or TLS failure)
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive lookups
    body: str = ""  # the start of the body, decoded
    error: str = ""
    method: str = "GET"
    websocket: bool = False
    credential: bool = False  # an Authorization header went upstream
    origin: bool = False  # an Origin header went upstream
    own: bool = False  # the bridge made this answer itself (known from the flow, never from a header)


@dataclass(frozen=True)
class Certificate:
    names: tuple[str, ...]
    subject: str
    issuer: str
    not_before: str
    not_after: str


UNKNOWN_CERT = Certificate((), "?", "?", "?", "?")


@dataclass(frozen=True)
class Facts:
    """The set-up the fixes talk about."""
    address: str = "the hub"  # host:port dialled
    host: str = "the hub"
    tls_name: str = ""
    ca_file: str = "the system trust store"
    ca_subject: str = "?"
    hub_home: str = "your hub's home page"
    cert: Certificate | None = None
    login_advice: str = ""  # for a refused token that ./run.sh login made (login_record.refused_token_advice)


@dataclass(frozen=True)
class Finding:
    """One cause and its fix, for one failed exchange."""

    key: str
    cause: str
    fix: str

    @property
    def text(self) -> str:
        return f"{self.cause} Fix: {self.fix}" if self.fix else self.cause


def describe(cert: x509.Certificate) -> Certificate:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = tuple(san.get_values_for_type(x509.DNSName)) + tuple(
            str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        names = ()
    return Certificate(names, cert.subject.rfc4514_string() or "(empty)", cert.issuer.rfc4514_string() or "(empty)",
                       f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
                       f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")


def ca_subjects(pem: bytes) -> str:
    """The subjects of the certificates in a CA file, for naming it in a message."""
    try:
        return "; ".join(c.subject.rfc4514_string() for c in x509.load_pem_x509_certificates(pem)) or "?"
    except ValueError:
        return "? (not a PEM certificate)"


def message(body: str) -> str:
    """The `message` of a Jupyter JSON error, or the text of an HTML error page's heading."""
    try:
        return str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested too deep to read
        found = re.search(r"<h1>(.*?)</h1>", body, re.S)
        # Unescaped first: a heading's &#13;&#10; is whitespace like any other, collapsed with it.
        return re.sub(r"\s+", " ", html.unescape(found.group(1))).strip() if found else ""


def _has(text: str, *needles: str) -> bool:
    return any(n.lower() in text.lower() for n in needles)


def _title(a: Outcome, title: str) -> bool:
    return f"<title>{title}</title>" in a.body


def _hub_page(a: Outcome) -> bool:
    return _title(a, "JupyterHub")


def _server_refused(a: Outcome) -> bool:
    """jupyter_server's 403: 'Forbidden' (REST, JSON), '_xsrf' missing (a write), or its HTML page (WebSocket)."""
    if a.status != 403 or _hub_page(a):
        return False
    return a.websocket or message(a.body) == "Forbidden" or "'_xsrf' argument missing" in a.body


_TOKEN_FIX = ("Create a new token on {f.hub_home} (Token page) with the scope access:servers for your server, and "
              "use it (JUPYTERHUB_API_TOKEN for the bridge, or ?token= in the IDE's URL); `{run} check` shows "
              "which tokens the hub accepts. A token revoked a moment ago may work for up to 5 minutes more.")
_START_FIX = "Start your server on {f.hub_home}, wait until it runs (`{run} check` shows its state), then retry."

Rule = tuple[str, Callable[[Outcome], bool], str, str]  # key, when, cause, fix (format strings with a=, f=, m=, run=)

RULES: tuple[Rule, ...] = (
    ("tls-untrusted", lambda a: _has(a.error, "unable to get local issuer certificate", "self-signed certificate",
                                     "self signed certificate", "unable to verify the first certificate"),
     "The hub's certificate (issued by {f.cert.issuer}) is not signed by the CA in {f.ca_file} ({f.ca_subject}).",
     "Set JUPYTER_CLUSTER_CA_CERT to the PEM file of the CA that issued the hub's certificate "
     "(your cluster admin has it)."),
    ("tls-name", lambda a: _has(a.error, "hostname mismatch", "ip address mismatch"),
     "The hub's certificate is for {names}, not for the TLS name '{f.tls_name}' the bridge checks.",
     "Set JUPYTER_SERVER_NAME=<one of: {names}>."),
    ("tls-expired", lambda a: _has(a.error, "certificate has expired", "certificate is not yet valid"),
     "The hub's certificate is valid only from {f.cert.not_before} to {f.cert.not_after}, not now ({now}).",
     "Ask your cluster admin to renew the hub's certificate, or correct this computer's clock."),
    ("not-tls", lambda a: _has(a.error, "does not speak TLS", "wrong version number"),
     "{f.address} answers, but not with TLS.",
     "Set JUPYTER_SERVER_PORT to the hub's HTTPS port."),
    ("refused", lambda a: _has(a.error, "Connect call failed", "Connection refused", "Errno 111"),
     "Nothing accepts connections at {f.address} (connection refused).",
     "Check JUPYTER_SERVER_IP_OR_NAME and JUPYTER_SERVER_PORT, that the hub is up, and that your VPN or "
     "tunnel is connected."),
    ("dns", lambda a: _has(a.error, "Name or service not known", "nodename nor servname", "getaddrinfo failed",
                           "Temporary failure in name resolution", "No address associated"),
     "The hub's address '{f.host}' does not resolve (DNS).",
     "Check the spelling of JUPYTER_SERVER_IP_OR_NAME, connect your VPN, or use the hub's IP address."),
    ("timeout", lambda a: _has(a.error, "timed out", "Errno 110", "No route to host", "Network is unreachable"),
     "Connecting to {f.address} timed out: nothing answered.",
     "Check the address and port, and that your VPN is connected; a firewall may drop the connection."),
    ("tls-other", lambda a: _has(a.error, "Certificate verify failed", "OpenSSL", "TLS", "SSL"),
     "The TLS handshake with {f.address} failed: {a.error}",
     "Check JUPYTER_CLUSTER_CA_CERT and JUPYTER_SERVER_NAME; `{run} check` shows the hub's certificate."),
    # The bridge's own 503 for a start the hub refused because of the options: it quotes the hub and says the fix.
    ("server-options", lambda a: a.own and a.status == 503
     and "JUPYTER_SERVER_OPTIONS" in a.body, "{m}", ""),
    # A start the hub rejected (capacity, a quota) apart from one that failed: the 503 says which, and what to do.
    ("start-rejected", lambda a: a.own and a.status == 503 and lifecycle.REJECTED in a.body, "{m}", ""),
    ("start-failed", lambda a: a.own and a.status == 503 and lifecycle.FAILED in a.body, "{m}", ""),
    ("bridge", lambda a: a.own and a.status is not None and a.status >= 400,
     "The bridge answered {a.status}: {cause}", "{fix}"),
    ("server-not-running-write", lambda a: a.status == 403 and _hub_page(a) and "_xsrf" in a.body,
     "Your server is not running: the hub itself answered this {a.method} ('_xsrf' argument missing) "
     "instead of your server.", _START_FIX),
    ("server-not-running", lambda a: a.status == 424 or (
        a.status in (301, 302, 303, 307) and "/hub/user/" in a.headers.get("location", "")),
     "Your server is not running (or is still starting): the hub answered {a.status} for it.", _START_FIX),
    ("spawn-failed", lambda a: a.status is not None and a.status >= 500 and _has(a.body, "failed to start",
                                                                                 "spawn failed"),
     "Your server failed to start: {m}", "Look at the error on {f.hub_home}, fix it (or ask your admin), "
     "and start the server again."),
    ("server-down", lambda a: a.status == 503 and _hub_page(a),
     "The hub's proxy cannot reach your server: it has stopped or crashed.", _START_FIX),
    ("no-token", lambda a: _server_refused(a) and not a.credential,
     "Your server got no token{ws} ({m!r}: jupyter_server's way of saying 'not authenticated').",
     "Put your hub token in the IDE's URL (?token=<token>), or give it to the bridge as JUPYTERHUB_API_TOKEN."),
    ("token-rejected", _server_refused,
     "Your server refused the hub token{ws} ({m!r}): it is wrong, expired or revoked, belongs to another user, "
     "or lacks the scope access:servers.", "{token_fix}"),
    ("cross-origin", lambda a: a.status == 404 and not a.credential and a.origin,
     "Your server blocked a cross-origin request (jupyter_server logs 'Blocking Cross Origin API request').",
     "Let the IDE send no Origin header, or use the bridge's own address {f.address}."),
    ("iopub-rate", lambda a: a.status == 101 and IOPUB_MARK.decode() in a.body,
     "The kernel's output was cut: it exceeded the server's IOPub data rate limit ({limit}).",
     "Print less (write large output to a file), or ask your hub admin to raise "
     "c.ZMQChannelsWebsocketConnection.iopub_data_rate_limit for your server."),
    ("server-error", lambda a: a.status is not None and a.status >= 500,
     "The hub answered {a.status}: {m}", "Retry in a minute; if it stays, look at your server's log on "
     "{f.hub_home} or ask your hub admin."),
)


def diagnose(a: Outcome, f: Facts = Facts()) -> Finding | None:
    """The first rule that matches, filled in; None for an answer that is no failure the bridge can explain."""
    if a.status is not None and a.status < 400 and a.status not in (101, 301, 302, 303, 307):
        return None
    m = message(a.body) or a.error
    cause, _, fix = m.partition(": ")
    names = ", ".join(f.cert.names) if f.cert and f.cert.names else "?"
    limit = re.search(r"iopub_data_rate_limit=([\d.e+]+)", a.body)
    values = dict(a=a, f=f if f.cert else replace(f, cert=UNKNOWN_CERT),
                  m=m, cause=cause.rstrip(".") + ".", fix=fix, names=names, run=RUN,
                  token_fix=f.login_advice or _TOKEN_FIX.format(f=f, run=RUN),
                  ws=" on the WebSocket ('Couldn't authenticate WebSocket connection')" if a.websocket else "",
                  limit=f"{float(limit.group(1)):.0f} bytes/s" if limit else "?",
                  now=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    for key, when, cause_t, fix_t in RULES:
        if when(a):
            return Finding(key, cause_t.format(**values), fix_t.format(**values))
    return None


class RateLimit:
    """Lets each key through once per period; remembers at most `size` keys."""

    def __init__(self, period: float = 60.0, size: int = 64) -> None:
        self.period, self.size = period, size
        self.seen: OrderedDict[str, float] = OrderedDict()

    def __call__(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        last = self.seen.get(key)
        if last is not None and now - last < self.period:
            return False
        self.seen[key] = now
        self.seen.move_to_end(key)
        while len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return True


def facts(s: Settings, cert: x509.Certificate | None = None, stored_token: login_record.HubToken | None = None) -> Facts:
    """The Facts of a set-up; with the hub's certificate (after a TLS failure) also the subjects of what the bridge
    trusts (as loaded at start: the file may have changed since); with the stored record of the hub token in use
    (when `./run.sh login` made it) the advice to log in again."""
    ca_subject = ca_subjects(s.trust.pem) if cert is not None and s.trust.pem else "?"
    address = f"{host_in_url(s.server_host)}:{s.server_port}"
    return Facts(address=address, host=s.server_host, tls_name=s.tls_name,
                 ca_file=s.trust.text, ca_subject=ca_subject,
                 hub_home=s.hub_home, cert=describe(cert) if cert else None,
                 login_advice=login_record.refused_token_advice(stored_token))
