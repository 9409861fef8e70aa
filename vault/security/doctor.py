"""`keyvault doctor`: check a vault home for the mistakes that leak keys, and say how to fix them.

Each check returns `Check`s: `ok`, `warn` or `fail` (both mean "fix this"; doctor then exits 1),
or `skip` when it could not run (a locked vault with no way to ask). Checks that need the
decrypted vault (the backup, the `.env` files it wrote) take the opened document; the rest
read only file metadata and headers, so `doctor` is useful even when it cannot unlock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vault import age
from vault.errors import ConfigError, DamagedIdentity, KeyvaultError, NotARecipient, SessionError
from vault.model.clock import human
from vault.model.document import VaultDoc
from vault.model.records import ExportKind
from vault.security.checks import Check, Level
from vault.security.team_checks import phone_checks, repository_checks, trust_checks
from vault.store.config import Paths
from vault.store.files import read_file, read_regular_file
from vault.store.repo import SHARED as REPOSITORY_FILES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.store.trust import Trust

RECOMMENDED_LOG_N = 18  # the default of `keyvault init`: ~0.5 s per guess here
VAULT_FILES = ("identity.age", "vault.age", "vault.age.bak", "vault.lock", "config.toml")
TEAM_SHARED = ("vault.age",)  # tracked on purpose in a team vault (vault/store/repo.py)
UNLOCK_FILES = ("KEYVAULT_IDENTITY_FILE", "KEYVAULT_PASSPHRASE_FILE")


Opener = Callable[[bytes], VaultDoc]  # decrypts a sealed vault with the unlocked identity
SessionStatus = Callable[[], object | None]  # vault.session.client.status bound to this home
Git = Callable[..., int | None]  # (folder, *args) → exit code, None when git cannot run


@dataclass
class Doctor:
    """What the checks look at; every outside dependency is passed in."""

    paths: Paths
    opener: Opener | None = None  # None: the vault could not be unlocked
    unlock_error: str | None = None
    identity_damage: str | None = None  # identity.age opened, and was found damaged
    session_status: SessionStatus | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    euid: int | None = field(default_factory=getattr(os, "geteuid", lambda: None))
    git: Git | None = None
    trust: Trust | None = None
    phone_slots: int = 2
    doc: VaultDoc | None = None
    default_base_url: str | None = None  # config.toml's, as exports use it
    config_problems: Sequence[ConfigError] = ()  # every mistake in config.toml (settings.py)

    def run(self) -> list[Check]:
        if not self.paths.home.is_dir():
            fix = "run `keyvault init`, or point --vault / KEYVAULT_HOME at your vault"
            return [Check("vault", Level.FAIL, f"no vault home at {self.paths.home}", fix)]
        checks = [
            self.check_home,
            self.check_files,
            self.check_config,
            self.check_work_factor,
            self.check_vault,
            self.check_trust,
            self.check_phones,
            self.check_backup,
            self.check_session,
            self.check_git,
            self.check_dotenv,
            self.check_unlock_files,
        ]
        return [result for check in checks for result in check()]

    # --- permissions ----------------------------------------------------------------------

    def check_home(self) -> Iterator[Check]:
        home = self.paths.home
        if not _modes_mean_access():
            why = f"{home}: Windows keeps who may open it in the folder's ACL; not checked"
            yield Check("permissions", Level.SKIP, why)
            return
        yield from _private(home, os.lstat(home), 0o700, "permissions", self.euid)

    def check_files(self) -> list[Check]:
        names = set(VAULT_FILES)
        with contextlib.suppress(OSError):  # an unreadable home is reported by check_home
            names |= {p.name for p in self.paths.home.iterdir()}
        # a team vault's shared files are in its repository (.git/objects) for every member
        # to read: a plain `git pull` writes them 0644 (and the next save makes that
        # vault.age the backup), which tells nobody anything new
        team = _is_team_repo(self.paths.home)
        shared = {*REPOSITORY_FILES, "vault.age.bak"} if team else set()
        problems: list[Check] = []
        for name in sorted(names):
            path = self.paths.home / name
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if not stat.S_ISDIR(info.st_mode):
                hidden = 0o022 if name in shared else 0o077
                problems += _private(
                    path, info, 0o600, "permissions", self.euid, quiet=True, hidden=hidden
                )
        if problems or not _modes_mean_access():
            return problems
        return [Check("permissions", Level.OK, "vault files are 0600 and yours")]

    def check_config(self) -> Iterator[Check]:
        for mistake in self.config_problems:
            fix = mistake.hint or "correct config.toml (docs/config.md lists every setting)"
            yield Check("config", Level.FAIL, mistake.message, fix)
        if not self.config_problems and self.paths.config.exists():
            yield Check("config", Level.OK, "config.toml: every setting known and valid")

    # --- identity, vault, backup ----------------------------------------------------------

    def check_work_factor(self) -> Iterator[Check]:
        try:
            header = age.parse_header(read_file(self.paths.identity))
        except FileNotFoundError:
            yield Check("identity", Level.FAIL, "identity.age is missing", _RESTORE_IDENTITY)
            return
        except KeyvaultError as exc:
            why = exc.message.removeprefix("identity.age: ")
            yield Check("identity", Level.FAIL, f"identity.age: {why}", _RESTORE_IDENTITY)
            return
        if self.identity_damage is not None:
            yield Check("identity", Level.FAIL, self.identity_damage, _RESTORE_IDENTITY)
            return
        stanzas = [s for s in header.stanzas if s.type == "scrypt"]
        factor = stanzas[0].args[-1] if stanzas and stanzas[0].args else ""
        if not factor.isdigit() or len(factor) > 3:
            yield Check("identity", Level.FAIL, "identity.age is not passphrase-protected")
        elif int(factor) < RECOMMENDED_LOG_N:
            yield Check(
                "identity",
                Level.WARN,
                f"the passphrase's scrypt work factor is {factor}, below {RECOMMENDED_LOG_N}:"
                " each guess at it is cheap",
                f"keyvault passwd --work-factor {RECOMMENDED_LOG_N}",
            )
        else:
            yield Check("identity", Level.OK, f"scrypt work factor {factor}")

    def check_vault(self) -> Iterator[Check]:
        if self.opener is None:
            yield Check("vault", Level.SKIP, f"not unlocked ({self.unlock_error or 'locked'})")
            return
        try:
            self.doc = self.opener(read_file(self.paths.vault))
        except FileNotFoundError:
            yield Check("vault", Level.FAIL, "vault.age is missing", _RESTORE_VAULT)
        except DamagedIdentity as exc:  # not vault.age's fault: its backup would not help
            yield Check("identity", Level.FAIL, exc.message, _RESTORE_IDENTITY)
        except KeyvaultError as exc:
            yield Check(
                "vault", Level.FAIL, f"vault.age does not open: {self._why(exc)}", _RESTORE_VAULT
            )
        else:
            entries = len(self.doc.entries)
            gen = self.doc.generation
            count = f"{entries} key{'' if entries == 1 else 's'}"
            yield Check("vault", Level.OK, f"vault.age opens: {count}, generation {gen}")

    def _why(self, exc: KeyvaultError) -> str:
        """The error without the file name the opener puts first (it says vault.age always)."""
        return exc.message.removeprefix(f"{self.paths.vault.name}: ")

    def check_backup(self) -> Iterator[Check]:
        """Runs even when vault.age is damaged: that is when the backup matters."""
        if self.opener is None:
            return
        try:
            backup = self.opener(read_file(self.paths.backup))
        except FileNotFoundError:
            fresh = self.doc is not None and self.doc.generation <= 1
            level = Level.OK if fresh else Level.WARN
            yield Check("backup", level, "no vault.age.bak yet (every change writes one)")
            return
        except NotARecipient:  # its message names vault.age: this is about the backup
            why = "it is sealed to other recipients, not to this identity"
            yield Check("backup", Level.FAIL, f"vault.age.bak does not open: {why}", _FRESH_BACKUP)
            return
        except KeyvaultError as exc:
            why = self._why(exc)
            yield Check("backup", Level.FAIL, f"vault.age.bak does not open: {why}", _FRESH_BACKUP)
            return
        yield self._backup_check(backup)

    def _backup_check(self, backup: VaultDoc) -> Check:
        """An opened backup: of this vault (its team record's id), and not from its future."""
        ours, theirs = (d.team.vault_id if d and d.team else None for d in (self.doc, backup))
        if ours and theirs and ours != theirs:
            # copying it over vault.age, the fix for a damaged vault, would install a stranger
            message = f"vault.age.bak is a copy of another vault (id {theirs}; this one is {ours})"
            return Check("backup", Level.FAIL, message, _FRESH_BACKUP)
        current = self.doc.generation if self.doc is not None else None
        if current is not None and backup.generation > current:
            message = (
                f"vault.age.bak (generation {backup.generation}) is newer than vault.age"
                f" ({current}): was vault.age restored from an old copy?"
            )
            return Check("backup", Level.WARN, message)
        return Check("backup", Level.OK, f"vault.age.bak opens (generation {backup.generation})")

    # --- session, git, .env files, unlock files -------------------------------------------

    def check_session(self) -> Iterator[Check]:
        if self.session_status is None:
            return
        try:
            info = self.session_status()
        except SessionError as exc:
            yield Check("session", Level.WARN, exc.message, exc.hint)
            return
        if info is None:
            yield Check("session", Level.OK, "no unlock session is running")
            return
        until = _when(getattr(info, "expires_at", None))
        pid = getattr(info, "pid", "?")
        yield Check(
            "session",
            Level.OK,
            f"unlocked until {until} (agent pid {pid})",
            "`keyvault lock` ends it now",
        )

    def check_git(self) -> list[Check]:
        if self.git is None or self.git(self.paths.home, *_IN_WORK_TREE) != 0:
            return [Check("git", Level.OK, "the vault home is not inside a git work tree")]
        git, problems = self.git, list[Check]()
        team = (self.paths.home / ".git").exists() and _is_team_repo(self.paths.home)
        for name in VAULT_FILES:
            path = self.paths.home / name
            if path.exists() and not (team and name in TEAM_SHARED):
                problems += _git_exposure(git, path, "vault file", Level.FAIL)
        if problems:
            return problems
        if team:
            shared = Check("git", Level.OK, "a team vault: only vault.age is shared")
            return [shared, *repository_checks(self.paths.home)]
        return [Check("git", Level.OK, "vault files are ignored by git")]

    def check_trust(self) -> list[Check]:
        if self.doc is None or self.trust is None:
            return []
        return trust_checks(self.doc, self.trust)

    def check_phones(self) -> list[Check]:
        return phone_checks(self.doc, self.phone_slots) if self.doc is not None else []

    def check_dotenv(self) -> list[Check]:
        if self.doc is None:
            return []
        targets = {t.path for t in self.doc.exports if t.kind is ExportKind.DOTENV}
        problems: list[Check] = []
        for target in sorted(targets):
            path = Path(target)
            try:
                info = os.lstat(path)
            except OSError:
                continue  # gone: nothing on disk holds the key there any more
            problems += _private(
                path, info, 0o600, "dotenv", self.euid, quiet=True, level=Level.WARN
            )
            if self.git is not None and self.git(path.parent, *_IN_WORK_TREE) == 0:
                problems += _git_exposure(self.git, path, ".env file", Level.WARN)
            problems += self._stale(path)
        if problems or not targets:
            return problems
        return [Check("dotenv", Level.OK, f"{len(targets)} .env file(s) written by keyvault: ok")]

    def _stale(self, path: Path) -> list[Check]:
        """A registered file that does not hold what its project exports (a crash between the
        vault's save and the file's, or a hand edit): say so, and how to bring it back."""
        from vault.export import export_state  # noqa: PLC0415
        from vault.export.dotenv import read_assignment  # noqa: PLC0415

        target = (
            next((t for t in self.doc.exports if t.path == str(path)), None) if self.doc else None
        )
        if self.doc is None or target is None:
            return []
        try:
            held = read_assignment(read_regular_file(path), "OPENAI_API_KEY")
        except OSError:
            return []
        values = export_state(self.doc, target.project, default_base_url=self.default_base_url)
        wanted = values.get("OPENAI_API_KEY") if values else None
        if held == wanted:
            return []
        project = f"project {target.project}" if target.project else "the default project"
        flag = f" --project {target.project}" if target.project else ""
        if wanted is None:
            message = f"{path} still holds a key, but {project} has no active key"
        else:
            message = f"{path} does not hold the active key of {project}"
        fix = f"keyvault dotenv {path}{flag} (or stop following it:"
        fix += f" keyvault dotenv --forget {path})"
        return [Check("dotenv", Level.WARN, message, fix)]

    def check_unlock_files(self) -> Iterator[Check]:
        for variable in UNLOCK_FILES:
            if self.environ.get(variable):
                path = Path(self.environ[variable]).expanduser()
                try:
                    info = path.stat()
                except OSError:
                    continue
                yield from _private(path, info, 0o600, "unlock", self.euid, quiet=True)


_IN_WORK_TREE = ("rev-parse", "--show-toplevel")  # fails outside a work tree and inside .git
_FRESH_BACKUP = "make any change (e.g. `keyvault edit NAME --note …`) to write a fresh backup"
_RESTORE_IDENTITY = (
    "restore identity.age from your own backup (vault.age.bak would not help); without it the"
    " vault opens only with an exported identity"
)
_RESTORE_VAULT = "copy vault.age.bak over vault.age (after `keyvault doctor` says it opens)"


def _private(
    path: Path,
    info: os.stat_result,
    mode: int,
    area: str,
    euid: int | None,
    *,
    quiet: bool = False,
    level: Level = Level.FAIL,
    hidden: int = 0o077,
) -> Iterator[Check]:
    """Problems with one file's type, mode (the `hidden` bits must be clear) and owner; an
    `ok` line unless `quiet`."""
    bits = stat.S_IMODE(info.st_mode)
    if not _modes_mean_access():
        hidden = 0  # every file there says 0666: a FAIL that `chmod` (absent) could not fix
    if stat.S_ISLNK(info.st_mode):
        yield Check(area, level, f"{path} is a symlink", "replace it with the real file")
        return
    if bits & hidden:
        yield Check(
            area,
            level,
            f"{path} is readable or writable by others (mode {bits:04o})",
            f"chmod {mode:o} {path}",
        )
    if euid is not None and info.st_uid != euid:
        yield Check(
            area,
            level,
            f"{path} belongs to uid {info.st_uid}, not you ({euid})",
            f"chown {euid} {path}",
        )
    if not quiet and not bits & hidden and (euid is None or info.st_uid == euid):
        yield Check(area, Level.OK, f"{path} is {bits:04o} and yours")


def _modes_mean_access() -> bool:
    """False on Windows, where stat() makes a mode up from the read-only flag (0666 or 0444)
    and access is decided by ACLs, which doctor does not read."""
    return sys.platform != "win32"


def _git_exposure(git: Git, path: Path, what: str, tracked_level: Level) -> Iterator[Check]:
    folder, name = path.parent, path.name
    if git(folder, "ls-files", "--error-unmatch", "--", name) == 0:
        yield Check(
            "git",
            tracked_level,
            f"{what} {path} is tracked by git",
            f"git -C {folder} rm --cached {name}; add it to .gitignore",
        )
    elif git(folder, "check-ignore", "-q", "--", name) == 1:
        yield Check(
            "git",
            Level.WARN,
            f"{what} {path} is not ignored by git",
            f"add {name} to {folder}/.gitignore so `git add .` cannot commit it",
        )


def _is_team_repo(home: Path) -> bool:
    """A team vault's repository: its .gitattributes hands vault.age to keyvault."""
    try:
        return "merge=keyvault" in (home / ".gitattributes").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "?"
    return human(dt.datetime.fromtimestamp(epoch, dt.UTC))


def run_git(folder: Path, *args: str, git: str = "git") -> int | None:
    """A git query's exit code through the hardened runner (vault/store/git.py); None
    without git."""
    from vault.store import git as hardened_git  # noqa: PLC0415

    return hardened_git.returncode(folder, *args, git=git)
