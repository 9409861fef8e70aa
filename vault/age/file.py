"""Whole age files: encrypt to recipients, decrypt with identities, or with a known file key.

`Recipient` and `Identity` are the protocols the X25519 and scrypt classes satisfy; `encrypt`
draws a file key, wraps it for every recipient and seals the payload, and the decrypt functions
unwrap a stanza, verify the header MAC, then open the payload. Whole buffers in and out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Protocol

from cryptography.exceptions import InvalidSignature

from vault.age.header import Header, Stanza, encode_header, parse_header
from vault.age.primitives import FILE_KEY_SIZE, Rand, mac
from vault.age.scrypt import check_scrypt_alone
from vault.age.stream import open_payload, seal_payload
from vault.errors import AgeHeaderError, AgeHeaderMacError, InvalidValue, NoMatchingIdentity


class Recipient(Protocol):
    def wrap(self, file_key: bytes, rand: Rand) -> list[Stanza]:
        """Stanzas that carry `file_key` to this recipient."""


class Identity(Protocol):
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key, None if no stanza is ours; AgeFormatError if one of ours is bad."""


def encrypt(plaintext: bytes, recipients: Sequence[Recipient], *, rand: Rand = os.urandom) -> bytes:
    """An age v1 file that any of `recipients` can open; `rand` makes tests deterministic."""
    if not recipients:
        raise InvalidValue("an age file needs at least one recipient")
    file_key = rand(FILE_KEY_SIZE)
    stanzas = [stanza for recipient in recipients for stanza in recipient.wrap(file_key, rand)]
    try:
        check_scrypt_alone(stanzas)
    except AgeHeaderError:
        raise InvalidValue("a passphrase must be the file's only recipient") from None
    # one join for header and payload: a large vault is copied once, not twice
    return b"".join([encode_header(stanzas, file_key), *seal_payload(plaintext, file_key, rand)])


def decrypt(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The plaintext, once the header MAC and every payload chunk have been verified."""
    header = parse_header(data)
    return open_payload(data, header, _unwrap(header, identities))


def unwrap_file_key(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The file key: header parsed, a stanza unwrapped, and the header MAC verified."""
    return _unwrap(parse_header(data), identities)


def decrypt_with_file_key(data: bytes, file_key: bytes) -> bytes:
    """Decrypt with a known file key (tests, recovery); the header MAC is still checked."""
    if len(file_key) != FILE_KEY_SIZE:
        raise InvalidValue(f"an age file key has {FILE_KEY_SIZE} bytes")
    header = parse_header(data)
    _verify_mac(header, file_key)
    return open_payload(data, header, file_key)


def _unwrap(header: Header, identities: Sequence[Identity]) -> bytes:
    check_scrypt_alone(header.stanzas)
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            _verify_mac(header, file_key)
            return file_key
    raise NoMatchingIdentity("no identity matched: wrong passphrase or key")


def _verify_mac(header: Header, file_key: bytes) -> None:
    try:
        mac(file_key, header.mac_input).verify(header.mac)  # constant time
    except InvalidSignature:
        raise AgeHeaderMacError("header mac mismatch") from None
