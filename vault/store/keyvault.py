"""Open, read and change a vault: the one place that ties age, the document and the store.

`Keyvault` is what the CLI (and any Python caller) uses:

    kv = Keyvault(Paths(home), unlocker)
    doc = kv.read()                      # decrypt, no lock
    kv.transact(lambda doc: doc.add(...)) # lock → read → change → seal → atomic save

Every change bumps the generation and is sealed to every recipient listed in the document.
Every read checks the document against this machine's trust pin (vault/store/trust.py):
a vault.age not written by a member, or older than one seen here, is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from vault.errors import (
    AgeFormatError,
    ConcurrentModification,
    DamagedVault,
    GitError,
    NoMatchingIdentity,
    NotARecipient,
    VaultExists,
    VaultNotFound,
    WrongPassphrase,
)
from vault.model import codec
from vault.model.clock import Clock, iso, utc_now
from vault.model.document import VaultDoc
from vault.model.records import Action, Event, Recipient
from vault.model.secret import Secret
from vault.model.team import new_team
from vault.session.identity import (
    SCRYPT_LOG_N,
    open_identity,
    seal_identity,
)
from vault.session.unlock import Unlocker
from vault.store.config import (
    Config,
    Paths,
    ensure_private_dir,
    load_config,
    refuse_shared_home,
)
from vault.store.files import (
    REAL_OPS,
    FileOps,
    file_stamp,
    locked,
    read_file,
    sweep_temp_files,
    write_file_atomic,
)
from vault.store.trust import Trust

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    # `vault.age` loads cryptography: commands that a session unlocks never import it
    from vault import age
    from vault.export.targets import SyncOutcome

    T = TypeVar("T")


class Keyvault:
    """One vault home: its config, its identity and its document."""

    def __init__(
        self,
        paths: Paths,
        unlocker: Unlocker,
        *,
        clock: Clock = utc_now,
        ops: FileOps = REAL_OPS,
        lock_timeout: float | None = None,
        config: Config | None = None,
        trust: Trust | None = None,
        rand: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.paths = paths
        self.unlocker = unlocker
        self.clock = clock
        self.ops = ops
        self.synced: list[SyncOutcome] = []  # the .env files the last change brought along
        self._lock_timeout = lock_timeout
        self._config = config
        self.trust = trust if trust is not None else Trust(paths.home)
        self.rand = rand  # team secrets (vault/model/team.py)
        # a document read(reusable=True) handed on to the next transact, by its file's digest
        self._reusable: tuple[bytes, VaultDoc] | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.paths.config)
        return self._config

    @property
    def lock_timeout(self) -> float:
        """Seconds a change waits for the lock: the constructor's, else `lock_timeout` in
        config.toml (default 10)."""
        if self._lock_timeout is not None:
            return self._lock_timeout
        return float(self.config.lock_timeout)

    # --- create ---------------------------------------------------------------------------

    def init(
        self, passphrase: Secret, *, log_n: int | None = None, owner: str = "owner"
    ) -> age.X25519Identity:
        """Create identity.age and an empty vault.age; refuse to overwrite either. `owner`
        names the first recipient (a team vault lists its members by name).

        An init killed between its two files leaves identity.age alone: the next init
        finishes it with that identity (its passphrase opens it) rather than refusing the
        folder for good or replacing an identity someone may hold the only copy of."""
        ensure_private_dir(self.paths.home)
        refuse_shared_home(self.paths.home)
        self.refuse_overwrite()
        from vault import age  # noqa: PLC0415

        now = self.clock()
        left = self.interrupted_init()
        if left is not None:
            identity, sealed_identity = _reopen_identity(left, passphrase), None
        else:
            identity = age.X25519Identity.generate()
            cost = log_n or self.config.scrypt_log_n or SCRYPT_LOG_N
            sealed_identity = seal_identity(identity, passphrase, log_n=cost, now=now)
        at = iso(now)
        first = Recipient(owner, identity.recipient().to_string(), added_at=at)
        doc = VaultDoc(generation=1, recipients=[first], team=new_team(at=at, rand=self.rand))
        doc.record(Event(at, Action.INIT))  # the team record is part of the new vault
        with locked(self.paths.lock, timeout=self.lock_timeout):
            # again under the lock: a second init running at the same time must not pair
            # its identity with this vault (os.replace would overwrite without a word)
            if left is None:
                self.refuse_overwrite(finishing=False)
            elif self.interrupted_init() != left:
                raise ConcurrentModification(
                    "identity.age changed while init ran; nothing was saved",
                    hint="run `keyvault init` again",
                )
            sweep_temp_files(self.paths.identity)
            sweep_temp_files(self.paths.vault)
            if sealed_identity is not None:
                write_file_atomic(self.paths.identity, sealed_identity, ops=self.ops)
            write_file_atomic(self.paths.vault, self.seal(doc), ops=self.ops)
        self.trust.remember(doc)
        return identity

    def interrupted_init(self) -> bytes | None:
        """identity.age's bytes when it is here without any vault (an init killed between
        writing it and vault.age), else None."""
        vault_files = (self.paths.vault, self.paths.backup)
        if any(p.exists() or p.is_symlink() for p in vault_files):
            return None
        try:
            return read_file(self.paths.identity)
        except FileNotFoundError:
            return None

    def refuse_overwrite(self, *, finishing: bool = True) -> None:
        """VaultExists when this home already holds a vault or an identity (`init` says so
        before it asks for a passphrase). `finishing`: an identity left by an interrupted
        init is no reason to refuse (init finishes the job)."""
        for path in (self.paths.vault, self.paths.identity):
            if path == self.paths.identity and finishing and self.interrupted_init():
                continue
            if path.exists() or path.is_symlink():
                raise VaultExists(
                    f"{path} already exists: this folder already holds a vault",
                    hint="use --vault or KEYVAULT_HOME for a second vault",
                )

    # --- read -----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.paths.vault.exists()

    def read(self, *, reusable: bool = False) -> VaultDoc:
        """Decrypt the vault without locking (saves are atomic replaces), and refuse it unless
        this machine trusts it (vault/store/trust.py).

        `reusable=True` hands the document on to the next `transact`: if vault.age still
        holds the same bytes then, the change starts from this very object instead of
        decrypting and parsing the file again (half the time of `add` in a large vault). For
        a read the caller drops before the change: `transact` may modify it.
        """
        self._reusable = None
        pinned = self.trust.pinned()  # first: see Trust.accept
        sealed = self._read_vault_bytes()
        doc = self.open(sealed)
        # while a merge is half done, `git merge --abort` may put the older file back: the
        # pin must not follow this one (asked only when it would move)
        self.trust.accept(doc, pinned, hold=lambda: half_done_git(self.paths.home) is not None)
        if reusable:
            self._reusable = (_digest(sealed), doc)
        return doc

    def open(self, sealed: bytes) -> VaultDoc:
        """Decrypt and parse sealed bytes: no trust check (`doctor` opens the backup with it,
        the merge the versions git gives it)."""
        try:
            plain = self.unlocker.decrypt(self.paths, sealed)
        except AgeFormatError as exc:
            # cut short by a crash or power loss on a disk that lied about fsync
            hint = exc.hint or "`keyvault doctor` checks whether vault.age.bak opens"
            raise type(exc)(f"{self.paths.vault.name}: {exc.message}", hint=hint) from None
        except NoMatchingIdentity:
            raise NotARecipient(
                "this identity cannot open vault.age",
                hint="the vault was sealed to other recipients; check KEYVAULT_IDENTITY",
            ) from None
        return codec.loads(plain, source=self.paths.vault.name)

    def _read_vault_bytes(self) -> bytes:
        try:
            return read_file(self.paths.vault)
        except FileNotFoundError:
            hint = "run `keyvault init` to create one"
            if self.paths.backup.exists():
                hint = f"a backup exists: {self.paths.backup}"
            elif self.paths.identity.exists():
                hint = "identity.age is here without it (an interrupted init?):"
                hint += " `keyvault init` finishes it"
            raise VaultNotFound(f"no vault at {self.paths.vault}", hint=hint) from None

    # --- change ---------------------------------------------------------------------------

    def transact(self, change: Callable[[VaultDoc], T], *, backup_previous: bool = True) -> T:
        """Lock, read, apply `change`, seal and save; on any error the vault is unchanged.

        Then, still under the lock, every `.env` file registered to a project whose exported
        variables changed is brought up to date (vault/export/targets.py); what happened to
        each is left in `self.synced`. `backup_previous=False` makes the backup a copy of the
        new file instead of the old one: used when the old file must stop existing (a
        recipient was removed).
        """
        if not self.paths.vault.exists():
            self._read_vault_bytes()  # raises VaultNotFound with the right hint
        self.synced = []
        busy = half_done_git(self.paths.home)
        if busy is not None:  # a change saved now would be lost by its abort, or pushed mixed
            raise GitError(
                f"{busy} is in progress in the vault repository; nothing was saved",
                hint=f"finish or abort it first (git -C {self.paths.home} status)",
            )
        with locked(self.paths.lock, timeout=self.lock_timeout):
            for target in (self.paths.vault, self.paths.identity):  # passwd saves under it too
                sweep_temp_files(target)
            stamp = file_stamp(self.paths.vault)  # before reading: a replace in between shows
            sealed = self._read_vault_bytes()
            reusable, self._reusable = self._reusable, None
            if reusable is not None and reusable[0] == _digest(sealed):
                doc = reusable[1]  # the same bytes read(reusable=True) parsed
            else:
                doc = self.open(sealed)
            del sealed  # a large vault's old bytes need not stay in memory through the save
            pin = self.trust.check(doc)
            before = _ExportSnapshot(doc, self.config.default_base_url)
            result = change(doc)
            doc.ensure_team(at=self.now_iso(), rand=self.rand)
            doc.generation += 1
            data = self.seal(doc)
            if file_stamp(self.paths.vault) != stamp:
                raise ConcurrentModification(
                    "vault.age changed while this command ran; nothing was saved",
                    hint="another program wrote it without the lock; run the command again",
                )
            write_file_atomic(self.paths.vault, data, backup=self.paths.backup, ops=self.ops)
            if not backup_previous:
                write_file_atomic(self.paths.backup, data, ops=self.ops)
            self.trust.remember(doc, pin)
            self.synced = before.sync(doc)
        return result

    def accept_rollback(self) -> VaultDoc:
        """`keyvault trust --accept-rollback`: the older vault.age restored here on purpose
        (from vault.age.bak or git) becomes the newest version. Accepting only the old
        generation would leave every other machine refusing it once it is shared (`sync`),
        so it is sealed again one generation above the highest this machine accepted: to
        the team it is an ordinary change by a member. Still refused unless a member wrote
        it (the team secret). The backup keeps the newer copy the user turned away from."""
        with locked(self.paths.lock, timeout=self.lock_timeout):
            doc = self.open(self._read_vault_bytes())
            pin = self.trust.pinned()
            self.trust.check_member(doc, pin)
            if pin is not None and doc.generation < pin.generation:
                doc.generation = pin.generation + 1
                write_file_atomic(self.paths.vault, self.seal(doc), ops=self.ops)
            self.trust.accept_rollback(doc)
        return doc

    def follow_exports(self, before: VaultDoc, after: VaultDoc) -> list[SyncOutcome]:
        """Registered .env files after a change that came from elsewhere (`sync`); call it
        under the lock, as `transact` does."""
        return _ExportSnapshot(before, self.config.default_base_url).sync(after)

    def seal(self, doc: VaultDoc) -> bytes:
        from vault import age  # noqa: PLC0415

        recipients = [age.X25519Recipient.parse(r.recipient) for r in doc.recipients]
        if not recipients:
            raise DamagedVault("the vault lists no recipients; refusing to seal it to nobody")
        return age.encrypt(codec.dumps(doc), recipients)

    # --- passphrase -----------------------------------------------------------------------

    def change_passphrase(self, new: Secret, *, log_n: int | None = None) -> None:
        """Re-seal identity.age under a new passphrase; the vault itself is untouched."""
        identity = self.unlocker.identity(self.paths)
        sealed = seal_identity(
            identity, new, log_n=log_n or self.config.scrypt_log_n or SCRYPT_LOG_N, now=self.clock()
        )
        # no backup: a copy under the old passphrase would defeat changing a leaked one
        with locked(self.paths.lock, timeout=self.lock_timeout):
            write_file_atomic(self.paths.identity, sealed, ops=self.ops)

    def now_iso(self) -> str:
        return iso(self.clock())


_HALF_DONE = (
    ("MERGE_HEAD", "a merge"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
)


def half_done_git(home: Path) -> str | None:
    """The git operation left half done in a team vault's home (a merge git's driver could
    not finish, one killed midway), if any: its vault.age may be thrown away by an abort."""
    git = home / ".git"
    if not git.is_dir():
        return None
    return next((what for marker, what in _HALF_DONE if (git / marker).exists()), None)


def _reopen_identity(sealed: bytes, passphrase: Secret) -> age.X25519Identity:
    try:
        return open_identity(sealed, passphrase)
    except WrongPassphrase as exc:
        raise WrongPassphrase(
            exc.message,
            hint="identity.age is left from an interrupted `keyvault init`: give the passphrase"
            " you gave then, or move identity.age away to start afresh",
        ) from None


def _digest(data: bytes) -> bytes:
    from hashlib import blake2b  # noqa: PLC0415

    return blake2b(data, digest_size=32).digest()


class _ExportSnapshot:
    """What each project with registered .env files exported before a change, to find the
    projects whose files must follow it (nothing at all for a vault without such files)."""

    def __init__(self, doc: VaultDoc, default_base_url: str | None) -> None:
        from vault.export import export_state  # noqa: PLC0415

        self.default_base_url = default_base_url
        projects = {t.project for t in doc.exports}
        self.state = {p: export_state(doc, p, default_base_url=default_base_url) for p in projects}
        self.targets = {(t.path, t.project) for t in doc.exports}
        self.keys = {e.secret.reveal() for e in doc.entries if e.project in projects}

    def sync(self, doc: VaultDoc) -> list[SyncOutcome]:
        if not doc.exports:
            return []
        from vault.export import export_state  # noqa: PLC0415
        from vault.export.targets import drifted, sync  # noqa: PLC0415

        projects = sorted({t.project for t in doc.exports}, key=lambda p: p or "")
        changed = [
            p
            for p in projects
            if export_state(doc, p, default_base_url=self.default_base_url) != self.state.get(p)
            or any(t.project == p and (t.path, p) not in self.targets for t in doc.exports)
        ]
        others = [p for p in projects if p not in changed]
        changed += drifted(doc, others, default_base_url=self.default_base_url)
        if not changed:
            return []
        return sync(doc, changed, self.keys, default_base_url=self.default_base_url)
