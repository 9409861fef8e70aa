"""Making a team vault and joining one: `keyvault team init`, `init --git`, `clone`.

A team vault is a vault home that is also a git repository (vault/store/repo.py): the first
machine turns its home into one and pushes it; everyone else clones it, makes their own
identity, and waits for a member to add their public key (docs/team.md).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from vault.errors import GitError, SyncPending, VaultExists
from vault.model.secret import Secret
from vault.session.identity import SCRYPT_LOG_N, seal_identity
from vault.store.config import ensure_private_dir
from vault.store.files import locked, process_gone, write_file_atomic
from vault.store.keyvault import Keyvault
from vault.store.repo import NETWORK_TIMEOUT, SHARED, VaultRepo, without_credentials
from vault.store.sync import REMOTE, author

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault import age


def team_init(
    kv: Keyvault, repo: VaultRepo, *, remote: str | None = None, new_vault: bool = False
) -> bool:
    """Turn an existing vault home into a team vault's repository (and push it to `remote`,
    an empty repository); True when it was pushed. `new_vault`: just made by `init`, so it
    has its team record (no second unlock)."""
    if repo.is_repository():
        raise GitError(f"{repo.home} is already a git repository", hint="keyvault sync")
    if not new_vault and kv.read().team is None:  # a vault from before team records
        kv.transact(lambda _doc: None)
    repo.init()
    repo.run("add", "--", *SHARED)
    repo.run("commit", "-q", "-m", "keyvault: team vault", "--", *SHARED, config=author(repo))
    if remote is None:
        return False
    repo.run("remote", "add", "--", REMOTE, remote)  # a URL that looks like an option
    branch = repo.branch()
    _reach(repo, remote, "fetch", "-q", REMOTE)
    if repo.resolve(f"refs/remotes/{REMOTE}/{branch}") is not None:
        raise GitError(
            f"{without_credentials(remote)} already holds a vault on {branch}",
            hint="join it instead: keyvault clone URL --vault NEW_FOLDER",
        )
    _reach(repo, remote, "push", "-q", "-u", REMOTE, f"HEAD:refs/heads/{branch}")
    return True


def _reach(repo: VaultRepo, remote: str, *args: str) -> None:
    """A fetch or push of the new team vault: when it fails, the vault and its repository
    are made here all the same, so say how to finish instead of running init again."""
    done = repo.run(*args, timeout=NETWORK_TIMEOUT, check=False)
    if done.returncode != 0:
        raise SyncPending(
            f"the team vault is made here, but {without_credentials(remote)} was not reached"
            f" ({repo.why(done)})",
            hint=f"check the URL (git -C {repo.home} remote set-url {REMOTE} URL), then"
            " `keyvault sync` pushes it",
        )


def refuse_clone_into(home: Path) -> None:
    """VaultExists unless `home` is missing or an empty folder."""
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise VaultExists(
            f"{home} is not empty", hint="clone into a new folder: keyvault --vault PATH clone URL"
        )


def clone(
    url: str,
    home: Path,
    *,
    git: str = "git",
    before_use: Callable[[Path], None] = lambda _folder: None,
) -> VaultRepo:
    """Clone a team vault into `home` (which must not hold a vault yet).

    The clone is made in a private folder beside `home`, `before_use` adds to it (the new
    identity), and it is renamed into place whole: a clone killed or failing midway leaves
    `home` as it was (missing, or an empty folder), so the same command runs again, and a
    home never holds a vault without the identity made for it."""
    refuse_clone_into(home)
    ensure_private_dir(home.parent)
    _sweep_dead_clones(home)
    staging = home.with_name(f".{home.name}.{os.getpid()}.{os.urandom(4).hex()}.clone")
    try:
        _clone(url, staging, git)
        before_use(staging)
        refuse_clone_into(home)  # again: made while the clone ran
        _move_into_place(staging, home)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return VaultRepo(home, git=git)


def _move_into_place(staging: Path, home: Path) -> None:
    try:
        staging.rename(home)  # POSIX: onto a missing or empty folder, atomically
    except OSError:
        if not home.is_dir():
            raise
        home.rmdir()  # Windows renames onto nothing; the folder is empty (checked above)
        staging.rename(home)


_STAGING = r"\.{name}\.(\d+)\.[0-9a-f]{{8}}\.clone"


def _sweep_dead_clones(home: Path) -> None:
    """Staging folders of clones killed midway (their pid no longer runs) go."""
    pattern = re.compile(_STAGING.format(name=re.escape(home.name)))
    for left in home.parent.glob(f".{glob.escape(home.name)}.*.clone"):
        match = pattern.fullmatch(left.name)
        if match and process_gone(int(match.group(1))) and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)


def _clone(url: str, home: Path, git: str) -> VaultRepo:
    repo = VaultRepo(home, git=git)
    parent = VaultRepo(home.parent, git=git)
    parent.run("clone", "-q", "--no-checkout", "--", url, str(home), timeout=NETWORK_TIMEOUT)
    home.chmod(0o700)
    if repo.head() is None:
        _check_out_vault_branch(repo, url)
    repo.refuse_unsafe_tree("HEAD", without_credentials(url))
    repo.install()
    repo.run("reset", "-q", "--hard", "HEAD")  # nobody reads this home yet: git may write it
    repo.install()  # the shared files as this keyvault writes them (the next sync commits)
    if not (home / "vault.age").exists():
        raise GitError(f"{without_credentials(url)} holds no vault.age: it is not a team vault")
    return repo


def _check_out_vault_branch(repo: VaultRepo, url: str) -> None:
    """The remote's HEAD names a branch it does not have (a bare repository made with
    `git init --bare` points at `master`, the vault was pushed to `main`): take the branch
    that holds vault.age, if exactly one does (or main/master among several)."""
    refs = repo.text("rev-parse", "--symbolic-full-name", f"--remotes={REMOTE}").split()
    prefix = f"refs/remotes/{REMOTE}/"
    names = [ref.removeprefix(prefix) for ref in refs if ref.startswith(prefix)]
    holding = sorted(name for name in names if name != "HEAD" and repo.blob_id(prefix + name))
    if not holding:
        raise GitError(
            f"{without_credentials(url)} is empty: there is no vault to join yet",
            hint="on the first machine: keyvault team init --remote URL",
        )
    preferred = [name for name in ("main", "master") if name in holding]
    if len(holding) > 1 and not preferred:
        raise GitError(
            f"{without_credentials(url)} holds a vault on several branches"
            f" ({', '.join(holding)}) and none is main",
            hint="clone the one you want with git, or make it the remote's default branch",
        )
    branch = (preferred or holding)[0]
    repo.run("update-ref", f"refs/heads/{branch}", prefix + branch)
    repo.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
    repo.run("config", f"branch.{branch}.remote", REMOTE)
    repo.run("config", f"branch.{branch}.merge", f"refs/heads/{branch}")


def create_identity(
    kv: Keyvault, passphrase: Secret, *, log_n: int | None = None, home: Path | None = None
) -> age.X25519Identity:
    """A new identity.age for this machine's member (the vault itself came with the clone),
    in `home` when given (a clone not yet moved into kv's home)."""
    from vault import age  # noqa: PLC0415

    folder = home or kv.paths.home
    path, lock = folder / kv.paths.identity.name, folder / kv.paths.lock.name
    if path.exists():
        raise VaultExists(f"{path} already exists")
    identity = age.X25519Identity.generate()
    cost = log_n or kv.config.scrypt_log_n or SCRYPT_LOG_N
    sealed = seal_identity(identity, passphrase, log_n=cost, now=kv.clock())
    with locked(lock, timeout=kv.lock_timeout):
        write_file_atomic(path, sealed, ops=kv.ops)
    return identity
