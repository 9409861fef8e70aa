"""The export memo: `keyvault env` and `get` printed again, without opening the vault, while
nothing they depended on has changed.

`eval "$(keyvault env)"` runs in every new shell and `$(keyvault get)` in scripts; most of
their time is importing and running the code that reads the vault document (issue 16). With
a session unlocked, a run whose standard output is a pipe (what `$(…)` and `| source` give)
asks the session agent for an entry kept by an earlier run of the same command line, in
the same folder, for the same vault home. The entry holds what that run printed and
everything it depended on:

- every file it opened, by path: its status (device, inode, type and mode, owner, size,
  modification and change times, and the same through a symlink) and a BLAKE2b digest of its
  contents; a file it tried to open and found missing counts as "missing";
- every environment variable it read, by a digest of its value ("unset" when it was not set);
  a run that listed the whole environment depends on all of it;
- the status of the vault home folder (a file created or removed in it, a chmod), of every
  `.keyvault.toml` from the working folder up to the root, and of keyvault's own modules;
- the parent process's name (the shell `env` writes for, when `--shell` is not given).

The entry is printed only when every one of them is still the same; anything else is a full
run, which keeps a new entry. So a saved vault, an edited `config.toml` or project file, a
new pin, a changed `KEYVAULT_*` variable or an upgrade of keyvault each mean a full run. The
files and variables are seen as the code uses them (an audit hook on `open`, a recording
`os.environ`), not listed here, so a new input of `env` is followed without anyone updating
this module.

A run keeps no entry when it wrote anything to standard error (a warning is printed every
time, never skipped), failed, wrote or removed a file, started a process, connected anywhere
but the agent, or when a file it read changed while it ran. Entries live in the agent's
memory only (vault/session/agent.py): same uid only, like the plaintext it already decrypts
for us; gone on `lock` and at the session's end. Standard output that is a terminal or a file
is never answered from the memo (their warnings depend on it).

This module is imported by every `env` and `get`: os, sys and the agent's transport only; no
json, re, enum or pathlib.
"""

# os.path, not pathlib: see the module docstring
# ruff: noqa: PTH100, PTH109, PTH110, PTH116, PTH117, PTH118, PTH120
from __future__ import annotations

import os
import stat
import sys

from vault.cli import output
from vault.session.runtime import socket_path
from vault.session.wire import exchange_frames
from vault.store.folders import PROJECT_FILE, vault_home

try:
    from _blake2 import blake2b
except ImportError:  # pragma: no cover - CPython always has it
    from hashlib import blake2b

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, MutableMapping, Sequence

FORMAT = b"keyvault-memo-2"
GET = b'{"op": "memo-get"}'
PUT = b'{"op": "memo-put"}'
HIT = b'{"memo": "hit"}'  # json.dumps({"memo": "hit"}), as the agent writes it
MAX_ENTRY = 256 << 10  # the agent's limit (agent.MEMO_ENTRY_BYTES)
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")
PARENT_NAME = "/proc/{}/comm"  # where Linux names our parent (shells.parent_process_name)
MISSING = b"missing"
WHOLE_ENVIRONMENT = "*"

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


class Memo:
    """One run's use of the memo: its key and the agent that keeps the entries."""

    def __init__(self, key: bytes, agent: str, home: str, cwd: str) -> None:
        self.key, self.agent, self.home, self.cwd = key, agent, home, cwd

    def replay(self) -> bool:
        """Print the kept entry when everything it depended on is unchanged; True if so."""
        replied = exchange_frames(self.agent, GET, self.key)
        if replied is None or replied[0] != HIT:
            return False
        entry = _parse(replied[1])
        if entry is None:
            return False
        printed, dependencies = entry
        if any(_current(kind, name, self) != seen for kind, name, seen in dependencies):
            return False
        for kind, data in printed:
            if kind == output.TEXT:
                output.write_text(data.decode("utf-8", "surrogateescape"))
            else:
                output.write_bytes(data)
        return True

    def keep(self, printed: list[tuple[bytes, bytes]], seen: Recording) -> None:
        """Hand the agent what a clean full run printed and depended on."""
        dependencies = seen.dependencies(self)
        if dependencies is None:
            return
        entry = _encode(printed, dependencies)
        if len(entry) <= MAX_ENTRY:
            exchange_frames(self.agent, PUT, self.key + entry)


def memo_for(argv: Sequence[str], given_home: str | None) -> Memo | None:
    """The memo for this command line, or None when it does not apply: standard output is
    not a pipe, no session socket is there, or anything about the folders is unusual (the
    full run then says what)."""
    try:
        if not _stdout_is_a_pipe():
            return None
        home = vault_home(given_home, os.environ)
        agent = socket_path(home)
        cwd = os.getcwd()
    except Exception:
        return None
    if not agent or not os.path.exists(agent):
        return None
    key = blake2b(digest_size=32, person=b"keyvault-memo")
    for part in (FORMAT, sys.version, sys.executable, PACKAGE, home, cwd, str(os.geteuid())):
        _feed(key, part)
    for arg in argv:
        _feed(key, arg)
    return Memo(key.digest(), agent, home, cwd)


def _stdout_is_a_pipe() -> bool:
    if sys.stdout is None:
        return False
    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


# --- recording a full run -------------------------------------------------------------------


class Recording:
    """What one full run opened, read from the environment, and whether it did anything that
    rules an entry out."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.opened: dict[str, bytes] = {}  # path -> its status when it was opened
        self.variables: dict[str, bytes] = {}  # name -> digest of the value read, or MISSING
        self.spoiled = ""  # why this run keeps no entry

    def on_open(self, path: str, mode: object, flags: object) -> None:
        if (isinstance(flags, int) and flags & WRITE_FLAGS) or (
            isinstance(mode, str) and any(c in mode for c in "wax+")
        ):
            self.spoiled = f"opened {path} for writing"
        elif not path.endswith(CODE_SUFFIXES) and path not in self.opened:
            self.opened[path] = status(path)

    def on_variable(self, name: str, value: str | None) -> None:
        if name not in self.variables:
            self.variables[name] = MISSING if value is None else _digest(value)

    def dependencies(self, memo: Memo) -> list[tuple[bytes, str, bytes]] | None:
        """Everything the run depended on, as the hit path will check it; None when a file
        changed while the run used it."""
        found: list[tuple[bytes, str, bytes]] = []
        parent_name = PARENT_NAME.format(os.getppid())
        for path, when_opened in self.opened.items():
            if path == parent_name:
                found.append((b"P", "", _current(b"P", "", memo)))
                continue
            now = contents(path)
            if not now.startswith(when_opened):
                return None
            found.append((b"F", path, now))
        if WHOLE_ENVIRONMENT in self.variables:
            found.append((b"E", "", _current(b"E", "", memo)))
        found += [
            (b"V", name, seen) for name, seen in self.variables.items() if name != WHOLE_ENVIRONMENT
        ]
        found += [(b"S", path, status(path)) for path in _stat_only(memo)]
        found += [(b"S", path, status(path)) for path in _code_files()]
        return found


_recording: Recording | None = None


def _audit(event: str, args: tuple[object, ...]) -> None:
    recording = _recording
    if recording is None or recording.spoiled:
        return
    if event == "open":
        path = args[0]
        if isinstance(path, (str, bytes)):
            name = os.fsdecode(path)
            # from the working folder as the kernel resolves it: `link/..` is not collapsed
            absolute = name if os.path.isabs(name) else os.path.join(os.getcwd(), name)
            recording.on_open(absolute, args[1], args[2])
    elif event in SIDE_EFFECTS:
        recording.spoiled = event
    elif event == "socket.connect" and args[1] != recording.agent:
        recording.spoiled = "connected elsewhere than the agent"


class RecordingEnviron(dict[str, str]):
    """`os.environ` while a run is recorded: every variable looked up is noted."""

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
        if not isinstance(name, str):
            return False
        return self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().__iter__()

    def keys(self):  # type: ignore[no-untyped-def]
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().keys()

    def items(self):  # type: ignore[no-untyped-def]
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().items()

    def values(self):  # type: ignore[no-untyped-def]
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
        return super().values()

    def copy(self) -> dict[str, str]:
        self._recording.on_variable(WHOLE_ENVIRONMENT, "")
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
    """Standard error while a run is recorded: anything written there rules the entry out."""

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


def recorded(memo: Memo, run: Callable[[], object]) -> Recording:
    """`run()` (the full command) recorded, and its entry kept when it qualifies."""
    global _recording  # noqa: PLW0603 - one recorded run at a time, in one process
    recording = Recording(memo.agent)
    _install_audit_hook()
    real_environ, real_stderr = os.environ, sys.stderr
    # the same variables, looked up through the recorder (nothing is cleared or set)
    os.environ = RecordingEnviron(real_environ, recording)  # type: ignore[assignment]  # noqa: B003
    sys.stderr = WatchedStream(real_stderr, recording)  # type: ignore[assignment,unused-ignore]
    output.start_keeping()
    _recording = recording
    try:
        run()
    finally:
        _recording = None
        printed = output.stop_keeping()
        os.environ, sys.stderr = real_environ, real_stderr
    if recording.spoiled or not printed:
        return recording
    try:  # noqa: SIM105 - not contextlib.suppress: one import less on every `env`
        memo.keep(printed, recording)
    except Exception:  # noqa: S110 - an entry not kept only means a full run next time
        pass
    return recording


_hooked = False


def _install_audit_hook() -> None:
    global _hooked  # noqa: PLW0603
    if not _hooked:
        sys.addaudithook(_audit)  # a hook cannot be removed: it does nothing between runs
        _hooked = True


# --- what a dependency is now ----------------------------------------------------------------


def _current(kind: bytes, name: str, memo: Memo) -> bytes:
    if kind == b"F":
        return contents(name)
    if kind == b"S":
        return status(name)
    if kind == b"V":
        value = os.environ.get(name)
        return MISSING if value is None else _digest(value)
    if kind == b"P":
        return contents(PARENT_NAME.format(os.getppid()), with_status=False)
    if kind == b"E":
        everything = blake2b(digest_size=32)
        for key, value in sorted(os.environ.items()):
            _feed(everything, key)
            _feed(everything, value)
        return everything.digest()
    return b"?"  # an entry from another format: never equal


def status(path: str) -> bytes:
    """A file's status as `open` would meet it: its own, and its target's if it is a link."""
    try:
        own = os.lstat(path)
    except FileNotFoundError:
        return MISSING
    except OSError as exc:
        return b"error %d" % (exc.errno or 0)
    line = _status_line(own)
    if stat.S_ISLNK(own.st_mode):
        try:
            line += b" -> " + _status_line(os.stat(path))
        except OSError as exc:
            line += b" -> error %d" % (exc.errno or 0)
    return line


def _status_line(info: os.stat_result) -> bytes:
    return b"%d %d %o %d %d %d %d" % (
        info.st_dev,
        info.st_ino,
        info.st_mode,
        info.st_uid,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
    )


def contents(path: str, *, with_status: bool = True) -> bytes:
    """`status(path)` and a digest of what a regular file holds (a FIFO is never read)."""
    line = status(path) if with_status else b""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC)
    except OSError:
        return line
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return line
        digest = blake2b(digest_size=32)
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
        return line + b" " + digest.hexdigest().encode()
    except OSError:
        return line + b" unreadable"
    finally:
        os.close(fd)


def _stat_only(memo: Memo) -> list[str]:
    """What a run may look at without opening: the vault home (a file made or removed in it)
    and every `.keyvault.toml` from the working folder up."""
    found = [memo.home]
    folder = memo.cwd
    while True:
        found.append(os.path.join(folder, PROJECT_FILE))
        parent = os.path.dirname(folder)
        if parent == folder:
            return found
        folder = parent


def _code_files() -> list[str]:
    """keyvault's modules this process has loaded: a new version means a full run."""
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "vault" or name.startswith("vault.")) and isinstance(path, str):
            found.append(path)
    return sorted(found)


# --- the entry's bytes -----------------------------------------------------------------------


def _encode(
    printed: list[tuple[bytes, bytes]], dependencies: list[tuple[bytes, str, bytes]]
) -> bytes:
    parts = [FORMAT, b"%d" % len(printed)]
    for kind, data in printed:
        parts += [kind, data]
    for kind, name, seen in dependencies:
        parts += [kind, os.fsencode(name), seen]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _parse(
    entry: bytes,
) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, str, bytes]]] | None:
    """The entry's printed parts and dependencies; None for anything malformed."""
    parts: list[bytes] = []
    index = 0
    while index < len(entry):
        size = int.from_bytes(entry[index : index + 4], "big")
        index += 4
        if index + size > len(entry):
            return None
        parts.append(entry[index : index + size])
        index += size
    if len(parts) < 2 or parts[0] != FORMAT or not parts[1].isdigit():
        return None
    count = int(parts[1])
    printed_end = 2 + 2 * count
    rest = parts[printed_end:]
    if len(parts) < printed_end or len(rest) % 3:
        return None
    printed = [(parts[i], parts[i + 1]) for i in range(2, printed_end, 2)]
    dependencies = [
        (rest[i], os.fsdecode(rest[i + 1]), rest[i + 2]) for i in range(0, len(rest), 3)
    ]
    return printed, dependencies


def _feed(digest: object, part: str | bytes) -> None:
    data = part if isinstance(part, bytes) else part.encode("utf-8", "surrogateescape")
    digest.update(len(data).to_bytes(8, "big") + data)  # type: ignore[attr-defined]


def _digest(value: str) -> bytes:
    return blake2b(value.encode("utf-8", "surrogateescape"), digest_size=32).hexdigest().encode()


__all__ = ["Memo", "Recording", "memo_for", "recorded"]
