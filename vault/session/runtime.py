"""Where a vault home's session socket lives: a private folder, and one name per vault home.

Split from client.py, which re-exports `socket_path`, `default_runtime_dir` and `supported`.
Imported on the hot path of every command: cheap modules only (os.path, not pathlib).
"""

# ruff: noqa: PTH102, PTH118
from __future__ import annotations

# the C module, not `socket`: the wrapper's enums and selectors cost ~2 ms on every command
import _socket as socket
import os
import stat

from vault.errors import SessionError

TYPE_CHECKING = False
if TYPE_CHECKING:
    StrPath = str | os.PathLike[str]


def socket_path(
    vault_home: StrPath, runtime_dir: StrPath | None = None, *, create: bool = False
) -> str:
    """Where the agent for `vault_home` listens: one socket per vault home.

    Returns "" when sessions are unsupported or the folder does not exist yet (and not
    `create`); connecting to "" simply fails. Raises SessionError when the folder is unsafe,
    or (with `create`) cannot be made.
    """
    if not supported():
        return ""
    folder = os.fspath(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    if not _private_folder(folder, create=create):
        return ""
    return _socket_in(folder, vault_home)


def watched_socket_path(vault_home: StrPath, runtime_dir: StrPath | None = None) -> str:
    """Where the agent for `vault_home` listens or would listen, with no check of the folder.

    For the directory hook, whose shell code only tests whether a socket is there to notice
    `unlock`, `lock` and expiry; every use of the socket goes through `socket_path`. "" when
    sessions are unsupported.
    """
    if not supported():
        return ""
    folder = os.fspath(runtime_dir) if runtime_dir is not None else default_runtime_dir()
    return _socket_in(folder, vault_home)


def _socket_in(folder: str, vault_home: StrPath) -> str:
    home = os.path.realpath(os.fspath(vault_home)).encode("utf-8", "surrogateescape")
    return os.path.join(folder, f"agent-{_digest(home)[:16]}.sock")


def _digest(data: bytes) -> str:
    """A name for the vault home's socket (not a security boundary: the folder is private).

    BLAKE2b from CPython's built-in `_blake2`: `hashlib` would load OpenSSL's hashlib (~2 ms)
    and cryptography's first digest initialises OpenSSL's EVP tables (~0.8 ms), both on the
    hot path of every command.
    """
    try:
        from _blake2 import blake2b  # noqa: PLC0415
    except ImportError:  # pragma: no cover - CPython always has it; other interpreters may not
        from hashlib import blake2b  # noqa: PLC0415

    return blake2b(data, digest_size=16).hexdigest()


def supported() -> bool:
    """True where sessions work: Unix sockets and uids (not Windows)."""
    return hasattr(socket, "AF_UNIX") and hasattr(os, "geteuid")


def default_runtime_dir() -> str:
    """$XDG_RUNTIME_DIR/keyvault when that is our private tmpfs, else /tmp/keyvault-<uid>.

    A stale XDG_RUNTIME_DIR (tmux or screen after logout, `su`, `sudo -E`) names a folder
    that is gone or someone else's: it is passed over, never an error.
    """
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    try:
        usable = bool(xdg) and _is_private(xdg)
    except OSError:
        usable = False
    if usable:
        return os.path.join(xdg, "keyvault")
    return f"/tmp/keyvault-{os.geteuid()}"  # noqa: S108  # verified private before any use


def _private_folder(folder: str, *, create: bool) -> bool:
    """True when `folder` is a real directory of ours that nobody else may enter.

    /tmp is shared: someone may have created our folder first, or left a symlink there.
    """
    if create:
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise SessionError(
                f"cannot create the session folder {folder} ({(error.strerror or '').lower()})",
                hint="unset a stale XDG_RUNTIME_DIR, or set KEYVAULT_PASSPHRASE_FILE instead",
            ) from None
    try:
        private = _is_private(folder)
    except OSError:  # gone, or a path through something that is not a folder
        if create:
            raise SessionError(f"cannot use the session folder {folder}") from None
        return False
    if not private:
        raise SessionError(
            f"{folder} is not a private folder",
            hint="it must be a real directory owned by you with mode 0700; remove it",
        )
    return True


def _is_private(folder: str) -> bool:
    info = os.lstat(folder)
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and stat.S_IMODE(info.st_mode) & 0o077 == 0
    )
