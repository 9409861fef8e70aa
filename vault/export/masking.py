"""`keyvault exec` output masking, as `op run` does: the project's keys never reach the
terminal or a CI log through the command's stdout or stderr.

The command runs as a child whose stdout and stderr are pipes; two threads copy them to ours,
replacing every key with `<concealed by keyvault>`. A key may arrive split across two reads
(a program writing character by character, a 64 KiB boundary), so the end of each chunk that
could be the start of a key is held back until the next read decides. What that costs (the
reason for `--no-masking`): the command writes to a pipe, not the terminal, so it sees no
terminal on stdout and stderr (no colours, block buffering in some programs), and keyvault
stays alive as its parent. Its exit status and a killing signal are still passed on, and
SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 sent to keyvault are forwarded; Ctrl-C reaches the
command directly from the terminal, as it is in the same process group.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence

from vault.export import windows_program
from vault.model.entry import Entry
from vault.model.secret import KNOWN_PREFIXES

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs ~2 ms at import, on the exec path
    from typing import Any, Final, NoReturn

MASK: Final = b"<concealed by keyvault>"
# a partial key held this long with nothing more arriving is let out if it shows no more
# than the key's public prefix (`sk-proj-`): a prompt ending in "s" must not wait forever
IDLE_SECONDS: Final = 0.05
CHUNK: Final = 65536
FORWARDED: Final = ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2")
# left to the child: the terminal sends these to the whole foreground process group
LEFT_TO_CHILD: Final = ("SIGINT", "SIGQUIT")


def _public_length(secret: bytes) -> int:
    heads = [p.encode() for p in KNOWN_PREFIXES if secret.startswith(p.encode())]
    return max(map(len, heads), default=0)


class StreamMasker:
    """Replaces each secret in a byte stream fed in arbitrary pieces."""

    def __init__(self, secrets: Iterable[bytes], mask: bytes = MASK) -> None:
        # longest first, so a key that contains another is replaced whole
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.mask = mask
        self.held = b""

    def feed(self, data: bytes) -> bytes:
        """What can be written now of everything fed so far."""
        text, out = self.held + data, []
        position = 0
        while (found := self._next(text, position)) is not None:
            start, secret = found
            out += [text[position:start], self.mask]
            position = start + len(secret)
        rest = text[position:]
        keep = self._partial(rest)
        self.held = rest[len(rest) - keep :] if keep else b""
        out.append(rest[: len(rest) - keep])
        return b"".join(out)

    def idle(self) -> bytes:
        """Nothing arrived for a while: let out a held tail that shows only a public prefix."""
        if self.held and all(
            len(self.held) <= _public_length(s) for s in self.secrets if s.startswith(self.held)
        ):
            out, self.held = self.held, b""
            return out
        return b""

    def close(self) -> bytes:
        """The stream ended: a held tail beyond a public prefix was a cut key; mask it."""
        out = self.idle() or (self.mask if self.held else b"")
        self.held = b""
        return out

    def _next(self, text: bytes, position: int) -> tuple[int, bytes] | None:
        """The earliest secret at or after `position` (the longest one at that place)."""
        best: tuple[int, bytes] | None = None
        for secret in self.secrets:
            start = text.find(secret, position)
            if start >= 0 and (best is None or start < best[0]):
                best = (start, secret)
        return best

    def _partial(self, text: bytes) -> int:
        """Length of the longest end of `text` that a secret starts with (not whole)."""
        longest = 0
        for secret in self.secrets:
            tail = text[-(len(secret) - 1) :] if len(secret) > 1 else b""
            start = tail.find(secret[:1])
            while start >= 0:
                if secret.startswith(tail[start:]):
                    longest = max(longest, len(tail) - start)
                    break
                start = tail.find(secret[:1], start + 1)
        return longest


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _pump(source: int, target: int, masker: StreamMasker) -> None:
    """Copy `source` to `target` through `masker` until the child closes it. When our reader
    left (EPIPE), close `source` so the child meets the broken pipe on its next write."""
    waits = os.name != "nt"  # select() works on pipes on POSIX only
    try:
        while True:
            if waits and not select.select([source], [], [], IDLE_SECONDS)[0]:
                _write_all(target, masker.idle())
                continue
            chunk = os.read(source, CHUNK)
            if not chunk:
                _write_all(target, masker.close())
                return
            _write_all(target, masker.feed(chunk))
    except BrokenPipeError:
        return
    finally:
        os.close(source)


def project_secrets(entries: Iterable[Entry]) -> list[str]:
    """The keys to mask: every key of the project, not only the exported one (a program may
    read another from a .env file)."""
    return [e.secret.reveal() for e in entries]


def run_masked(
    program: str, argv: Sequence[str], env: Mapping[str, str], *, secrets: Collection[str]
) -> NoReturn:
    """Run `argv` with stdout and stderr masked, then leave as it left: its exit code, or
    killed by the same signal. Raises FileNotFoundError/OSError as execvpe would."""
    previous = {name: _ignore(name) for name in LEFT_TO_CHILD if hasattr(signal, name)}
    child, readers = _spawn(program, argv, env)
    for name in FORWARDED:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda sig, _frame: child.send_signal(sig))
    pumps = [
        threading.Thread(
            target=_pump, args=(fd, target, StreamMasker(s.encode() for s in secrets)), daemon=True
        )
        for fd, target in zip(readers, (1, 2), strict=True)
    ]
    for pump in pumps:
        pump.start()
    code = child.wait()
    for pump in pumps:
        pump.join()
    for name, handler in previous.items():
        signal.signal(getattr(signal, name), handler)
    _leave_like(code)


def _spawn(
    program: str, argv: Sequence[str], env: Mapping[str, str]
) -> tuple[subprocess.Popen[bytes], tuple[int, int]]:
    """The child, its stdout and stderr the write ends of two pipes whose read ends we keep
    (our own fds, closed by the pumps; no file objects that would close them twice)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    try:
        child = subprocess.Popen(
            [windows_program(program, env), *argv[1:]],
            env=dict(env),
            stdout=out_write,
            stderr=err_write,
        )
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        os.close(out_write)
        os.close(err_write)
    return child, (out_read, err_read)


def _ignore(name: str) -> Any:
    """A no-op handler (not SIG_IGN, which the child would inherit across exec); returns
    the handler it replaced."""
    number = getattr(signal, name)
    previous = signal.getsignal(number)
    signal.signal(number, lambda _sig, _frame: None)
    return previous


def _leave_like(code: int) -> NoReturn:
    """Exit as the child did: with its code, or by the signal that killed it."""
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0 and os.name != "nt":
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code if code >= 0 else 128 - code)
