"""The cryptographic building blocks the age format is made of, on pyca/cryptography.

HKDF-SHA-256, the header HMAC, ChaCha20-Poly1305 wrapping of the file key under a zero nonce,
and X25519 key constructors that skip the OpenSSL backend import; plus the sizes and the `Rand`
type that the recipients, the header and the payload share. Nothing here knows the file layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

Rand = Callable[[int], bytes]

# X25519PrivateKey/PublicKey's public constructors import the whole OpenSSL backend (~4 ms,
# a tenth of `keyvault env`) only to ask whether X25519 is supported, which it always is in
# the cryptography versions we require. Use the binding they call; fall back if it moves.
try:
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _RUST_X25519: Any = _rust_openssl.x25519
except (ImportError, AttributeError):  # pragma: no cover - a future cryptography layout
    _RUST_X25519 = None

FILE_KEY_SIZE = 16
TAG_SIZE = 16
WRAPPED_SIZE = FILE_KEY_SIZE + TAG_SIZE  # checked before any AEAD: no partitioning oracle
_ZERO_NONCE = bytes(12)


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def private_key(raw: bytes) -> X25519PrivateKey:
    return (
        _RUST_X25519.from_private_bytes(raw)
        if _RUST_X25519
        else X25519PrivateKey.from_private_bytes(raw)
    )


def public_key(raw: bytes) -> X25519PublicKey:
    return (
        _RUST_X25519.from_public_bytes(raw)
        if _RUST_X25519
        else X25519PublicKey.from_public_bytes(raw)
    )


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return mac(file_key, mac_input).finalize()


def mac(file_key: bytes, mac_input: bytes) -> crypto_hmac.HMAC:
    # cryptography's HMAC, not the stdlib's: `import hmac` loads OpenSSL's hashlib (~2 ms on
    # every command's startup)
    mac = crypto_hmac.HMAC(hkdf(file_key, b"", b"header"), hashes.SHA256())
    mac.update(mac_input)
    return mac


def seal_key(key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def open_key(key: bytes, body: bytes) -> bytes | None:
    """The file key, or None when this key does not open the stanza."""
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None
