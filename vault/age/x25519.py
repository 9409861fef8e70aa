"""X25519 recipients and identities: `age1…` public keys and `AGE-SECRET-KEY-1…` private keys.

A recipient wraps the file key to an ephemeral X25519 share (HKDF over the shared secret, then
ChaCha20-Poly1305); an identity finds its `X25519` stanzas and unwraps them. `parse_identities`
reads an age-keygen style identity file. Keys print only their public half.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from vault.age.bech32 import bech32_decode, bech32_encode
from vault.age.header import Stanza, b64decode, b64encode
from vault.age.primitives import (
    WRAPPED_SIZE,
    Rand,
    hkdf,
    open_key,
    private_key,
    public_key,
    seal_key,
)
from vault.errors import AgeHeaderError, InvalidValue

_X25519_INFO = b"age-encryption.org/v1/X25519"


class X25519Recipient:
    """An `age1…` public key."""

    __slots__ = ("_public",)

    def __init__(self, public: bytes) -> None:
        if len(public) != 32:
            raise InvalidValue("an age recipient is a 32-byte x25519 key")
        self._public = public

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        return cls(bech32_decode(text, "age", what="age recipient"))

    def to_string(self) -> str:
        return bech32_encode("age", self._public)

    def __repr__(self) -> str:
        return f"X25519Recipient({self.to_string()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._public == self._public

    def __hash__(self) -> int:
        return hash(self._public)

    def wrap(self, file_key: bytes, rand: Rand) -> list[Stanza]:
        ephemeral = private_key(rand(32))
        share = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(public_key(self._public))
        except ValueError:
            raise InvalidValue("age recipient is a low-order point") from None
        key = hkdf(shared, share + self._public, _X25519_INFO)
        return [Stanza("X25519", (b64encode(share).decode("ascii"),), seal_key(key, file_key))]


class X25519Identity:
    """An `AGE-SECRET-KEY-1…` private key; its str and repr show only the public key."""

    __slots__ = ("_key",)

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls, rand: Rand = os.urandom) -> X25519Identity:
        return cls(private_key(rand(32)))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        secret = bech32_decode(text, "AGE-SECRET-KEY-", what="age identity")
        return cls(private_key(secret))

    def to_string(self) -> str:
        return bech32_encode("age-secret-key-", self._key.private_bytes_raw()).upper()

    def recipient(self) -> X25519Recipient:
        return X25519Recipient(self._key.public_key().public_bytes_raw())

    def __repr__(self) -> str:
        return f"X25519Identity(recipient={self.recipient().to_string()!r})"

    __str__ = __repr__

    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        ours = [_x25519_parts(stanza) for stanza in stanzas if stanza.type == "X25519"]
        public = self._key.public_key().public_bytes_raw()
        for share, body in ours:
            try:
                shared = self._key.exchange(public_key(share))
            except ValueError:  # OpenSSL refuses the all-zero shared secret of low-order points
                raise AgeHeaderError("header: x25519 share is a low-order point") from None
            file_key = open_key(hkdf(shared, share + public, _X25519_INFO), body)
            if file_key is not None:
                return file_key
        return None


def _x25519_parts(stanza: Stanza) -> tuple[bytes, bytes]:
    if len(stanza.args) != 1 or len(stanza.body) != WRAPPED_SIZE:
        raise AgeHeaderError("header: invalid x25519 stanza")
    share = b64decode(stanza.args[0], "x25519 share")
    if len(share) != 32:
        raise AgeHeaderError("header: invalid x25519 stanza")
    return share, stanza.body


def parse_identities(text: str) -> list[X25519Identity]:
    """Every identity in an age-keygen style file; `#` comments and blank lines are skipped."""
    lines = [line.strip() for line in text.splitlines()]
    identities = [X25519Identity.parse(line) for line in lines if line and line[0] != "#"]
    if not identities:
        raise InvalidValue("no age identity (AGE-SECRET-KEY-1…) found")
    return identities
