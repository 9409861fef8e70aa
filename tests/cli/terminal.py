"""Run the CLI on a real pseudo-terminal, for the prompts a person answers.

`Terminal` is `python -m vault` as the session leader of a new pty, so getpass, click's
confirm and `isatty()` behave as they do in a terminal; the test reads what the user would
see (stdout and stderr together) and types answers.
"""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class Terminal:
    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None
    ) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes keyvault on the pty
            try:
                if cwd is not None:
                    os.chdir(cwd)
                argv_ = [sys.executable, "-m", "vault", *argv]
                os.execve(sys.executable, argv_, dict(env))  # noqa: S606 - our own CLI
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.screen = b""
        self._seen = 0  # expect() looks only at output after the last match
        self.code: int | None = None

    def _read(self, timeout: float) -> bool:
        if not select.select([self.fd], [], [], timeout)[0]:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        self.screen += data
        return bool(data)

    def expect(self, text: str, timeout: float = 30) -> str:
        """Wait until `text` appears; return the output up to it."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while wanted not in self.screen[self._seen :]:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.5)):
                if wanted in self.screen[self._seen :]:
                    break
                raise AssertionError(f"never saw {text!r}; screen:\n{self.text}")
        end = self.screen.index(wanted, self._seen) + len(wanted)
        before, self._seen = self.screen[self._seen : end], end
        return before.decode("utf-8", "replace")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def wait(self, timeout: float = 60) -> int:
        """Read everything until the child exits; its exit code (-N for signal N)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                while self._read(0.05):
                    pass
                os.close(self.fd)
                self.code = os.waitstatus_to_exitcode(status)
                return self.code
            self._read(0.05)
        os.kill(self.pid, 9)
        raise AssertionError(f"still running after {timeout} s; screen:\n{self.text}")

    @property
    def text(self) -> str:
        return self.screen.decode("utf-8", "replace")


def in_terminal(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> Terminal:
    return Terminal(argv, env, cwd)
