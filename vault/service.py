"""Open, read and change a vault: the one place that ties age, the document and the store.

`Keyvault` is what the CLI (and any Python caller) uses:

    kv = Keyvault(Paths(home), unlocker)
    doc = kv.read()                      # decrypt, no lock
    kv.transact(lambda doc: doc.add(...)) # lock → read → change → seal → atomic save

Every change bumps the generation and is sealed to every recipient listed in the document.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from typing import Protocol, TypeVar

from vault import document
from vault.config import Config, Paths, ensure_private_dir, load_config
from vault.errors import (
    AgeFormatError,
    ConcurrentModification,
    DamagedVault,
    NoMatchingIdentity,
    NoPassphraseSource,
    VaultExists,
    VaultNotFound,
    WrongPassphrase,
)
from vault.identity import (
    SCRYPT_LOG_N,
    PassphraseSource,
    UnlockSettings,
    open_identity,
    parse_identity_text,
    read_passphrase_file,
    seal_identity,
)
from vault.model import VaultDoc
from vault.secret import Secret
from vault.store import (
    REAL_OPS,
    FileOps,
    file_stamp,
    locked,
    read_file,
    sweep_temp_files,
    write_file_atomic,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    # `vault.age` loads cryptography: commands that a session unlocks never import it
    from vault import age

T = TypeVar("T")
Clock = Callable[[], dt.datetime]


class SessionLike(Protocol):
    """An unlocked session (`vault.session.Session`): decrypts with an identity it keeps."""

    def decrypt(self, sealed: bytes) -> bytes | None:
        """The plaintext, or None when there is no session to ask."""

    def recipient(self) -> str | None:
        """The session identity's public key, or None when there is no session."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Unlocker:
    """Finds what opens the vault, asking for a passphrase only as a last resort.

    Order: KEYVAULT_IDENTITY, KEYVAULT_IDENTITY_FILE, a cached session, KEYVAULT_PASSPHRASE,
    KEYVAULT_PASSPHRASE_FILE, then `ask` (a prompt on the terminal). With no terminal and none
    of these, it fails at once with NoPassphraseSource (exit 3), never waiting for input.

    A session decrypts for us but never gives its identity out, so `identity()` (for the
    commands that need the key itself: `passwd`, `identity export`) skips it.
    """

    def __init__(
        self,
        settings: UnlockSettings | None = None,
        ask: PassphraseSource | None = None,
        session: SessionLike | None = None,
    ) -> None:
        self.settings = settings if settings is not None else UnlockSettings()
        self.ask = ask
        self.session = session
        self._cached: age.X25519Identity | None = None

    def decrypt(self, paths: Paths, sealed: bytes) -> bytes:
        """The plaintext of an age file sealed to the vault's identity.

        Raises what `vault.age.decrypt` raises, and the unlock errors of `identity()`.
        """
        session = self._session_to_ask()
        if session is not None and (plain := session.decrypt(sealed)) is not None:
            return plain
        from vault import age  # noqa: PLC0415

        return age.decrypt(sealed, [self.identity(paths)])

    def recipient(self, paths: Paths) -> str:
        """The public key (age1…) of whatever unlocks the vault here."""
        session = self._session_to_ask()
        if session is not None and (found := session.recipient()) is not None:
            return found
        return self.identity(paths).recipient().to_string()

    def identity(self, paths: Paths) -> age.X25519Identity:
        """The identity itself, from the environment or the passphrase (never a session)."""
        if self._cached is None:
            self._cached = self._find(paths)
        return self._cached

    def _session_to_ask(self) -> SessionLike | None:
        """The session, unless an identity was given or has already been opened here."""
        s = self.settings
        if s.identity is not None or s.identity_file is not None or self._cached is not None:
            return None
        return self.session

    def _find(self, paths: Paths) -> age.X25519Identity:
        s = self.settings
        if s.identity is not None:
            return parse_identity_text(s.identity.reveal(), source="KEYVAULT_IDENTITY")
        if s.identity_file is not None:
            return parse_identity_text(_read_text(s.identity_file), source=str(s.identity_file))
        return open_identity(_read_identity_file(paths), self.passphrase())

    def passphrase(self, prompt: str = "passphrase: ") -> Secret:
        s = self.settings
        if s.passphrase is not None:
            return s.passphrase
        if s.passphrase_file is not None:
            return read_passphrase_file(s.passphrase_file)
        if self.ask is None:
            if self.session is not None and self.session.recipient() is not None:
                raise NoPassphraseSource(
                    "this command needs the passphrase even while unlocked (the session opens"
                    " the vault but never hands out the identity), and there is no terminal",
                    hint="run it in a terminal, or set KEYVAULT_PASSPHRASE_FILE or"
                    " KEYVAULT_IDENTITY",
                )
            raise NoPassphraseSource(
                "the vault is locked and there is no terminal to ask for the passphrase",
                hint="run `keyvault unlock` in a terminal, or set KEYVAULT_PASSPHRASE_FILE or"
                " KEYVAULT_IDENTITY for automation",
            )
        return self.ask(prompt)


def _read_text(path: os.PathLike[str]) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise NoPassphraseSource(f"cannot read identity file {path} ({exc})") from None


def _read_identity_file(paths: Paths) -> bytes:
    try:
        return read_file(paths.identity)
    except FileNotFoundError:
        raise VaultNotFound(
            f"no identity at {paths.identity}", hint="run `keyvault init` to create a vault"
        ) from None


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
    ) -> None:
        self.paths = paths
        self.unlocker = unlocker
        self.clock = clock
        self.ops = ops
        self._lock_timeout = lock_timeout
        self._config = config

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

    def init(self, passphrase: Secret, *, log_n: int | None = None) -> age.X25519Identity:
        """Create identity.age and an empty vault.age; refuse to overwrite either."""
        ensure_private_dir(self.paths.home)
        for path in (self.paths.vault, self.paths.identity):
            if path.exists() or path.is_symlink():
                raise VaultExists(
                    f"{path} already exists",
                    hint="use --vault or KEYVAULT_HOME for a second vault",
                )
        from vault import age  # noqa: PLC0415

        now = self.clock()
        identity = age.X25519Identity.generate()
        sealed_identity = seal_identity(
            identity, passphrase, log_n=log_n or self.config.scrypt_log_n or SCRYPT_LOG_N, now=now
        )
        doc = VaultDoc(
            generation=1,
            recipients=[{"name": "owner", "recipient": identity.recipient().to_string()}],
        )
        doc.record({"at": _iso(now), "action": "init"})
        with locked(self.paths.lock, timeout=self.lock_timeout):
            write_file_atomic(self.paths.identity, sealed_identity, ops=self.ops)
            write_file_atomic(self.paths.vault, self.seal(doc), ops=self.ops)
        return identity

    # --- read -----------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.paths.vault.exists()

    def read(self) -> VaultDoc:
        """Decrypt the vault without locking (saves are atomic replaces)."""
        sealed = self._read_vault_bytes()
        return self.open(sealed)

    def open(self, sealed: bytes) -> VaultDoc:
        try:
            plain = self.unlocker.decrypt(self.paths, sealed)
        except AgeFormatError as exc:
            raise type(exc)(f"{self.paths.vault.name}: {exc.message}", hint=exc.hint) from None
        except NoMatchingIdentity:
            raise WrongPassphrase(
                "this identity cannot open vault.age",
                hint="the vault was sealed to other recipients; check KEYVAULT_IDENTITY",
            ) from None
        return document.loads(plain, source=self.paths.vault.name)

    def _read_vault_bytes(self) -> bytes:
        try:
            return read_file(self.paths.vault)
        except FileNotFoundError:
            hint = "run `keyvault init` to create one"
            if self.paths.backup.exists():
                hint = f"a backup exists: {self.paths.backup}"
            raise VaultNotFound(f"no vault at {self.paths.vault}", hint=hint) from None

    # --- change ---------------------------------------------------------------------------

    def transact(self, change: Callable[[VaultDoc], T], *, backup_previous: bool = True) -> T:
        """Lock, read, apply `change`, seal and save; on any error the vault is unchanged.

        `backup_previous=False` makes the backup a copy of the new file instead of the old
        one: used when the old file must stop existing (a recipient was removed).
        """
        if not self.paths.vault.exists():
            self._read_vault_bytes()  # raises VaultNotFound with the right hint
        with locked(self.paths.lock, timeout=self.lock_timeout):
            sweep_temp_files(self.paths.vault)
            sealed = self._read_vault_bytes()
            stamp = file_stamp(self.paths.vault)
            doc = self.open(sealed)
            del sealed  # a large vault's old bytes need not stay in memory through the save
            result = change(doc)
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
        return result

    def seal(self, doc: VaultDoc) -> bytes:
        from vault import age  # noqa: PLC0415

        recipients = [_recipient(r) for r in doc.recipients]
        if not recipients:
            raise DamagedVault("the vault lists no recipients; refusing to seal it to nobody")
        return age.encrypt(document.dumps(doc), recipients)

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
        return _iso(self.clock())


def _recipient(raw: dict[str, str]) -> age.X25519Recipient:
    from vault import age  # noqa: PLC0415

    try:
        return age.X25519Recipient.parse(raw["recipient"])
    except (KeyError, TypeError):
        raise DamagedVault("the vault's recipient list is malformed") from None


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
