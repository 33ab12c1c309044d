"""The hub's address taken over, for the trust tests: a `NetRelay` (tests/net_relay.py) the login and the bridge dial
as the hub, which a test turns from the real hub (its `target`) to an `Impostor` (a TLS server with another
certificate for the hub's name) mid-run; the impostor records every byte a client sends it after a handshake, so
that "nothing sent" is what it saw."""

import socket
import ssl
import threading

import trustme

IO_TIMEOUT = 30.0


class Impostor:
    """A TLS server for `tls_name` with a certificate of `ca` (a fresh CA unless given): records what clients send
    once the handshake is done, answers 404."""

    def __init__(self, tls_name: str, ca: trustme.CA | None = None) -> None:
        self.ca = ca or trustme.CA(organization_name="impostor CA")
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(tls_name).configure_cert(self.tls)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.received: list[bytes] = []
        self.handshakes = 0  # handshakes a client completed (it trusted the impostor)
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self.answer, args=(client,), daemon=True).start()

    def answer(self, client: socket.socket) -> None:
        client.settimeout(IO_TIMEOUT)
        try:
            with self.tls.wrap_socket(client, server_side=True) as tls:
                self.handshakes += 1
                data = tls.recv(65536)
                if data:
                    self.received.append(data)
                    tls.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass  # the client refused the certificate: what a verifying client does

    def close(self) -> None:
        self.server.close()
