"""Private CA and server certificate, and an HTTPS client that dials an IP but verifies a name."""

from __future__ import annotations

import http.client
import os
import ssl
from pathlib import Path

from devhub import TLS_NAME


def make_certs(workdir: Path, name: str = TLS_NAME, send_ca: bool = False) -> dict[str, Path]:
    """Create a fresh CA and a server certificate for the DNS name ``name`` only (no IP SAN).

    Writes ca.pem, hub-cert.pem (leaf + chain, and the CA with ``send_ca``: what the hub presents) and hub-key.pem
    (mode 0600) into ``workdir``; a workdir that has them already keeps them, so that a hub restarted there is the
    same hub to its clients.
    """
    import trustme

    paths = {
        "ca_file": workdir / "ca.pem",
        "cert_file": workdir / "hub-cert.pem",
        "key_file": workdir / "hub-key.pem",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    ca = trustme.CA(organization_name="devhub private CA")
    cert = ca.issue_cert(name)
    ca.cert_pem.write_to_path(str(paths["ca_file"]))
    with open(paths["cert_file"], "wb") as f:
        for blob in cert.cert_chain_pems + ([ca.cert_pem] if send_ca else []):
            f.write(blob.bytes())
    fd = os.open(paths["key_file"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(cert.private_key_pem.bytes())
    return paths


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``host:port`` (an IP) with SNI and certificate verification against ``tls_name``."""

    def __init__(self, host: str, port: int, *, tls_name: str, context: ssl.SSLContext,
                 timeout: float = 10.0):
        super().__init__(host, port, context=context, timeout=timeout)
        self._tls_name = tls_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._tls_name)


def client_context(ca_file: str | os.PathLike) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


class PublicSide:
    """GETs through the public TLS proxy, dialling 127.0.0.1 and verifying the name ``jupyterhub``."""

    def __init__(self, port: int, ca_file: Path):
        self.port, self.context = port, client_context(ca_file)

    def status(self, path: str, token: str | None = None) -> int:
        conn = NamedHTTPSConnection("127.0.0.1", self.port, tls_name=TLS_NAME, context=self.context, timeout=10)
        try:
            conn.request("GET", path, headers={"Authorization": f"token {token}"} if token else {})
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()
