r"""`.env` files: values every common dotenv parser reads back, and in-place updates.

Three parsers matter and they disagree: python-dotenv decodes \\ \" \n in double quotes,
\\ and \' in single quotes, and expands ${X} everywhere; node's dotenv decodes only \n and
\r (in double quotes) and folds CR LF into LF; docker compose decodes \\ \" \$ \n in
double quotes, \' in single quotes, and expands $X outside single quotes. A value is
written in the first form all three read back the same, and refused when there is none
(tests/test_export_dotenv.py runs all three):

1. bare, when it is only [A-Za-z0-9_./:@+,=~%-]
2. 'single quoted', when it has no ' CR LF, no \\ and no final \
3. "double quoted" with LF as \n and CR as \r, when it has no " \ $
4. 'single quoted' across lines, when it has no ' CR, no \\ and no final \

So a value is refused only when it holds ${...}, or when it mixes ' or CR (or a doubled
or final backslash) with " or \ or $.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from vault.errors import InvalidValue, StorageError
from vault.export import (
    NEW_FILE_MODE,
    OPENAI_VARIABLES,
    Unrepresentable,
    Writer,
    check_values,
    read_regular_file,
    sweep_dead_writers,
    write_atomically,
)
from vault.model.savedtext import is_utf16

_BARE: Final = re.compile(r"[A-Za-z0-9_./:@+,=~%-]+")
_EXPANDED_BY_PYTHON_DOTENV: Final = re.compile(r"\$\{[^}]*\}")
# Read as an escape (or as escaping the closing quote) by python-dotenv or compose.
_ESCAPING_BACKSLASH: Final = re.compile(r"\\(?:\\|\Z)")

BOM = "\ufeff"  # what older Notepad and Windows PowerShell's `-Encoding utf8` put first


def _has_any(value: str, chars: str) -> bool:
    return any(ch in value for ch in chars)


def quote_dotenv(value: str) -> str:
    """The value as it should appear after `NAME=`, or raise Unrepresentable."""
    if _EXPANDED_BY_PYTHON_DOTENV.search(value):
        raise Unrepresentable("python-dotenv would expand its ${...} in any quotes")
    if _BARE.fullmatch(value):
        return value
    single_quotes_ok = not _has_any(value, "'\r") and not _ESCAPING_BACKSLASH.search(value)
    if single_quotes_ok and "\n" not in value:
        return f"'{value}'"
    if not _has_any(value, '"\\$'):
        return '"' + value.replace("\n", "\\n").replace("\r", "\\r") + '"'
    if single_quotes_ok:
        return f"'{value}'"
    raise Unrepresentable(
        "no quoting reads back the same in python-dotenv, node dotenv and docker compose "
        "(it mixes ' or a carriage return with \", \\ or $)"
    )


def _quoted(name: str, value: str) -> str:
    try:
        return quote_dotenv(value)
    except Unrepresentable as why:
        raise InvalidValue(f"{name} cannot be written to a .env file: {why}") from None


def render_dotenv(values: Mapping[str, str]) -> str:
    """`NAME=value` lines for `keyvault env --format dotenv`."""
    return "".join(f"{name}={_quoted(name, v)}\n" for name, v in check_values(values).items())


# --- reading a user's file as statements --------------------------------------------------

_ASSIGNMENT: Final = re.compile(
    r"(?P<prefix>[ \t]*(?:export[ \t]+)?)(?P<name>[A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*"
    r"(?P<rest>.*)",
    re.DOTALL,
)


@dataclass(frozen=True)
class _Statement:
    """One assignment (possibly over several lines) or one other line of a .env file."""

    lines: list[str]
    name: str | None = None
    prefix: str = ""


def _closing_quote(text: str, quote: str) -> bool:
    """Whether `text` holds a `quote` not preceded by a backslash (how all three parsers and
    GitLab's docs decide where a quoted value ends)."""
    return any(ch == quote and (i == 0 or text[i - 1] != "\\") for i, ch in enumerate(text))


def _statement_end(lines: list[str], start: int, rest: str) -> int:
    """Index of the last line of the value that begins with `rest` on line `start`.

    An unterminated quote ends at its own line, as python-dotenv reports it: we never let
    a broken line swallow the rest of the user's file.
    """
    if not rest[:1] or rest[0] not in "'\"":
        return start
    quote, text = rest[0], rest[1:]
    for index in range(start, len(lines)):
        if index > start:
            text = lines[index]
        if _closing_quote(text, quote):
            return index
    return start


_COMMENT_AFTER_VALUE: Final = re.compile(r"[ \t]+#[^\r\n]*")


def _trailing_comment(statement: _Statement) -> str:
    """The ` # …` after an assignment's value on its last line (python-dotenv, node dotenv
    and docker compose all read it as a comment), kept when keyvault rewrites the value."""
    text = "\n".join(statement.lines).rstrip("\r")
    rest = text.split("=", 1)[1].lstrip(" \t")
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        close = next(
            (i for i in range(1, len(rest)) if rest[i] == quote and rest[i - 1] != "\\"), None
        )
        if close is None:
            return ""
        after = rest[close + 1 :]
        return after if _COMMENT_AFTER_VALUE.fullmatch(after) else ""
    found = _COMMENT_AFTER_VALUE.search(rest)
    return found.group() if found is not None and "\n" not in rest else ""


def _statements(lines: list[str]) -> list[_Statement]:
    found: list[_Statement] = []
    index = 0
    while index < len(lines):
        match = _ASSIGNMENT.fullmatch(lines[index])
        if match is None:
            found.append(_Statement([lines[index]]))
            index += 1
            continue
        end = _statement_end(lines, index, match["rest"])
        found.append(_Statement(lines[index : end + 1], match["name"], match["prefix"]))
        index = end + 1
    return found


def read_assignment(data: bytes, name: str) -> str | None:
    """The value the last `name=` assignment of a .env file holds, when it is in one of the
    forms `quote_dotenv` writes (bare, '…', "…" with \\n and \\r); None otherwise.

    Used to recognise a file keyvault wrote before rewriting it: a value in any other form
    was not written by us, and we do not guess how some parser would read it.
    """
    lines, _ = _split_lines(data.decode("utf-8", "surrogateescape").removeprefix(BOM))
    found: str | None = None
    for statement in _statements(lines):
        if statement.name == name:
            text = "\n".join(statement.lines).rstrip("\r")
            comment = _trailing_comment(statement)  # kept by _edit when it wrote the value
            text = text.removesuffix(comment) if comment else text
            found = _unquote(text.split("=", 1)[1].strip(" \t"))
    return found


def _unquote(raw: str) -> str | None:
    if _BARE.fullmatch(raw):
        return raw
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"' and not _has_any(raw[1:-1], '"$'):
        return raw[1:-1].replace("\\n", "\n").replace("\\r", "\r")
    return None


# --- updating a user's file ---------------------------------------------------------------


@dataclass(frozen=True)
class DotenvUpdate:
    """What `update_dotenv_file` did, for the CLI to report; names only, never values."""

    path: Path
    created: bool
    changed: bool
    replaced: tuple[str, ...]
    appended: tuple[str, ...]
    removed: tuple[str, ...]
    warnings: tuple[str, ...]


# The line keyvault leaves in a registered file whose project has no active key: it says why
# the OPENAI_* lines are gone, and lets the next sync recognise the file as one it wrote.
CLEARED_MARK: Final = (
    "# keyvault: this project has no active key, so its OPENAI_* lines were removed"
)


def update_dotenv_file(
    path: str | os.PathLike[str],
    values: Mapping[str, str],
    managed_names: Collection[str] = OPENAI_VARIABLES,
    *,
    cleared_mark: bool = False,
    write: Writer = os.write,
) -> DotenvUpdate:
    """Write `values` into the .env file at `path`, touching only managed lines.

    Every other line, comment, blank line and their order stay byte for byte. A managed
    assignment (also `export NAME=...`) is replaced in place, later duplicates of it are
    dropped (dotenv parsers let the last one win), missing ones are appended, and managed
    names absent from `values` are removed. A new file is created 0600; an existing file
    keeps its owner's bits and loses every group and other bit (it holds a key): a 0644 file
    is rewritten 0600, with a warning, even when its lines were already right. The write is
    atomic: on any failure the old file is unchanged and no temporary file is left. A
    symlink at `path` is refused, never followed. `write` exists so tests can inject a
    failing disk.
    """
    target = Path(path)
    quoted = {name: _quoted(name, value) for name, value in check_values(values).items()}
    old, mode = read_regular_file(target)
    if old is not None and is_utf16(old):
        raise StorageError(
            f"{target} is UTF-16 text (as Windows PowerShell 5 saves `>`); keyvault would"
            " mix UTF-8 lines into it",
            hint="save it as UTF-8 (in Notepad: Save As, Encoding UTF-8), then run this again",
        )
    edit = _edit(old or b"", quoted, set(managed_names) | set(quoted), cleared_mark)
    # not on Windows: stat() reports 0666 for every writable file there (ACLs decide), so
    # every write was a rewrite and a warning that "other users" could read the file
    loose = mode is not None and bool(mode & 0o077) and sys.platform != "win32"
    changed = edit.data != (old or b"") or loose
    if changed:
        new_mode = NEW_FILE_MODE if mode is None else mode & 0o700
        write_atomically(target, edit.data, mode=new_mode, write=write)
    else:  # a copy of a key a killed write left beside it goes even when nothing changes
        sweep_dead_writers(target)
    warnings: tuple[str, ...] = ()
    if loose and mode is not None:
        warnings = (
            f"{target} was readable by other users (mode {mode:04o}); it is now"
            f" {mode & 0o700:04o}: whoever could read it may have copied the key it held",
        )
    return DotenvUpdate(
        target,
        created=old is None and changed,
        changed=changed,
        replaced=edit.replaced,
        appended=edit.appended,
        removed=edit.removed,
        warnings=warnings,
    )


@dataclass(frozen=True)
class _Edit:
    data: bytes
    replaced: tuple[str, ...]
    appended: tuple[str, ...]
    removed: tuple[str, ...]


def _edit(
    old: bytes, quoted: Mapping[str, str], managed: Collection[str], mark: bool = False
) -> _Edit:
    """The new file: managed statements replaced or dropped, missing ones appended.

    Bytes that are not UTF-8 pass through untouched (surrogateescape), and appended lines
    end like the file's last line (CR LF or LF).
    """
    text = old.decode("utf-8", "surrogateescape")
    bom = BOM if text.startswith(BOM) else ""  # not part of the first name; kept in front
    lines, final_newline = _split_lines(text.removeprefix(bom))
    kept: list[str] = []
    replaced: list[str] = []
    removed: list[str] = []
    for statement in _statements(lines):
        if statement.name is None and statement.lines[0].rstrip("\r") == CLEARED_MARK:
            continue  # ours: dropped, and written again below only if still true
        if statement.name is None or statement.name not in managed:
            kept.extend(statement.lines)
        elif statement.name in quoted and statement.name not in replaced:
            cr = "\r" if statement.lines[-1].endswith("\r") else ""
            comment = _trailing_comment(statement)
            value = quoted[statement.name]
            kept.append(f"{statement.prefix}{statement.name}={value}{comment}{cr}")
            replaced.append(statement.name)
        elif statement.name not in quoted:
            removed.append(statement.name)
    appended = [name for name in quoted if name not in replaced]
    cr = _carriage_return(lines, final_newline)
    mark = mark and not quoted
    if cr and kept and not final_newline and (appended or mark):
        kept[-1] += cr  # the old last line had no line end; it gets the file's own
    kept.extend(f"{name}={quoted[name]}{cr}" for name in appended)
    if mark:
        kept.append(CLEARED_MARK + cr)
    newline = "\n" if kept and (final_newline or appended or mark) else ""
    data = (bom + "\n".join(kept) + newline).encode("utf-8", "surrogateescape")
    return _Edit(data, tuple(replaced), tuple(appended), tuple(dict.fromkeys(removed)))


def _carriage_return(lines: list[str], final_newline: bool) -> str:
    """ "\r" when the file's lines end in CR LF, judged by its last line that has an end (a
    Windows editor leaves the last line of `A=1\r\nB=2` without one)."""
    ended = lines if final_newline else lines[:-1]
    return "\r" if ended and ended[-1].endswith("\r") else ""


def _split_lines(text: str) -> tuple[list[str], bool]:
    """Lines without their LF (a CR stays part of the line), and whether the text ended
    with one. Not str.splitlines: it also splits on VT, FF, U+2028 and friends."""
    if not text:
        return [], False
    lines = text.split("\n")
    if lines[-1] == "":
        return lines[:-1], True
    return lines, False


# --- git ----------------------------------------------------------------------------------


def git_tracking_warning(path: str | os.PathLike[str], *, git: str = "git") -> str | None:
    """A warning when the .env file at `path` could end up in a commit, else None.

    Tracked (`git ls-files --error-unmatch` succeeds): the next commit takes the secret.
    Untracked and not ignored (`git check-ignore` exits 1): `git add .` would. None when
    git is absent, the folder is not in a work tree, or the file is safely ignored.
    """
    from vault.store import git as hardened_git  # noqa: PLC0415 - only `keyvault dotenv`

    target = Path(path).absolute()

    def run(*args: str) -> int | None:
        return hardened_git.returncode(target.parent, *args, git=git)

    if run("rev-parse", "--is-inside-work-tree") != 0:
        return None
    name = target.name
    if run("ls-files", "--error-unmatch", "--", name) == 0:
        return (
            f"{name} is tracked by git, so the next commit will contain the key; "
            f"run `git rm --cached {name}` and add it to .gitignore"
        )
    if run("check-ignore", "-q", "--", name) == 1:
        return f"{name} is not ignored by git; add it to .gitignore so `git add .` cannot commit it"
    return None
