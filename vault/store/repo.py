"""The vault home as a git repository: what it holds, and the git calls `sync` makes.

A team vault is a git repository whose work tree is the vault home. It holds `vault.age`
(sealed to every member, so nothing in it is readable without an identity), `.gitattributes`
and `.gitignore`; never identity.age, vault.age.bak, vault.lock or config.toml (ignored, and
refused if ever staged or committed). Every call goes through the hardened runner's
`VAULT_REPO` profile (vault/store/git.py). docs/team.md is the user's guide.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from vault.errors import GitError, StorageError
from vault.store import git as hardened_git
from vault.store.files import read_file, write_file_atomic

TYPE_CHECKING = False
if TYPE_CHECKING:
    from subprocess import CompletedProcess  # only git.py starts processes
    from typing import Final

VAULT: Final = "vault.age"
# what the repository shares (and `sync` commits); nothing else is ever added by keyvault
SHARED: Final = (VAULT, ".gitattributes", ".gitignore")
ATTRIBUTES: Final = (
    "# keyvault: vault.age is merged and diffed by keyvault (docs/team.md)\n"
    "vault.age merge=keyvault diff=keyvault -text\n"
)
# .git/info/attributes beats every .gitattributes: a pushed one cannot route files through
# a filter program (smudge/clean) on our checkouts
INFO_ATTRIBUTES: Final = "* -filter\nvault.age merge=keyvault diff=keyvault -text\n"
IGNORED: Final = (
    "identity.age",
    "vault.age.bak",
    "vault.lock",
    "config.toml",
    ".vault.age.*",
    ".identity.age.*",
)
GITIGNORE: Final = (
    "# keyvault: never shared (identity.age is your own key; see docs/team.md)\n"
    + "".join(f"{name}\n" for name in IGNORED)
)
NETWORK_TIMEOUT: Final = 300.0  # seconds for a fetch, push or clone
_REACHES_REMOTE: Final = frozenset({"fetch", "push", "clone"})
_CREDENTIALS_IN_URL: Final = re.compile(r"(://)[^/@\s]*@")


def without_credentials(text: str) -> str:
    """`text` with the user:token part of any URL in it masked (https://***@host/…)."""
    return _CREDENTIALS_IN_URL.sub(r"\1***@", text)


def driver_command() -> str:
    """What plain `git merge`/`git pull --rebase` runs for vault.age (installed in
    .git/config). `-P`: git runs drivers in the work tree, and `python -m vault` would
    otherwise import a `vault/` folder someone pushed there before keyvault itself."""
    return f"{shlex.quote(sys.executable)} -P -m vault merge-driver %O %A %B %P"


def textconv_command() -> str:
    return f"{shlex.quote(sys.executable)} -P -m vault textconv"


# git's lock files (index.lock, HEAD.lock, refs/…/main.lock) outlive a git killed mid-write,
# and every later git that needs one fails on it
_STALE_LOCK = re.compile(rb"Unable to create '([^'\n]+\.lock)': File exists")


class VaultRepo:
    """git in one vault home, through the VAULT_REPO profile; failures raise GitError."""

    def __init__(
        self, home: Path, *, git: str = "git", environ: Mapping[str, str] | None = None
    ) -> None:
        self.home = home
        self.git_program = git
        self.environ = environ

    def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        config: Sequence[str] = (),
        timeout: float = hardened_git.GIT_TIMEOUT,
        check: bool = True,
        folder: Path | None = None,
    ) -> CompletedProcess[bytes]:
        if args[0] in _REACHES_REMOTE:
            done = hardened_git.run_remote(
                folder or self.home,
                *args,
                git=self.git_program,
                timeout=timeout,
                config=config,
                stdin=stdin,
                environ=self.environ,
            )
        else:
            done = hardened_git.run(
                folder or self.home,
                *args,
                git=self.git_program,
                timeout=timeout,
                profile=hardened_git.VAULT_REPO,
                config=config,
                stdin=stdin,
                environ=self.environ,
            )
        if done is None:
            raise GitError(f"git {args[0]} did not run (is git installed?) or took too long")
        stale = _STALE_LOCK.search(done.stderr) if done.returncode != 0 else None
        if stale is not None:  # checked or not: a fetch that fails on it is no network error
            left = stale.group(1).decode("utf-8", "replace")
            raise GitError(
                f"git {args[0]} failed: {left} exists",
                hint="a git killed mid-write left it, or another git is running in the vault"
                f" home: if none runs, remove it (rm {shlex.quote(left)}) and sync again",
            )
        if check and done.returncode != 0:
            raise GitError(f"git {args[0]} failed: {self.why(done)}")
        return done

    def text(self, *args: str, **kwargs: object) -> str:
        return self.run(*args, **kwargs).stdout.decode("utf-8", "replace").strip()  # type: ignore[arg-type]

    @staticmethod
    def why(done: CompletedProcess[bytes]) -> str:
        """git's first meaningful line, without credentials a remote URL may carry."""
        lines = [ln.strip() for ln in done.stderr.decode("utf-8", "replace").splitlines()]
        useful = [ln for ln in lines if ln and not ln.startswith("hint:")]
        line = next((ln for ln in useful if ln.startswith(("fatal:", "error:"))), None)
        line = line or (useful[0] if useful else f"exit {done.returncode}")
        return without_credentials(line)[:300]

    # --- what is there ---------------------------------------------------------------------

    def is_repository(self) -> bool:
        done = hardened_git.run(
            self.home, "rev-parse", "--show-toplevel", profile=hardened_git.VAULT_REPO
        )
        if done is None or done.returncode != 0:
            return False
        top = Path(done.stdout.decode("utf-8", "replace").strip())
        return top.resolve() == self.home.resolve()

    def head(self) -> str | None:
        done = self.run("rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def branch(self) -> str:
        name = self.run("symbolic-ref", "--short", "-q", "HEAD", check=False)
        if name.returncode != 0:
            local = self.text("for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
            raise GitError(
                "the vault repository is not on a branch (detached HEAD)",
                hint=f"check out its branch: git -C {self.home} checkout"
                f" {local[0] if len(local) == 1 else 'BRANCH'}",
            )
        return name.stdout.decode().strip()

    def resolve(self, rev: str) -> str | None:
        done = self.run("rev-parse", "--verify", "-q", f"{rev}^{{commit}}", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def blob_id(self, rev: str, path: str = VAULT) -> str | None:
        done = self.run("rev-parse", "--verify", "-q", f"{rev}:{path}", check=False)
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def blob(self, oid: str) -> bytes:
        return self.run("cat-file", "blob", oid).stdout

    def is_ancestor(self, older: str, newer: str) -> bool:
        return self.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0

    def busy(self) -> str | None:
        """What git operation is half done here (a merge, a rebase), if any."""
        for marker, what in (
            ("MERGE_HEAD", "a merge"),
            ("rebase-merge", "a rebase"),
            ("rebase-apply", "a rebase"),
            ("CHERRY_PICK_HEAD", "a cherry-pick"),
        ):
            path = self.text("rev-parse", "--git-path", marker)
            if (self.home / path).exists():
                return what
        return None

    def changed(self, paths: Sequence[str] = SHARED) -> list[str]:
        """The shared files that differ from HEAD (or are new)."""
        out = self.run("status", "--porcelain", "--untracked-files=all", "--", *paths).stdout
        lines = out.decode("utf-8", "surrogateescape").splitlines()  # `XY path`: no strip()
        return [line[3:] for line in lines if line[3:] in paths]

    # --- merging (`sync`): git computes the tree, keyvault merges vault.age ---------------

    def merge_tree(self, ours: str, theirs: str) -> tuple[str, dict[str, dict[int, str]]]:
        """The merged tree of two commits (nothing in the work tree or index changes) and,
        per conflicted path, its stages (1 base, 2 ours, 3 theirs) by object id."""
        done = self.run("merge-tree", "--write-tree", "-z", ours, theirs, check=False)
        if done.returncode not in (0, 1):
            raise GitError(f"git merge-tree failed: {self.why(done)}")
        return parse_merge_tree(done.stdout)

    def replace_in_tree(self, tree: str, path: str, oid: str) -> str:
        """`tree` with the top-level file `path` set to the blob `oid`."""
        listing = self.run("ls-tree", "-z", tree).stdout.decode("utf-8", "surrogateescape")
        entries = [e for e in listing.split("\0") if e and e.partition("\t")[2] != path]
        entries.append(f"100644 blob {oid}\t{path}")
        body = ("\0".join(entries) + "\0").encode("utf-8", "surrogateescape")
        return self.run("mktree", "-z", stdin=body).stdout.decode().strip()

    # --- setting up ------------------------------------------------------------------------

    def init(self, branch: str = "main") -> None:
        self.run("init", "-q", "-b", branch)
        self.install()

    def install(self) -> list[str]:
        """Write the shared files and this clone's settings (idempotent); the shared files
        it had to write or fix, which the next commit carries."""
        written = []
        for name, content in ((".gitattributes", ATTRIBUTES), (".gitignore", GITIGNORE)):
            path = self.home / name
            if not path.exists() or not _holds_lines(path, content):
                write_file_atomic(path, _with_lines(path, content), mode=0o600)
                written.append(name)
        info = Path(self.text("rev-parse", "--git-path", "info/attributes"))
        info = info if info.is_absolute() else self.home / info
        info.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not info.exists() or info.read_text(encoding="utf-8") != INFO_ATTRIBUTES:
            write_file_atomic(info, INFO_ATTRIBUTES.encode(), mode=0o600)
        settings = {
            "merge.keyvault.name": "keyvault semantic merge of vault.age",
            "merge.keyvault.driver": driver_command(),
            "diff.keyvault.textconv": textconv_command(),
            "diff.keyvault.cachetextconv": "false",
        }
        have = self._keyvault_settings()
        for key, value in settings.items():
            if have.get(key) != [value]:  # no write when set: two syncs at once would collide
                self.run("config", "--local", "--replace-all", key, value)
        return written

    def _keyvault_settings(self) -> dict[str, list[str]]:
        """This clone's `merge.keyvault.*` and `diff.keyvault.*` values, in file order."""
        pattern = r"^(merge|diff)\.keyvault\."
        out = self.run("config", "--local", "-z", "--get-regexp", pattern, check=False).stdout
        found: dict[str, list[str]] = {}
        for item in out.decode("utf-8", "surrogateescape").split("\0"):
            key, _, value = item.partition("\n")
            if key:
                found.setdefault(key, []).append(value)
        return found

    def lock_path(self) -> Path:
        """The lock one `sync` holds from start to end (in .git: never shared)."""
        path = Path(self.text("rev-parse", "--git-path", "keyvault-sync.lock"))
        return path if path.is_absolute() else self.home / path

    def refuse_unsafe_tree(self, rev: str, where: str) -> None:
        """`rev` (about to be checked out here) is refused when it holds, at its top:
        - a file this machine keeps for itself (IGNORED): git replaces an ignored file
          without a word, so a pushed identity.age would overwrite this member's key and a
          pushed config.toml would send every request elsewhere (case-folded, as a macOS or
          Windows disk compares names);
        - a symbolic link: a `.gitignore` pointing at ~/.ssh/id_ed25519 would be read here,
          and what keyvault read back into the shared file would be pushed.
        No team secret guards these files: anyone who can push can write them."""
        listing = self.run("ls-tree", "-z", rev).stdout  # `mode type oid\tname`
        for item in listing.decode("utf-8", "surrogateescape").split("\0"):
            info, _, name = item.partition("\t")
            if any(fnmatchcase(name.casefold(), pattern) for pattern in IGNORED):
                why = "a file each machine keeps for itself (it would replace yours)"
            elif info.startswith("120000 "):
                why = "a symbolic link (keyvault would read the file it points to)"
            else:
                continue
            raise GitError(
                f"{where} holds {name}, {why}: refusing to take it; nothing changed here",
                hint=f"remove it from the repository in a separate clone: git clone URL fix"
                f" && git -C fix rm -q --cached -r -- '{name}' && git -C fix commit -qm"
                " 'remove a local file' && git -C fix push; do not `git pull` here first",
            )

    def refuse_secrets(self, upstream: str | None) -> None:
        """identity.age must never leave this machine: refuse it staged, in HEAD, or in any
        commit a push would send. The other local files (config.toml …) staged or in HEAD
        too: every other member's sync would refuse the commit (`refuse_unsafe_tree`)."""
        staged = self.text("ls-files", "--cached", "--", *IGNORED[:4])
        if staged:
            raise GitError(
                f"{staged.splitlines()[0]} is tracked by git in the vault repository: it must"
                " never be shared",
                hint=f"git -C {self.home} rm --cached {staged.splitlines()[0]}",
            )
        if self.head() is None:
            return
        since = ["HEAD", f"^{upstream}"] if upstream else ["HEAD"]
        sent = self.text("rev-list", *since, "--", "identity.age")
        if sent:
            raise GitError(
                "a commit not yet pushed contains identity.age: pushing would share your key",
                hint="remove it from those commits (git rebase -i), then sync again",
            )


def _lines(path: Path) -> list[str] | None:
    """The lines of a shared file; None when missing, unreadable or a symlink (never read
    through one: what it points to would end up in a commit)."""
    try:
        return read_file(path).decode("utf-8").splitlines()
    except (OSError, StorageError, UnicodeDecodeError):
        return None


def _holds_lines(path: Path, content: str) -> bool:
    have = set(_lines(path) or ())
    return all(line in have for line in content.splitlines() if line and line[0] != "#")


def _with_lines(path: Path, content: str) -> bytes:
    """`content` plus whatever else the user keeps in the file."""
    old = _lines(path) or []
    ours = content.splitlines()
    rest = [line for line in old if line not in ours]
    return "\n".join([*ours, *rest]).strip("\n").encode() + b"\n"


def parse_merge_tree(out: bytes) -> tuple[str, dict[str, dict[int, str]]]:
    """`merge-tree --write-tree -z`: the tree, then `mode oid stage\\tpath` per conflicted
    stage, an empty field, then messages."""
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    stages: dict[str, dict[int, str]] = {}
    for field in fields[1:]:
        if not field:
            break
        info, _, path = field.partition("\t")
        _mode, oid, stage = info.split(" ")
        stages.setdefault(path, {})[int(stage)] = oid
    return fields[0], stages
