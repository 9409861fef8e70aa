"""Recording one full run of `env` or `get` for the export memo (vault/cli/memo.py): every
file it opens (a Python audit hook on `open`), every environment variable it reads (a
recording `os.environ` and `os.environb`), and whatever rules an entry out: a file opened for
writing, renamed or removed, a process started, a connection to anything but the agent, a
lock taken, a change to the environment, anything written to standard error, a failure of
the recorder itself.

A file is digested when it is opened, before the run reads it, and again when the entry is
kept: an entry is kept only when the two agree, so a file edited while the run used it (even
an edit that keeps its size and times, as on a file system with coarse timestamps) never
leaves an entry that pairs the old output with the new contents.

Imported only by a run the memo could not answer.
"""

# ruff: noqa: PTH109, PTH117, PTH118
from __future__ import annotations

import os
import sys

from vault.cli.memo_entry import MISSING, contents, digest_of, status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CODE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")  # keyvault's modules are followed as code
WHOLE_ENVIRONMENT = "*"  # the name noted when a run lists the whole environment

# audit events that change something or reach something: a run with one keeps no entry
SIDE_EFFECTS = frozenset({
    "os.chmod", "os.chown", "os.link", "os.mkdir", "os.remove", "os.rename", "os.rmdir",
    "os.symlink", "os.truncate", "os.utime", "os.setxattr", "os.removexattr", "os.putenv",
    "os.unsetenv", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn",
    "os.system", "os.kill", "os.killpg", "subprocess.Popen", "shutil.copyfile",
    "shutil.copymode", "shutil.copystat", "shutil.move", "shutil.rmtree", "shutil.chown",
    "tempfile.mkstemp", "tempfile.mkdtemp", "fcntl.flock", "fcntl.lockf", "msvcrt.locking",
    "socket.bind", "socket.sendto", "urllib.Request", "http.client.connect",
})  # fmt: skip
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Recording:
    """What one full run opened and read from the environment, and whether it did anything
    that rules an entry out (`spoiled` says what)."""

    def __init__(self, agent: str) -> None:
        self.agent = agent  # the one socket a run may connect to
        # path -> `contents` when it was first opened (`status` only for a module's file:
        # digesting every module a full run imports would cost it milliseconds)
        self.opened: dict[str, bytes] = {}
        self.variables: dict[str, bytes] = {}  # name -> digest of the value read, or MISSING
        self.spoiled = ""

    def on_open(self, path: str, mode: object, flags: object) -> None:
        writes = isinstance(flags, int) and flags & WRITE_FLAGS
        if writes or (isinstance(mode, str) and any(c in mode for c in "wax+")):
            self.spoiled = f"opened {path} for writing"
        elif path not in self.opened:
            self.opened[path] = b""  # `contents` opens it too: that event finds it here
            code = path.endswith(CODE_SUFFIXES)
            self.opened[path] = status(path) if code else contents(path)

    def on_variable(self, name: str | bytes, value: str | bytes | None) -> None:
        name = os.fsdecode(name)  # os.environb's names and values are os.environ's, encoded
        if name not in self.variables:
            self.variables[name] = MISSING if value is None else digest_of(os.fsdecode(value))

    def on_event(self, event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path = args[0]
            if isinstance(path, os.PathLike):
                path = os.fspath(path)
            if isinstance(path, (str, bytes)):  # not a file descriptor being wrapped
                name = os.fsdecode(path)
                # from the working folder as the kernel resolves it: `link/..` is kept
                absolute = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
                self.on_open(absolute, args[1], args[2])
        elif event in SIDE_EFFECTS:
            self.spoiled = event
        elif event == "socket.connect" and args[1] != self.agent:
            self.spoiled = "connected elsewhere than the agent"

    def watch(self, run: Callable[[], object]) -> None:
        """`run()` with this recording watching (see the module docstring)."""
        global _active  # noqa: PLW0603 - one recorded run at a time, in one process
        _install_audit_hook()
        real_environ, real_environb, real_stderr = os.environ, os.environb, sys.stderr
        # the same variables, looked up through the recorder
        os.environ = RecordingEnviron(real_environ, self)  # noqa: B003
        os.environb = RecordingEnviron(real_environb, self)  # type: ignore[arg-type,assignment]
        if real_stderr is None:
            # `2>&-`: a warning goes nowhere (report.py), unseen here; an entry would then
            # skip it for runs whose standard error is open
            self.spoiled = "standard error is closed"
        else:
            sys.stderr = WatchedStream(real_stderr, self)  # type: ignore[assignment,unused-ignore]
        _active = self
        try:
            run()
        finally:
            _active = None
            os.environ, os.environb, sys.stderr = real_environ, real_environb, real_stderr


_active: Recording | None = None
_hooked = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    recording = _active
    if recording is not None and not recording.spoiled:
        try:
            recording.on_event(event, args)
        except Exception as exc:  # raised here, it would fail the operation
            recording.spoiled = f"the recorder failed on {event} ({type(exc).__name__})"


def _install_audit_hook() -> None:
    global _hooked  # noqa: PLW0603
    if not _hooked:
        sys.addaudithook(_audit)  # a hook cannot be removed: it does nothing between runs
        _hooked = True


class RecordingEnviron(os._Environ[str]):
    """`os.environ` (or `os.environb`) while a run is recorded: the real mapping's own
    variables and behaviour, every lookup noted, whichever method makes it (`get`, `in`,
    `pop`, `setdefault`: `Mapping` builds each on `__getitem__`); listing or counting them
    notes the whole environment; a change rules the entry out, and is still made."""

    def __init__(self, real: os._Environ[str], recording: Recording) -> None:
        # os.environb too: its names and values are bytes, recorded as os.environ's
        data = real._data  # type: ignore[attr-defined]  # shared, not copied
        super().__init__(data, real.encodekey, real.decodekey, real.encodevalue, real.decodevalue)
        self._recording = recording

    def __getitem__(self, name: str) -> str:
        try:
            value = super().__getitem__(name)
        except KeyError:
            self._recording.on_variable(name, None)
            raise
        self._recording.on_variable(name, value)
        return value

    def __iter__(self) -> Iterator[str]:
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().__iter__()

    def __len__(self) -> int:
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().__len__()

    def __repr__(self) -> str:
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().__repr__()

    def __setitem__(self, name: str, value: str) -> None:
        self._recording.spoiled = "changed the environment"
        super().__setitem__(name, value)

    def __delitem__(self, name: str) -> None:
        self._recording.spoiled = "changed the environment"
        super().__delitem__(name)


class WatchedStream:
    """Standard error while a run is recorded: anything written there rules the entry out
    (a warning is printed on every run, never skipped by the memo)."""

    def __init__(self, stream: object, recording: Recording) -> None:
        self._stream, self._recording = stream, recording

    def write(self, data: object) -> object:
        self._recording.spoiled = "wrote to standard error"
        return self._stream.write(data)  # type: ignore[attr-defined]

    def writelines(self, lines: object) -> object:
        self._recording.spoiled = "wrote to standard error"
        return self._stream.writelines(lines)  # type: ignore[attr-defined]

    @property
    def buffer(self) -> WatchedStream:
        return WatchedStream(self._stream.buffer, self._recording)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
