"""A loopback TCP relay the test (or bench/resume.py) controls, between the bridge and a real hub: the network the
bridge dials through.

TLS passes through it untouched (the bridge dials the relay's port with the hub's TLS name). `cut(seconds)` closes
every connection at once and refuses new ones for that long (a dropped link, a restarted proxy); `stall()` stops
forwarding bytes without a FIN or RST (a sleeping laptop, a Wi-Fi change) until `resume()`. One thread per
connection, at most MAX_CONNECTIONS, all stopped by `stop()` (a context manager)."""

import select
import socket
import struct
import threading
import time

MAX_CONNECTIONS = 64
TICK = 0.05  # seconds a thread waits before it looks at the relay's state again
CHUNK = 65536


def reset(sock: socket.socket) -> None:
    """Close with an RST, as a refused or cut connection looks."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class NetRelay:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TICK)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.refuse_until = 0.0
        self.flowing = threading.Event()
        self.flowing.set()
        self.stopped = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepted = 0  # connections forwarded, for the tests' reports
        self.acceptor = threading.Thread(target=self._accept, name="net-relay", daemon=True)
        self.acceptor.start()

    def __enter__(self) -> "NetRelay":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def cut(self, seconds: float) -> None:
        """Every connection closed now; new ones refused for `seconds`."""
        with self.lock:
            self.refuse_until = time.monotonic() + seconds
            pairs, self.pairs = self.pairs, []
        for a, b in pairs:
            reset(a)
            reset(b)

    def stall(self) -> None:
        """No byte forwarded, on open or new connections, until resume(); nothing is closed."""
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def heal(self) -> None:
        """Forwarding again, and new connections accepted: waits for a cut's refusal to end."""
        self.resume()
        with self.lock:
            left = self.refuse_until - time.monotonic()
        if left > 0:
            time.sleep(left)  # the cut's own length: the relay refuses until then

    def stop(self) -> None:
        self.stopped.set()
        self.flowing.set()
        self.cut(0)
        self.listener.close()
        for t in [self.acceptor, *self.threads]:
            t.join(timeout=5)

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                refuse = time.monotonic() < self.refuse_until or len(self.pairs) >= MAX_CONNECTIONS
            if refuse:
                reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                reset(client)
                continue
            with self.lock:
                self.pairs.append((client, upstream))
                self.accepted += 1
            self.threads = [t for t in self.threads if t.is_alive()]
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peer = {a: b, b: a}
        try:
            while not self.stopped.is_set():
                if not self.flowing.wait(TICK):
                    continue
                readable, _, _ = select.select([a, b], [], [], TICK)
                for sock in readable:
                    if not self.flowing.is_set():
                        break
                    data = sock.recv(CHUNK)
                    if not data:
                        return
                    peer[sock].sendall(data)
        except (OSError, ValueError):
            return  # cut: the sockets were closed under us
        finally:
            with self.lock:
                if (a, b) in self.pairs:
                    self.pairs.remove((a, b))
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass
