"""The only code that writes vault files: the lock, atomic saves, the backup.

A save is: write a temp file in the same folder (O_EXCL|O_NOFOLLOW, 0600) → fsync it → link
the current file aside → os.replace the temp over the target → fsync the folder → rename the
aside link to `<name>.bak`. Any error leaves target and backup byte-identical and removes
every temp file.

Readers take no lock: os.replace is atomic, so a reader sees the old or the new file whole.
Writers hold `vault.lock` (an advisory lock on a file that is never replaced) across their
whole read-modify-write, so no update is ever lost.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from vault.errors import LockTimeout, StorageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate newlines
# opening a FIFO planted where a vault file belongs would wait for a writer forever; with
# O_NONBLOCK the open returns, and the regular-file check refuses it (no effect on a file)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class FileOps:
    """The system calls a save makes, one method per step.

    Tests subclass this to fail a chosen step with ENOSPC or EIO; production uses it as is.
    """

    def open_new(self, path: Path) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | _BINARY
        return os.open(path, flags, 0o600)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def link(self, src: Path, dst: Path) -> None:
        os.link(src, dst, follow_symlinks=False)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        if sys.platform == "win32":  # folders cannot be opened for fsync on Windows
            return
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


REAL_OPS = FileOps()


def _temp_name(target: Path, tag: str) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.{tag}")


def _temp_pattern(target: Path) -> re.Pattern[str]:
    """What `_temp_name` makes for `target`, the writer's pid in group 1."""
    return re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.(?:tmp|bak)")


def write_file_atomic(
    target: Path,
    data: bytes,
    *,
    backup: Path | None = None,
    ops: FileOps = REAL_OPS,
    mode: int = 0o600,
    shown: str | None = None,
) -> None:
    """Replace `target` with `data` atomically and durably, keeping the old file as `backup`.
    Errors name the file as `shown` (default: its name, enough for the vault's own files).

    Order: temp written and synced → old file linked aside → temp renamed over target →
    folder synced → old file renamed to `backup`. Until the last step the old bytes stay
    linked aside, so any failure after the rename puts them back: an error always means
    "nothing changed", for the target and the backup alike.
    """
    temp = _temp_name(target, "tmp")
    made: list[Path] = []
    sweep_dead_writers(target)
    try:
        fd = ops.open_new(temp)
        made.append(temp)
        try:
            if mode != 0o600 and hasattr(os, "fchmod"):
                # keep a user's wider mode on a file we replace (a .env they made 0644);
                # set before any byte is written, so nothing is ever exposed more
                os.fchmod(fd, mode)
            ops.write(fd, data)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        aside = _set_aside(target, ops, made) if backup is not None else None
        ops.replace(temp, target)
        made.remove(temp)
        try:
            ops.fsync_dir(target.parent)
            if aside is not None and backup is not None:
                ops.replace(aside, backup)
                made.remove(aside)
        except OSError:
            if aside is not None:
                ops.replace(aside, target)  # put the old file back
                made.remove(aside)
            raise
    except OSError as exc:
        _remove(made)
        existed = os.path.lexists(target)
        raise StorageError(
            f"{shown or target.name}: could not save ({_reason(exc)})",
            hint="the previous file is unchanged" if existed else "nothing was written",
        ) from None
    except BaseException:  # Ctrl-C mid-save: the target is whole (old or new); no temp stays
        _remove(made)
        raise


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def _set_aside(target: Path, ops: FileOps, made: list[Path]) -> Path | None:
    """Link the current file under a temp name (no copy); None when there is no file yet."""
    if not target.exists():
        return None
    aside = _temp_name(target, "bak")
    try:
        ops.link(target, aside)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
            raise
        # filesystems without hard links (some FUSE, SMB shares): copy the bytes instead
        fd = ops.open_new(aside)
        made.append(aside)
        try:
            ops.write(fd, read_file(target))
            ops.fsync(fd)
        finally:
            ops.close(fd)
        return aside
    made.append(aside)
    return aside


def sweep_temp_files(target: Path) -> list[Path]:
    """Remove temp files a killed writer left next to `target`. Call only under the lock:
    then no live writer can own one."""
    removed = []
    for stray in target.parent.glob(f".{target.name}.*"):
        if stray.suffix in (".tmp", ".bak"):
            with contextlib.suppress(OSError):
                stray.unlink()
                removed.append(stray)
    return removed


def sweep_dead_writers(target: Path) -> list[Path]:
    """Remove the temp files that writers killed mid-save (kill -9, power loss) left next to
    `target`: those whose pid (in the name) is no longer running here. Files without a lock
    (.env files, trust pins, identity.age) would otherwise collect one per crash, each a
    copy of a secret. A live writer's temp is never touched."""
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process there
        return []
    pattern = _temp_pattern(target)
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []  # the save itself reports what is wrong with the folder
    for name in names:
        match = pattern.fullmatch(name)
        if match and process_gone(int(match.group(1))):
            with contextlib.suppress(OSError):
                (target.parent / name).unlink()
                removed.append(target.parent / name)
    return removed


def process_gone(pid: int) -> bool:
    """True when no process with this pid runs here (the writer that named a temp file
    after itself was killed). Always False on Windows, where os.kill would terminate it."""
    if pid == os.getpid() or sys.platform == "win32":
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a pid no process can have
        return True
    except PermissionError:
        return False  # another user's process: alive
    return False


def _reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def read_regular_file(path: Path) -> bytes:
    """A settings file the user may keep as a symlink (dotfiles): followed, but a FIFO or a
    device (`/dev/zero`) at the end is refused rather than waited on or read forever."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK | _CLOEXEC | _BINARY)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return handle.read()


def write_new_private(path: Path, data: bytes, *, ops: FileOps = REAL_OPS) -> None:
    """Create `path` (0600 from the first byte, never through a symlink) holding `data`; an
    existing file is refused rather than overwritten or left with its old permissions.

    The bytes go to a temp file first, linked to `path` once complete (link, like O_EXCL,
    refuses an existing name): a kill midway leaves no empty or half-written file at `path`
    (an exported identity that looks saved but is not) for the next try to be refused by."""
    sweep_dead_writers(path)
    if os.path.lexists(path):
        raise _exists(path)
    temp = _temp_name(path, "tmp")
    try:
        fd = ops.open_new(temp)
    except OSError as exc:
        raise StorageError(f"{path}: cannot create ({_reason(exc)})") from None
    try:
        try:
            ops.write(fd, data)
            ops.fsync(fd)
        finally:
            ops.close(fd)
        _link_new(temp, path, ops)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise StorageError(f"{path}: could not save ({_reason(exc)})") from None
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


def _link_new(temp: Path, path: Path, ops: FileOps) -> None:
    try:
        ops.link(temp, path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
            raise
        # no hard links here (some FUSE, SMB shares): rename, after checking again
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        ops.replace(temp, path)
    with contextlib.suppress(OSError):
        ops.fsync_dir(path.parent)


def _exists(path: Path) -> StorageError:
    return StorageError(
        f"{path}: already exists; refusing to overwrite it", hint="choose a new file name"
    )


def read_file(path: Path) -> bytes:
    """Read a vault file without following a symlink planted in its place, nor waiting on a
    FIFO planted there."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC | _BINARY)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StorageError(f"{path.name}: is a symlink; refusing to follow it") from None
        raise StorageError(f"{path.name}: cannot read ({_reason(exc)})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StorageError(f"{path.name}: is not a regular file")
        return handle.read()


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """Identity of the file now at `path`, to notice a replace by someone else."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@contextlib.contextmanager
def locked(path: Path, *, timeout: float = 10.0, poll: float = 0.02) -> Iterator[None]:
    """Hold the exclusive advisory lock on `path` (created 0600, never a symlink)."""
    handle = _open_lock_file(path)
    deadline = time.monotonic() + timeout
    try:
        while not _try_lock(handle, path):
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"the vault is locked by {_holder(path)}",
                    hint=f"wait for it to finish (the lock is {path}), or raise"
                    " lock_timeout in config.toml",
                )
            time.sleep(poll)
        _write_holder(handle)
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
                handle.flush()
            _unlock(handle)
    finally:
        handle.close()


# POSIX: flock(2) itself, the lock portalocker takes there (so both see each other); on
# Windows, portalocker's LockFileEx. Importing portalocker costs ~15 ms (it reads its own
# package metadata), a thirtieth of `add` on a 10,000-key vault. Writers only.


def _try_lock(handle: IO[bytes], path: Path) -> bool:
    """Take the exclusive lock if nobody holds it; False when another process does."""
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # pragma: no cover - Windows
        import portalocker  # noqa: PLC0415

        try:
            portalocker.lock(handle, portalocker.LOCK_EX | portalocker.LOCK_NB)
        except portalocker.LockException:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        raise StorageError(f"{path.name}: cannot lock ({_reason(exc)})") from None
    return True


def _unlock(handle: IO[bytes]) -> None:
    try:
        import fcntl  # noqa: PLC0415
    except ImportError:  # pragma: no cover - Windows
        import portalocker  # noqa: PLC0415

        portalocker.unlock(handle)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _open_lock_file(path: Path) -> IO[bytes]:
    flags = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _BINARY
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StorageError(f"{path.name}: is a symlink; refusing to follow it") from None
        raise StorageError(f"{path.name}: cannot open the lock ({_reason(exc)})") from None
    st = os.fstat(fd)
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        os.close(fd)
        raise StorageError(f"{path.name}: the lock file belongs to another user")
    # unbuffered: the holder note is best effort, and a buffered close() would retry a failed
    # write (disk full) and raise over the real error
    return os.fdopen(fd, "r+b", buffering=0)


def _write_holder(handle: IO[bytes]) -> None:
    import platform  # noqa: PLC0415 - writers only

    command = " ".join(os.path.basename(a) for a in sys.argv[:2])
    with contextlib.suppress(OSError):
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {platform.node()} ({command})".encode())
        handle.flush()


def _holder(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            text = handle.read(200).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another keyvault process"
