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
time, never skipped) or had none to write to, failed, wrote or removed a file, changed the
environment, started a process, connected anywhere but the agent, or when anything it
depended on changed while it ran (files are digested as they are opened and again after the
run; the folders and project files are looked at before and after it). An entry from the
agent is checked within a bounded number of bytes read (memo_entry.Budget), and one that
cannot be checked is a miss, never an error. Entries live in the agent's
memory only (vault/session/agent.py): same uid only, like the plaintext it already decrypts
for us; gone on `lock` and at the session's end. Standard output that is a terminal or a file
is never answered from the memo (their warnings depend on it).

This module is imported by every `env` and `get` with a session: os, sys and the agent's
transport only; no json, re, enum or pathlib. vault/cli/memo_entry.py holds what an entry
is; vault/cli/memo_record.py records a full run (imported only by one).
"""

# os.path, not pathlib: see the module docstring
# ruff: noqa: PTH100, PTH109, PTH110, PTH118, PTH120
from __future__ import annotations

import os
import stat
import sys

from vault.cli import output
from vault.cli.memo_entry import (
    FORMAT,
    MISSING,
    TOO_LARGE,
    Budget,
    Dependency,
    Printed,
    contents,
    digest_of,
    encode,
    feed,
    hasher,
    parse,
    status,
)
from vault.session.runtime import socket_path
from vault.session.wire import exchange_frames
from vault.store.folders import PROJECT_FILE, vault_home

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from vault.cli.memo_record import Recording

GET = b'{"op": "memo-get"}'
PUT = b'{"op": "memo-put"}'
HIT = b'{"memo": "hit"}'  # json.dumps({"memo": "hit"}), as the agent writes it
MAX_ENTRY = 256 << 10  # the agent's limit (agent.MEMO_ENTRY_BYTES)
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARENT_NAME = "/proc/{}/comm"  # where Linux names our parent (shells.parent_process_name)


class Memo:
    """One run's use of the memo: its key, where it runs, and the agent that keeps entries."""

    def __init__(self, key: bytes, agent: str, home: str, cwd: str) -> None:
        self.key, self.agent, self.home, self.cwd = key, agent, home, cwd

    def replay(self) -> bool:
        """Print the kept entry when everything it depended on is unchanged; True if so."""
        replied = exchange_frames(self.agent, GET, self.key)
        if replied is None or replied[0] != HIT:
            return False
        entry = parse(replied[1])
        if entry is None:
            return False
        printed, dependencies = entry
        budget = Budget()
        try:
            if any(self.now(kind, name, budget) != seen for kind, name, seen in dependencies):
                return False
        except Exception:  # an entry we cannot check (a path with a NUL)
            return False
        for kind, data in printed:
            if kind == output.TEXT:
                output.write_text(data.decode("utf-8", "surrogateescape"))
            else:
                output.write_bytes(data)
        return True

    def keep(self, printed: Printed, seen: Recording, looked: list[Dependency]) -> None:
        """Hand the agent what a clean full run printed and depended on; `looked` is
        `self.looked()` from before the run."""
        dependencies = self.dependencies(seen, looked)
        if dependencies is None:
            return
        entry = encode(printed, dependencies)
        if len(entry) <= MAX_ENTRY:
            exchange_frames(self.agent, PUT, self.key + entry)

    def dependencies(self, seen: Recording, looked: list[Dependency]) -> list[Dependency] | None:
        """Everything a recorded run depended on, as `replay` checks it; None when a file
        changed while the run used it: each must look as it did before the run looked at
        it (`looked`) or opened it (`seen.opened`)."""
        from vault.cli.memo_record import CODE_SUFFIXES, WHOLE_ENVIRONMENT  # noqa: PLC0415

        if looked != self.looked():
            return None
        found = list(looked)
        modules = _module_files()
        parent_name = PARENT_NAME.format(os.getppid())
        for path, when_opened in seen.opened.items():
            if path in modules:  # followed as code, by status (below)
                continue
            now = contents(path)
            if now.endswith(TOO_LARGE):
                return None
            # a file named like code but not a module's (KEYVAULT_IDENTITY_FILE=key.py)
            # was noted by status only when it was opened
            as_code = path.endswith(CODE_SUFFIXES) and now.startswith(when_opened)
            if now != when_opened and not as_code:
                return None
            if path == parent_name:  # whichever shell runs us next: by name, not by pid
                found.append((b"P", "", self.now(b"P", "")))
            else:
                found.append((b"F", path, now))
        for name, value in seen.variables.items():
            if name == WHOLE_ENVIRONMENT:
                found.append((b"E", "", self.now(b"E", "")))
            else:
                found.append((b"V", name, value))
        found += [(b"S", path, status(path)) for path in _code_files()]
        return found

    def looked(self) -> list[Dependency]:
        """The status of each path in `looked_at` now."""
        return [(b"S", path, status(path)) for path in self.looked_at()]

    def now(self, kind: bytes, name: str, budget: Budget | None = None) -> bytes:
        """What dependency `name` of `kind` looks like now (reading at most `budget`)."""
        if kind == b"F":
            return contents(name, budget=budget)
        if kind == b"S":
            return status(name)
        if kind == b"V":
            value = os.environ.get(name)
            return MISSING if value is None else digest_of(value)
        if kind == b"P":
            return contents(PARENT_NAME.format(os.getppid()), with_status=False)
        if kind == b"E":
            everything = hasher()
            for key, value in sorted(os.environ.items()):
                feed(everything, key)
                feed(everything, value)
            return everything.digest()
        return b"?"  # an entry from another format: never equal

    def looked_at(self) -> list[str]:
        """What a run may look at without opening it (no audit event): the vault home (a
        file made or removed in it) and every `.keyvault.toml` from the working folder up.
        tests/cli/test_memo.py checks that a full run stats nothing else."""
        found = [self.home]
        folder = self.cwd
        while True:
            found.append(os.path.join(folder, PROJECT_FILE))
            parent = os.path.dirname(folder)
            if parent == folder:
                return found
            folder = parent


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
    except Exception:  # anything unusual: the full run reports it in its own words
        return None
    if not agent or not os.path.exists(agent):
        return None
    key = hasher(person=b"keyvault-memo")
    for part in (FORMAT, sys.version, sys.executable, PACKAGE, home, cwd, str(os.geteuid())):
        feed(key, part)
    for arg in argv:
        feed(key, arg)
    return Memo(key.digest(), agent, home, cwd)


def recorded(memo: Memo, run: Callable[[], object]) -> Recording:
    """`run()` (the full command) recorded, and its entry kept when it qualifies."""
    from vault.cli.memo_record import Recording  # noqa: PLC0415 - only a full run needs it

    recording = Recording(memo.agent)
    looked = memo.looked()  # before the run: a project file made while it runs shows
    output.start_keeping()
    try:
        recording.watch(run)
    finally:
        printed = output.stop_keeping()
    if recording.spoiled or not printed:
        return recording
    try:  # noqa: SIM105 - not contextlib.suppress: one import less on every `env`
        memo.keep(printed, recording, looked)
    except Exception:  # noqa: S110 - an entry not kept only means a full run next time
        pass
    return recording


def _stdout_is_a_pipe() -> bool:
    if sys.stdout is None:
        return False
    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _module_files() -> set[str]:
    """The files the loaded modules were imported from (source and cached bytecode)."""
    found = set()
    for module in list(sys.modules.values()):
        for attribute in ("__file__", "__cached__"):
            path = getattr(module, attribute, None)
            if isinstance(path, str):
                found.add(path)
    return found


def _code_files() -> list[str]:
    """keyvault's modules this process has loaded: a new version means a full run."""
    found = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if (name == "vault" or name.startswith("vault.")) and isinstance(path, str):
            found.append(path)
    return sorted(found)


__all__ = ["Memo", "memo_for", "recorded"]
