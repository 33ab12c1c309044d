"""Every failed exchange gets one cause and one fix: as the flow's comment and mark (mitmweb), and as one
warning line per cause and minute in the log. Both quote a client's method and path and the hub's or a server's
message: they are escaped (printable) where the line is made."""

import json
import logging

from mitmproxy import http
from mitmproxy import tls

from addon.core import diagnose
from addon.core import login_record
from addon.config import Config
from addon.renew import EXPIRED
from addon.core.printable import LINE
from addon.core.printable import printable
from addon.rewrite import OWN

logger = logging.getLogger(__name__)
# The server's IOPub rate warning is one small message of its own; the kernel's large output (1 MiB flushes) is not
# searched for it, which would cost a scan of every megabyte that streams through.
IOPUB_WARNING_BYTES = 64 * 1024


def outcome(flow: http.HTTPFlow) -> diagnose.Outcome:
    """A failed flow's response as the diagnosis reads it."""
    r = flow.response
    assert r is not None
    body = r.get_text(strict=False)[:8192] if r.content else ""
    return diagnose.Outcome(r.status_code, r.headers, body or "", method=flow.request.method,
                           websocket=flow.request.headers.get("upgrade", "").lower() == "websocket",
                           credential="authorization" in flow.request.headers,
                           origin="origin" in flow.request.headers, own=bool(flow.metadata.get(OWN)))


class Diagnosis:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.warned = diagnose.RateLimit()  # one log line per cause and minute: IDEs retry in a loop
        self.hub_cert = None  # (address, certificate) of the last failed TLS handshake

    def tls_failed_server(self, data: tls.TlsData) -> None:
        # OpenSSL keeps the chain it did not trust: the diagnosis names its issuer and names.
        chain = data.ssl_conn.get_peer_cert_chain() if data.ssl_conn else None
        if chain:
            self.hub_cert = (data.conn.address, chain[0].to_cryptography())

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response.status_code < 300 or flow.metadata.get(EXPIRED):  # renew.py told it, once
            return
        found = self._diagnose(flow, outcome(flow))
        r = flow.response
        if found and found.key == "token-rejected" and found.fix.endswith(login_record.LOG_IN_AGAIN) and r.content \
                and "application/json" in r.headers.get("content-type", ""):
            # The stored token expired or was revoked: the IDE shows a JSON error's message, so say it there.
            r.text = json.dumps({"message": found.text})

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.response is None and flow.error:
            self._diagnose(flow, diagnose.Outcome(None, error=flow.error.msg, method=flow.request.method))

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        last = flow.websocket.messages[-1]
        if last.from_client or len(last.content) > IOPUB_WARNING_BYTES:
            return
        if (at := last.content.find(diagnose.IOPUB_MARK)) >= 0:
            text = last.content[at:at + 600].decode(errors="replace")
            self._diagnose(flow, diagnose.Outcome(101, body=text, websocket=True))

    def _diagnose(self, flow: http.HTTPFlow, answer: diagnose.Outcome) -> diagnose.Finding | None:
        if self.config.settings is None:
            return None
        address, cert = self.hub_cert or (None, None)
        facts = diagnose.facts(self.config.settings, cert if address == (flow.request.host, flow.request.port)
                               else None, self.config.stored_token)
        found = diagnose.diagnose(answer, facts)
        if found is None:
            return None
        flow.comment = printable(found.text, LINE)
        flow.marked = ":warning:"
        if self.warned(found.key):
            logger.warning(printable(f"{flow.request.method} {flow.request.path}: {found.text}", LINE))
        return found
