"""Passphrase recipients and identities: the `scrypt` stanza, with a cap on its work factor.

`ScryptRecipient` wraps the file key under an scrypt-derived key (`SCRYPT_LOG_N` by default);
`ScryptIdentity` refuses a work factor above `MAX_SCRYPT_LOG_N` before doing any work, so a
crafted file cannot make us spend more. `check_scrypt_alone` enforces that a passphrase stanza is
the file's only one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vault.age.header import Stanza, b64decode, b64encode
from vault.age.primitives import WRAPPED_SIZE, Rand, open_key, seal_key
from vault.errors import AgeHeaderError, InvalidValue, WorkFactorTooHigh

SCRYPT_LOG_N = 18  # ~1 s and 256 MiB here (2 cores); OWASP's floor is 17
MAX_SCRYPT_LOG_N = 22  # ~20 s and 4 GiB here: a crafted file may cost no more
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")


def _passphrase_bytes(passphrase: str | bytes) -> bytes:
    return passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase


def _scrypt(passphrase: bytes, salt: bytes, log_n: int) -> bytes:
    kdf = Scrypt(salt=_SCRYPT_LABEL + salt, length=32, n=1 << log_n, r=8, p=1)
    return kdf.derive(passphrase)


class ScryptRecipient:
    """Encrypt to a passphrase; must be the file's only recipient."""

    __slots__ = ("_passphrase", "log_n")

    def __init__(self, passphrase: str | bytes, log_n: int = SCRYPT_LOG_N) -> None:
        if not passphrase:
            raise InvalidValue("the passphrase must not be empty")
        if not 1 <= log_n <= MAX_SCRYPT_LOG_N:
            raise InvalidValue(f"scrypt work factor must be between 1 and {MAX_SCRYPT_LOG_N}")
        self._passphrase, self.log_n = _passphrase_bytes(passphrase), log_n

    def __repr__(self) -> str:
        return f"ScryptRecipient(log_n={self.log_n})"

    def wrap(self, file_key: bytes, rand: Rand) -> list[Stanza]:
        salt = rand(16)
        body = seal_key(_scrypt(self._passphrase, salt, self.log_n), file_key)
        return [Stanza("scrypt", (b64encode(salt).decode("ascii"), str(self.log_n)), body)]


class ScryptIdentity:
    """Decrypt with a passphrase, refusing work factors above `max_log_n` before any work."""

    __slots__ = ("_passphrase", "max_log_n")

    def __init__(self, passphrase: str | bytes, max_log_n: int = MAX_SCRYPT_LOG_N) -> None:
        self._passphrase, self.max_log_n = _passphrase_bytes(passphrase), max_log_n

    def __repr__(self) -> str:
        return f"ScryptIdentity(max_log_n={self.max_log_n})"

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        ours = [stanza for stanza in stanzas if stanza.type == "scrypt"]
        if not ours:
            return None
        check_scrypt_alone(stanzas)
        salt, work_factor = _scrypt_parts(ours[0])
        # int() of thousands of digits is itself an error; three digits exceed any limit
        log_n = int(work_factor) if len(work_factor) <= 3 else None
        if log_n is None or log_n > self.max_log_n:
            shown = work_factor if log_n else work_factor[:3] + "…"
            raise WorkFactorTooHigh(
                f"header: scrypt work factor {shown} is above the limit of {self.max_log_n}"
            )
        return open_key(_scrypt(self._passphrase, salt, log_n), ours[0].body)


def _scrypt_parts(stanza: Stanza) -> tuple[bytes, str]:
    if len(stanza.args) != 2 or len(stanza.body) != WRAPPED_SIZE:
        raise AgeHeaderError("header: invalid scrypt stanza")
    salt, work_factor = b64decode(stanza.args[0], "scrypt salt"), stanza.args[1]
    if len(salt) != 16 or not _WORK_FACTOR.fullmatch(work_factor):
        raise AgeHeaderError("header: invalid scrypt stanza")
    return salt, work_factor


def check_scrypt_alone(stanzas: Sequence[Stanza]) -> None:
    """A passphrase file authenticates its sender only if nobody else could have written it."""
    if len(stanzas) > 1 and any(stanza.type == "scrypt" for stanza in stanzas):
        raise AgeHeaderError("header: scrypt stanza must be the only stanza")
