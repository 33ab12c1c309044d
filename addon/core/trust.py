"""What the bridge verifies the hub with, as certificates in memory: read once, checked against what the login
stored, then handed as the same bytes to the Hub client and to mitmproxy (architecture, Trust). Pure but for
reading a CA file and the system trust store's files."""

import hashlib
import os
import re
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from addon.core.errors import SettingError
from addon.core.invocation import RUN

SYSTEM = "the system trust store"
FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")


def fingerprint(cert: x509.Certificate) -> str:
    """'sha256:<hex>': the SHA-256 of the certificate's DER SubjectPublicKeyInfo, as kubeadm and step print it (it
    stays the same when the certificate is renewed with the same key)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return f"sha256:{hashlib.sha256(spki).hexdigest()}"


def normal_fingerprint(text: str) -> str:
    """A fingerprint as a user gives it ('SHA256:AB:CD…', 'sha256:abcd…') in the form stored; raises SettingError."""
    found = text.strip().lower()
    found = "sha256:" + found.removeprefix("sha256:").replace(":", "")
    if not FINGERPRINT.fullmatch(found):
        raise SettingError(f"{text.strip()!r} is not a fingerprint: give it as sha256:<64 hex digits>, as "
                           f"{RUN} login prints it.")
    return found


def to_pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def certificates(pem: bytes) -> list[x509.Certificate]:
    """The certificates in PEM text (what lies between them, comments say, is skipped); [] for none."""
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.DOTALL)
    found = []
    for block in blocks:
        try:
            found.append(x509.load_pem_x509_certificate(block))
        except ValueError:
            continue  # a damaged one in a system bundle: the others still count
    return found


@dataclass(frozen=True)
class Anchors:
    """The certificates the hub's chain must lead to, as normalised PEM (None: the system store as it is, for
    settings with no login behind them), and what they are, for messages. `pin` is the fingerprint the login
    pinned (a certificate confirmed on first use, or the system store's CA seen at login), checked already."""
    pem: bytes | None = None
    text: str = SYSTEM
    pin: str | None = None
    sha256: str | None = None  # a CA file's: of its content as read, for the login to store


def from_ca_file(path: str, raw: bytes) -> Anchors:
    """The anchors of a CA file's content (read once by the caller, who compared its SHA-256)."""
    found = certificates(raw)
    if not found:
        raise SettingError(f"JUPYTER_CLUSTER_CA_CERT={path!r}: no PEM certificate in it. Export the CA certificate "
                           "in PEM format.")
    return Anchors(to_pem(found), path, sha256=hashlib.sha256(raw).hexdigest())


def from_pinned(pem: str, pin: str, host: str) -> Anchors:
    """The certificate confirmed on first use, kept in the login with its fingerprint: it must still match it."""
    found = certificates(pem.encode())
    if len(found) != 1 or fingerprint(found[0]) != pin:
        raise SettingError(f"the certificate {RUN} login pinned for {host} does not match its fingerprint {pin} "
                           f"in the login file: run {RUN} login again.")
    return pinned(found[0], host)


def system_store_files() -> list[str]:
    """The files OpenSSL reads for the system store here (SSL_CERT_FILE and SSL_CERT_DIR included), as
    ssl.create_default_context() does."""
    paths = ssl.get_default_verify_paths()
    files = [paths.cafile] if paths.cafile else []
    if paths.capath and os.path.isdir(paths.capath):
        files += sorted(os.path.join(paths.capath, name) for name in os.listdir(paths.capath))
    return files


def from_system_store(pin: str, host: str) -> Anchors:
    """The system store's CA that verified the hub at login (its fingerprint pinned), found in the store now: the
    only anchor, so that another CA the store holds today (SSL_CERT_FILE, say) does not verify an impostor."""
    for file in system_store_files():
        try:
            with open(file, "rb") as f:
                raw = f.read()
        except OSError:
            continue
        if same := [c for c in certificates(raw) if fingerprint(c) == pin]:
            return Anchors(to_pem(same[:1]), f"{SYSTEM} (its CA {pin}, pinned at login)", pin)
    where = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile or "the system store"
    raise SettingError(f"the CA that verified {host} when you logged in ({pin}) is not in {SYSTEM} now "
                       f"({where}): nothing was sent. If the hub changed its CA, check with your admins, then run "
                       f"{RUN} login again.")


def pinned(cert: x509.Certificate, host: str) -> Anchors:
    """A certificate the user confirms on first use, as the only anchor."""
    pin = fingerprint(cert)
    return Anchors(to_pem([cert]), f"the certificate you trusted for {host} ({pin})", pin)


def changed_message(host: str, pinned: str, presented: str) -> str:
    """known_hosts' warning, for a hub that no longer presents the pinned certificate's chain."""
    return (f"the hub at {host} does not present the certificate you trusted: someone may be impersonating it, or "
            f"it got a new certificate. Pinned: {pinned}; presented now: {presented}. Nothing was sent. If your "
            f"admins confirm the new one, run {RUN} login again to accept it.")
