"""The age payload: STREAM over ChaCha20-Poly1305, 64 KiB chunks, counter || last-chunk flag.

`seal_payload` yields the payload nonce and every sealed chunk; `open_payload` verifies every
chunk before it returns anything, and on failure tells truncation and trailing data apart from
tampering. Messages count chunks from 1.
"""

from __future__ import annotations

from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from vault.age.header import Header
from vault.age.primitives import TAG_SIZE, Rand, hkdf
from vault.errors import AgeHeaderError, AgePayloadError

CHUNK_SIZE = 64 * 1024
_NONCE_SIZE = 16


def _chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def seal_payload(plaintext: bytes, file_key: bytes, rand: Rand) -> Iterator[bytes]:
    nonce = rand(_NONCE_SIZE)
    aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
    view, count = memoryview(plaintext), max(1, -(-len(plaintext) // CHUNK_SIZE))
    chunks = (view[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE] for i in range(count))
    yield nonce
    for index, chunk in enumerate(chunks):
        yield aead.encrypt(_chunk_nonce(index, index == count - 1), chunk, None)


def open_payload(data: bytes, header: Header, file_key: bytes) -> bytes:
    """Every chunk verified before anything is returned; messages count chunks from 1."""
    nonce = bytes(data[header.payload_offset : header.payload_offset + _NONCE_SIZE])
    if len(nonce) != _NONCE_SIZE:
        raise AgeHeaderError("header: file ends before the payload nonce")
    aead = ChaCha20Poly1305(hkdf(file_key, nonce, b"payload"))
    view = memoryview(data)[header.payload_offset + _NONCE_SIZE :]
    if not view:
        raise AgePayloadError("payload: no chunks")
    step = CHUNK_SIZE + TAG_SIZE
    count = -(-len(view) // step)
    return b"".join(
        _open_chunk(aead, i, view[i * step : (i + 1) * step], i == count - 1) for i in range(count)
    )


def _open_chunk(aead: ChaCha20Poly1305, index: int, chunk: memoryview, last: bool) -> bytes:
    if len(chunk) < TAG_SIZE:
        raise AgePayloadError(f"payload: chunk {index + 1} is truncated")
    try:
        plain = aead.decrypt(_chunk_nonce(index, last), chunk, None)
    except InvalidTag:
        raise AgePayloadError(_why_chunk_failed(aead, index, chunk, last)) from None
    if last and index > 0 and not plain:
        raise AgePayloadError("payload: last chunk is empty")
    return plain


def _why_chunk_failed(aead: ChaCha20Poly1305, index: int, chunk: memoryview, last: bool) -> str:
    """Tell truncation and trailing data from tampering; one more AEAD call, on errors only."""
    try:
        aead.decrypt(_chunk_nonce(index, not last), chunk, None)
    except InvalidTag:
        return f"payload: chunk {index + 1} failed authentication"
    return "payload: file ends without a final chunk" if last else "payload: data after final chunk"
