"""Recording one full run of `env` or `get` for the export memo (vault/cli/memo.py): every
file it opens (a Python audit hook on `open`), every environment variable it reads (a
recording `os.environ`), and whatever rules an entry out: a file opened for writing, renamed
or removed, a process started, a connection to anything but the agent, a lock taken, a
change to the environment, anything written to standard error.

Imported only by a run the memo could not answer.
"""

# ruff: noqa: PTH109, PTH117, PTH118
from __future__ import annotations

import os
import sys

from vault.cli.memo_entry import MISSING, digest_of, status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, MutableMapping

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
        self.opened: dict[str, bytes] = {}  # path -> its status when it was first opened
        self.variables: dict[str, bytes] = {}  # name -> digest of the value read, or MISSING
        self.spoiled = ""

    def on_open(self, path: str, mode: object, flags: object) -> None:
        writes = isinstance(flags, int) and flags & WRITE_FLAGS
        if writes or (isinstance(mode, str) and any(c in mode for c in "wax+")):
            self.spoiled = f"opened {path} for writing"
        elif not path.endswith(CODE_SUFFIXES) and path not in self.opened:
            self.opened[path] = status(path)

    def on_variable(self, name: str, value: str | None) -> None:
        if name not in self.variables:
            self.variables[name] = MISSING if value is None else digest_of(value)

    def on_event(self, event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path = args[0]
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
        real_environ, real_stderr = os.environ, sys.stderr
        # the same variables, looked up through the recorder (nothing is cleared or set)
        os.environ = RecordingEnviron(real_environ, self)  # type: ignore[assignment]  # noqa: B003
        sys.stderr = WatchedStream(real_stderr, self)  # type: ignore[assignment,unused-ignore]
        _active = self
        try:
            run()
        finally:
            _active = None
            os.environ, sys.stderr = real_environ, real_stderr


_active: Recording | None = None
_hooked = False


def _audit(event: str, args: tuple[object, ...]) -> None:
    recording = _active
    if recording is not None and not recording.spoiled:
        recording.on_event(event, args)


def _install_audit_hook() -> None:
    global _hooked  # noqa: PLW0603
    if not _hooked:
        sys.addaudithook(_audit)  # a hook cannot be removed: it does nothing between runs
        _hooked = True


class RecordingEnviron(dict[str, str]):
    """`os.environ` while a run is recorded: every variable looked up is noted; listing them
    all notes the whole environment; changing one rules the entry out."""

    def __init__(self, real: MutableMapping[str, str], recording: Recording) -> None:
        super().__init__(real)
        self._real, self._recording = real, recording

    def __getitem__(self, name: str) -> str:
        value = dict.get(self, name)
        self._recording.on_variable(name, value)
        if value is None:
            raise KeyError(name)
        return value

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        value = dict.get(self, name)
        self._recording.on_variable(name, value)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def _everything(self) -> None:
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")

    def __iter__(self) -> Iterator[str]:
        self._everything()
        return super().__iter__()

    def keys(self):  # type: ignore[no-untyped-def]
        self._everything()
        return super().keys()

    def items(self):  # type: ignore[no-untyped-def]
        self._everything()
        return super().items()

    def values(self):  # type: ignore[no-untyped-def]
        self._everything()
        return super().values()

    def copy(self) -> dict[str, str]:
        self._everything()
        return dict(self)

    def __setitem__(self, name: str, value: str) -> None:
        self._recording.spoiled = "changed the environment"
        self._real[name] = value
        super().__setitem__(name, value)

    def __delitem__(self, name: str) -> None:
        self._recording.spoiled = "changed the environment"
        del self._real[name]
        super().__delitem__(name)


class WatchedStream:
    """Standard error while a run is recorded: anything written there rules the entry out
    (a warning is printed on every run, never skipped by the memo)."""

    def __init__(self, stream: object, recording: Recording) -> None:
        self._stream, self._recording = stream, recording

    def write(self, data: object) -> object:
        self._recording.spoiled = "wrote to standard error"
        return self._stream.write(data)  # type: ignore[attr-defined]

    @property
    def buffer(self) -> WatchedStream:
        return WatchedStream(self._stream.buffer, self._recording)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
