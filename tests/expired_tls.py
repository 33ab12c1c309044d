"""A TLS server on 127.0.0.1 with an expired certificate: what a hub whose certificate ran out looks like."""

import datetime
import socket
import ssl
import threading
from contextlib import contextmanager
from pathlib import Path

import trustme


@contextmanager
def expired_hub(tmp_path: Path):
    """A TLS server on 127.0.0.1 whose certificate for 'jupyterhub' expired in 2001; yields (port, CA file)."""
    ca = trustme.CA()
    leaf = ca.issue_cert("jupyterhub", not_before=datetime.datetime(2000, 1, 1),
                         not_after=datetime.datetime(2001, 1, 1))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    ca_file = tmp_path / "expired-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                conn.settimeout(5)
                ctx.wrap_socket(conn, server_side=True).close()
            except (OSError, ssl.SSLError):
                conn.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], str(ca_file)
    finally:
        stop.set()
        thread.join(5)
        listener.close()
