"""What verifies the hub in a run (addon/core/trust.py, Login.anchors): read once, checked against the login's pin."""

import hashlib

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from addon.core import login_record
from addon.core import trust

HUB = {"jupyter_server_ip_or_name": "10.1.2.3", "jupyter_server_port": "8443", "jupyter_server_name": "hub.internal"}
PEER = ("10.1.2.3", 8443, "hub.internal")
CA = trustme.CA()
OTHER = trustme.CA()


def cert_of(ca: trustme.CA) -> x509.Certificate:
    return x509.load_pem_x509_certificate(ca.cert_pem.bytes())


def test_the_fingerprint_is_the_sha256_of_the_public_key_info():
    cert = cert_of(CA)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    assert trust.fingerprint(cert) == f"sha256:{hashlib.sha256(spki).hexdigest()}"


@pytest.mark.parametrize("given, expected", [
    ("sha256:" + "ab" * 32, "sha256:" + "ab" * 32),
    ("SHA256:" + ":".join(["AB"] * 32), "sha256:" + "ab" * 32),  # as browsers and openssl show it
    ("  " + "ab" * 32 + "\n", "sha256:" + "ab" * 32),
])
def test_a_fingerprint_as_users_give_it(given, expected):
    assert trust.normal_fingerprint(given) == expected


@pytest.mark.parametrize("given", ["sha256:abc", "sha1:" + "ab" * 20, "sha256:" + "zz" * 32, ""])
def test_not_a_fingerprint(given):
    with pytest.raises(ValueError, match="is not a fingerprint: give it as sha256:<64 hex digits>"):
        trust.normal_fingerprint(given)


def login(kept: login_record.Trust) -> login_record.Login:
    return login_record.Login(settings=dict(HUB), hub_token=login_record.HubToken("t"), trust=kept)


def test_a_ca_file_is_trusted_as_read_and_said_by_its_path():
    raw = b"# our CA\n" + CA.cert_pem.bytes()
    found = login_record.Login().anchors(*PEER, "/etc/ca.pem", raw)
    assert trust.certificates(found.pem) == [cert_of(CA)] and found.text == "/etc/ca.pem"
    assert found.sha256 == hashlib.sha256(raw).hexdigest() and found.pin is None


def test_a_certificate_confirmed_on_first_use_is_the_only_anchor_for_its_own_hub():
    pin = trust.fingerprint(cert_of(CA))
    kept = login(login_record.Trust(pin=pin, certificate=CA.cert_pem.bytes().decode()))
    found = kept.anchors(*PEER, None, None)
    assert (found.pin, trust.certificates(found.pem)) == (pin, [cert_of(CA)])
    assert kept.anchors("10.9.9.9", 8443, "hub.internal", None, None) == trust.Anchors()  # another hub: not its pin
    swapped = login(login_record.Trust(pin=pin, certificate=OTHER.cert_pem.bytes().decode()))
    with pytest.raises(ValueError, match=f"does not match its fingerprint {pin} in the login file"):
        swapped.anchors(*PEER, None, None)


def test_a_system_store_login_trusts_only_the_pinned_ca_of_the_store_it_finds(tmp_path, monkeypatch):
    pin = trust.fingerprint(cert_of(CA))
    kept = login(login_record.Trust(pin=pin))
    bundle = tmp_path / "store.pem"
    bundle.write_bytes(OTHER.cert_pem.bytes() + CA.cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
    found = kept.anchors(*PEER, None, None)
    assert trust.certificates(found.pem) == [cert_of(CA)] and pin in found.text  # not the other CA of the store
    bundle.write_bytes(OTHER.cert_pem.bytes())
    with pytest.raises(ValueError, match=f"the CA that verified 10.1.2.3:8443 when you logged in \\({pin}\\) is "
                                         "not in the system trust store now"):
        kept.anchors(*PEER, None, None)


def test_a_login_from_before_pins_trusts_the_system_store_as_it_is():
    assert login(login_record.Trust()).anchors(*PEER, None, None) == trust.Anchors()
