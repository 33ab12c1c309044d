"""A command on a terminal of its own (a pseudo-terminal), as a user runs it: what it prints, and answers typed
when a prompt appears. For the prompts that appear only on a terminal (login's confirmations)."""

import os
import pty
import subprocess
import threading
import time

from devhub.stop import stop_processes


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str]):
        main, side = pty.openpty()
        self.proc = subprocess.Popen(args, env=env, stdin=side, stdout=side, stderr=side, start_new_session=True)
        os.close(side)
        self.main, self.text, self.lock = main, "", threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.main, 4096)
            except OSError:  # the command ended: the terminal is gone
                return
            if not chunk:
                return
            with self.lock:
                self.text += chunk.decode(errors="replace").replace("\r\n", "\n")

    def output(self) -> str:
        with self.lock:
            return self.text

    def wait_for(self, words: str, timeout: float = 120) -> str:
        """The output once it holds `words` (fails with the output after `timeout` s or when the command ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if words in (seen := self.output()):
                return seen
            if self.proc.poll() is not None:
                time.sleep(0.2)  # what it printed last
                if words in (seen := self.output()):
                    return seen
                break
            time.sleep(0.05)
        raise AssertionError(f"no {words!r} on the terminal; it shows:\n{self.output()}")

    def type(self, line: str) -> None:
        os.write(self.main, f"{line}\n".encode())

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        try:
            status = self.proc.wait(timeout)
        finally:
            stop_processes([self.proc], 10, group=True)
        time.sleep(0.2)  # the reader's last chunk
        os.close(self.main)
        return status, self.output()
