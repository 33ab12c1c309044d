"""Entry script for `mitmdump -s`: the project root must be on PYTHONPATH (run.sh sets it).

The list is the hook order: mitmproxy calls each hook on each addon in this order."""

from addon.access import Access
from addon.core import guard
from addon.autostart import Autostart
from addon.config import Config
from addon.diagnosis import Diagnosis
from addon.history import History
from addon.renew import Renew
from addon.resume import Resume
from addon.rewrite import Redact
from addon.rewrite import RewriteRequest
from addon.rewrite import RewriteResponse

config = Config()
browsers = guard.BrowserAccess()  # this run's browser cookie and spent tickets
addons = [
    config,                   # options -> one frozen Settings and the Hub client; OptionsError with the fix
    Access(config, browsers),  # the access token, the only credential sent to the server: made, renewed, revoked
    RewriteRequest(config, browsers),  # SNI to the hub; Host/Origin guard, route into the prefix, credential upstream
    Resume(config),           # kernel and terminal WebSockets through the bridge's relay: held across drops
    Autostart(config),        # the hub answered for a stopped server: start it, send again, restore the body
    RewriteResponse(config),  # Location and Set-Cookie back to the bridge's URLs; hub token out of pages
    Redact(),                 # what stays in a flow (mitmweb, -w, log lines below) holds no usable token
    Diagnosis(config),        # failed exchanges: cause and fix as comment, mark and one log line a minute
    History(config),          # mitmproxy keeps little of long WebSockets and, in mitmweb, of old flows
    Renew(config),            # the stored hub token: its successor before it expires, the old one revoked
]
