"""Turning a project's variables into text that other programs read back exactly.

One module per target family, each imported only by the command that needs it:

- `shells`  statements for bash, zsh, sh, fish, PowerShell and cmd (`keyvault env`), plus
            the dotenv and JSON print formats; shell detection
- `dotenv`  `.env` files updated in place, the rest of the file kept byte for byte
- `ci`      GitHub Actions (`$GITHUB_ENV` + masks) and GitLab dotenv reports
- `process` `keyvault exec`: replace this process with a command that sees the variables

Every function receives a plain `Mapping[str, str]` of variable name to value. This package
holds only the contract they share: which names are valid and which values are refused
everywhere, and the safe file writing that `dotenv` and `ci` share. It imports nothing
heavy, so `keyvault env` stays fast.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from vault.errors import InvalidValue, NoActiveKey, PolicyViolation, StorageError
from vault.model.document import Entry, Kind, VaultDoc
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

# The variables the official OpenAI SDKs read, in the order we print them. A project exports
# some of them; the others are unset (env, exec, hook) or removed (.env files), so a key is
# never sent to another project's relay, organization or project.
OPENAI_VARIABLES: Final = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
)


# Set in the environment of `keyvault exec`'s command (vault/export/process.py), so that a
# `keyvault exec` inside it can tell it is nested and the cd hook of a shell it started
# stands aside (vault/cli/everyday.py).
EXEC_MARKER: Final = "KEYVAULT_EXEC"

_SHOWN_NAME_CHARS: Final = 40


class Unrepresentable(ValueError):
    """raised by a quoting function when its target cannot hold a value

    Internal: the renderer that called it turns it into InvalidValue naming the variable.
    Its text says why (which character class), never the value.
    """


def check_name(name: str) -> str:
    """Return `name` if it can be a variable name in every target, else raise InvalidValue."""
    # `[A-Za-z_][A-Za-z0-9_]*`, portable across every target: POSIX shells, fish, PowerShell,
    # cmd, dotenv parsers, CI files (str methods: a compiled pattern costs every run ~0.1 ms)
    if not (name.isascii() and name.isidentifier()):
        shown = name[:_SHOWN_NAME_CHARS]
        raise InvalidValue(
            f"invalid variable name {shown!r}",
            hint="names use letters, digits and _ and do not start with a digit",
        )
    return name


def check_value(name: str, value: str) -> str:
    """Return `value` if some target could hold it, else raise InvalidValue.

    No environment can carry a NUL, and a lone surrogate has no UTF-8 form, so both are
    refused here once instead of in every renderer. The message names the variable, never
    the value.
    """
    if "\0" in value:
        raise InvalidValue(f"the value of {name} contains a nul character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue(f"the value of {name} is not valid unicode text") from None
    return value


def check_values(values: Mapping[str, str]) -> dict[str, str]:
    """Validate every name and value; return an ordered copy the caller may keep."""
    return {check_name(name): check_value(name, value) for name, value in values.items()}


def check_names(names: Iterable[str]) -> list[str]:
    """Validate names alone (for unset statements); order kept, duplicates dropped."""
    return list(dict.fromkeys(check_name(name) for name in names))


class Exported(NamedTuple):
    """What a project exports: its active entry and every OPENAI_* variable it sets."""

    entry: Entry
    values: dict[str, str]

    @property
    def unset(self) -> tuple[str, ...]:
        """The OPENAI_* variables this project does not set: consumers clear them."""
        return tuple(n for n in OPENAI_VARIABLES if n not in self.values)


def export_values(entry: Entry, *, default_base_url: str | None = None) -> dict[str, str]:
    """The OPENAI_* variables for an entry, leaving out what it does not set (an empty value
    is left out too: the SDKs would send every request to `OPENAI_BASE_URL=""`). An entry
    without a base URL gets `default_base_url` (config.toml, for relay users). An admin key
    is never exported.

    This is the one place that decides what a key exports: env, exec, dotenv, ci, the cd hook
    and the .env files that follow a rotation all come here."""
    if entry.kind is Kind.ADMIN:
        raise PolicyViolation(f"{entry.name!r} is an admin key and is never exported")
    base_url = entry.base_url or default_base_url
    optional = zip(OPENAI_VARIABLES[1:], (base_url, entry.org_id, entry.project_id), strict=True)
    values = {OPENAI_VARIABLES[0]: entry.secret.reveal()}
    values.update((name, value) for name, value in optional if value)
    return values


def exported(
    doc: VaultDoc, project: str | None, *, default_base_url: str | None = None
) -> Exported:
    """The project's active entry and its variables (NoActiveKey when it has none)."""
    entry = doc.active(project)
    return Exported(entry, export_values(entry, default_base_url=default_base_url))


def export_state(
    doc: VaultDoc, project: str | None, *, default_base_url: str | None = None
) -> dict[str, str] | None:
    """The variables `project` exports now, or None when it exports nothing."""
    try:
        return exported(doc, project, default_base_url=default_base_url).values
    except (NoActiveKey, PolicyViolation):
        return None


# --- files the targets write: .env files, CI reports ---------------------------------------

Writer = Callable[[int, bytes], int]

NEW_FILE_MODE: Final = 0o600
_O_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY: Final = getattr(os, "O_BINARY", 0)  # Windows would otherwise turn \n into \r\n


def read_regular_file(path: Path) -> tuple[bytes | None, int | None]:
    """The bytes and permission bits of an existing regular file; (None, None) if absent."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        raise StorageError(f"cannot read {path}: {_reason(err)}") from None
    if stat.S_ISLNK(info.st_mode):
        raise StorageError(
            f"{path} is a symbolic link; refusing to follow it",
            hint="give the path of the real file",
        )
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(f"{path} is not a regular file")
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
    except OSError as err:
        raise StorageError(f"cannot read {path}: {_reason(err)}") from None
    with os.fdopen(fd, "rb") as handle:
        return handle.read(), stat.S_IMODE(os.fstat(handle.fileno()).st_mode)


def write_atomically(
    path: Path, data: bytes, *, mode: int = NEW_FILE_MODE, write: Writer = os.write
) -> None:
    """Replace `path` with `data` through the store's one atomic writer (temp file with O_EXCL
    and O_NOFOLLOW, fsync, os.replace, folder fsync; on failure `path` is untouched and no
    temp file stays). `mode` is the file's mode from its first byte; `write` lets tests
    inject short writes and ENOSPC."""
    from vault.store.files import FileOps, write_file_atomic  # noqa: PLC0415 - writing paths only

    class WriterOps(FileOps):
        def write(self, fd: int, data: bytes) -> None:
            view = memoryview(data)
            while view:
                view = view[write(fd, view.tobytes()) :]

    # the full path: a user's .env is one of many, and its folder may be what is missing
    write_file_atomic(path, data, ops=WriterOps(), mode=mode, shown=str(path))


def sweep_dead_writers(path: Path) -> None:
    """Remove the temp copies that writes of `path` killed midway left beside it."""
    from vault.store import files  # noqa: PLC0415 - writing paths only

    files.sweep_dead_writers(path)


def _reason(err: OSError) -> str:
    return (err.strerror or type(err).__name__).lower()


def windows_program(program: str, env: Mapping[str, str]) -> str:
    """`program` as cmd finds it, on Windows; unchanged elsewhere (execvpe and Popen search
    PATH there). CreateProcess tries `.exe` alone: `npm`, `npx`, `yarn` (`npm.cmd`…) were
    "command not found" through `keyvault exec`, though they run from any prompt."""
    if sys.platform != "win32":
        return program
    import shutil  # noqa: PLC0415 - Windows only

    return shutil.which(program, path=env.get("PATH")) or program
