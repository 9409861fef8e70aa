"""The owner's X25519 identity, kept in `identity.age` under a passphrase.

`identity.age` is an age file (scrypt stanza) whose plaintext is an age-keygen style
identity file, so `age -d -i identity.age vault.age` recovers a vault with the stock tool.
Unlocking = scrypt once (here) + X25519 for the vault (in `vault.store.keyvault`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path

from vault.errors import (
    AgeFormatError,
    DamagedIdentity,
    InvalidValue,
    KeyvaultError,
    NoMatchingIdentity,
    NoPassphraseSource,
    WrongPassphrase,
)
from vault.model.savedtext import decode_saved
from vault.model.secret import Secret
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime as dt

    # imported where used: a session-unlocked command never loads cryptography
    from vault import age

SCRYPT_LOG_N = 18  # ~0.5 s and 256 MiB here; OWASP's floor for scrypt is 2^17
MIN_PASSPHRASE = 8

PassphraseSource = Callable[[str], Secret]  # prompt text → passphrase


# NamedTuple, not a dataclass: dataclasses cost milliseconds at import on the hot path
class UnlockSettings(NamedTuple):
    """Where a non-interactive unlock can come from (the environment variables in README.md)."""

    identity: Secret | None = None  # KEYVAULT_IDENTITY
    identity_file: Path | None = None  # KEYVAULT_IDENTITY_FILE
    passphrase: Secret | None = None  # KEYVAULT_PASSPHRASE
    passphrase_file: Path | None = None  # KEYVAULT_PASSPHRASE_FILE

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> UnlockSettings:
        def path(name: str) -> Path | None:
            return Path(environ[name]).expanduser() if environ.get(name) else None

        def secret(name: str) -> Secret | None:
            return Secret(environ[name]) if environ.get(name) else None

        return cls(
            identity=secret("KEYVAULT_IDENTITY"),
            identity_file=path("KEYVAULT_IDENTITY_FILE"),
            passphrase=secret("KEYVAULT_PASSPHRASE"),
            passphrase_file=path("KEYVAULT_PASSPHRASE_FILE"),
        )


def identity_text(identity: age.X25519Identity, *, now: dt.datetime) -> bytes:
    """The age-keygen file format: comments, then the secret key line."""
    return (
        f"# created: {now.replace(microsecond=0).isoformat()}\n"
        f"# public key: {identity.recipient().to_string()}\n"
        f"{identity.to_string()}\n"
    ).encode()


def parse_identity_text(text: str, *, source: str) -> age.X25519Identity:
    """The first `AGE-SECRET-KEY-1…` line of an identity file (comments and blanks skipped)."""
    from vault import age  # noqa: PLC0415

    # a byte-order mark first: the file was saved by Notepad or PowerShell
    for raw_line in text.removeprefix("\ufeff").splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#"):
            try:
                return age.X25519Identity.parse(line)
            except KeyvaultError:
                break
    raise InvalidValue(f"{source} does not hold an age identity (AGE-SECRET-KEY-1…)")


def seal_identity(
    identity: age.X25519Identity,
    passphrase: Secret,
    *,
    log_n: int = SCRYPT_LOG_N,
    now: dt.datetime,
    rand: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt the identity under the passphrase (scrypt stanza)."""
    from vault import age  # noqa: PLC0415

    check_new_passphrase(passphrase)
    recipient = age.ScryptRecipient(passphrase.reveal(), log_n=log_n)
    return age.encrypt(identity_text(identity, now=now), [recipient], rand=rand)


# identity.age is not vault.age: its damage is never fixed by restoring vault.age.bak
RESTORE_IDENTITY_HINT = (
    "identity.age is damaged, not vault.age: restore identity.age from your own copy, or open"
    " the vault with an exported identity (KEYVAULT_IDENTITY_FILE)"
)


def open_identity(sealed: bytes, passphrase: Secret) -> age.X25519Identity:
    """Decrypt `identity.age`; a wrong passphrase raises WrongPassphrase (exit 3), a damaged
    file DamagedIdentity (exit 4) naming identity.age."""
    from vault import age  # noqa: PLC0415

    try:
        plain = age.decrypt(sealed, [age.ScryptIdentity(passphrase.reveal())])
    except NoMatchingIdentity:
        raise WrongPassphrase(
            "wrong passphrase or damaged identity",
            hint="identity.age did not open with that passphrase",
        ) from None
    except AgeFormatError as exc:  # kept as the cause: which part is damaged (no secret in it)
        raise DamagedIdentity(f"identity.age: {exc.message}", hint=RESTORE_IDENTITY_HINT) from exc
    try:
        return parse_identity_text(plain.decode("utf-8", "replace"), source="identity.age")
    except InvalidValue as exc:
        raise DamagedIdentity(exc.message, hint=RESTORE_IDENTITY_HINT) from None


def check_new_passphrase(passphrase: Secret) -> None:
    value = passphrase.reveal()
    if len(value) < MIN_PASSPHRASE:
        raise InvalidValue(f"the passphrase must have at least {MIN_PASSPHRASE} characters")
    if value != value.strip() or "\n" in value:
        raise InvalidValue("the passphrase must not start or end with spaces or hold a newline")


Warn = Callable[[str], None]


def read_passphrase_file(
    path: Path, *, variable: str = "KEYVAULT_PASSPHRASE_FILE", warn: Warn | None = None
) -> Secret:
    """KEYVAULT_PASSPHRASE_FILE (or `variable`): the first line, without its newline. A file
    others can read is used, with a warning through `warn` (as ssh warns about keys)."""
    try:
        # a byte-order mark (Notepad, PowerShell) is not part of the passphrase, and Windows
        # PowerShell 5 saves `echo $pass > file` as UTF-16
        text = decode_saved(path.read_bytes())
    except UnicodeDecodeError:
        # the decoder's message quotes a byte of the passphrase: say only what is wrong
        raise NoPassphraseSource(f"{variable} {path} is not UTF-8 text") from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise NoPassphraseSource(f"cannot read {variable} {path} ({reason})") from None
    warn_if_readable(path, variable, warn)
    return Secret(text.splitlines()[0] if text else "")


def warn_if_readable(path: Path, variable: str, warn: Warn | None) -> None:
    """Warn when a file holding a passphrase or an identity is open to group or others:
    anyone who can read it can open the whole vault. POSIX modes only (not Windows)."""
    if warn is None or os.name != "posix":
        return
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        warn(
            f"{variable} {path} is readable by other users (mode {mode:04o}): anyone who can"
            f" read it can open the vault; run `chmod 600 {path}`"
        )
