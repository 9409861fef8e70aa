"""The age v1 file format (c2sp.org/age) on pyca/cryptography primitives.

keyvault writes its files as plain age so that `age -d -i identity.txt vault.age` always
recovers them. Whole buffers in, whole buffers out: vault files are small, and this keeps the
STREAM code to one AEAD call per 64 KiB chunk. Parsing is strict (canonical base64, exact
line shapes) because the CCTV vectors and the reference implementation are; every failure on
any input bytes is a `KeyvaultError`.

This package is the public API; its modules split it by idea: `header` (stanzas, the header's
text form, strict base64), `primitives` (HKDF, the header MAC, file-key wrapping, X25519 key
constructors), `x25519` and `scrypt` (recipients and identities), `stream` (the payload),
`bech32` (key text) and `file` (encrypt and decrypt whole files).
"""

from __future__ import annotations

from vault.age.file import (
    Identity,
    Recipient,
    decrypt,
    decrypt_with_file_key,
    encrypt,
    unwrap_file_key,
)
from vault.age.header import Header, Stanza, parse_header
from vault.age.primitives import FILE_KEY_SIZE, Rand
from vault.age.scrypt import MAX_SCRYPT_LOG_N, SCRYPT_LOG_N, ScryptIdentity, ScryptRecipient
from vault.age.stream import CHUNK_SIZE
from vault.age.x25519 import X25519Identity, X25519Recipient, parse_identities

__all__ = [
    "CHUNK_SIZE",
    "FILE_KEY_SIZE",
    "MAX_SCRYPT_LOG_N",
    "SCRYPT_LOG_N",
    "Header",
    "Identity",
    "Rand",
    "Recipient",
    "ScryptIdentity",
    "ScryptRecipient",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "decrypt",
    "decrypt_with_file_key",
    "encrypt",
    "parse_header",
    "parse_identities",
    "unwrap_file_key",
]
