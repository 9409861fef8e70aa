"""The age v1 file format (c2sp.org/age) on pyca/cryptography primitives.

keyvault writes its files as plain age so that `age -d -i identity.txt vault.age` always
recovers them. Whole buffers in, whole buffers out: vault files are small, and this keeps the
STREAM code to one AEAD call per 64 KiB chunk. Parsing is strict (canonical base64, exact
line shapes) because the CCTV vectors and the reference implementation are; every failure on
any input bytes is a `KeyvaultError`.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vault.errors import (
    AgeHeaderError,
    AgeHeaderMacError,
    AgePayloadError,
    InvalidValue,
    NoMatchingIdentity,
    WorkFactorTooHigh,
)

Rand = Callable[[int], bytes]

# X25519PrivateKey/PublicKey's public constructors import the whole OpenSSL backend (~4 ms,
# a tenth of `keyvault env`) only to ask whether X25519 is supported, which it always is in
# the cryptography versions we require. Use the binding they call; fall back if it moves.
try:
    from cryptography.hazmat.bindings._rust import openssl as _rust_openssl

    _RUST_X25519: Any = _rust_openssl.x25519
except (ImportError, AttributeError):  # pragma: no cover - a future cryptography layout
    _RUST_X25519 = None

SCRYPT_LOG_N = 18  # ~1 s and 256 MiB here (2 cores); OWASP's floor is 17
MAX_SCRYPT_LOG_N = 22  # ~20 s and 4 GiB here: a crafted file may cost no more
CHUNK_SIZE = 64 * 1024
FILE_KEY_SIZE = 16
_TAG_SIZE = 16
_NONCE_SIZE = 16
_WRAPPED_SIZE = FILE_KEY_SIZE + _TAG_SIZE  # checked before any AEAD: no partitioning oracle
_VERSION_LINE = b"age-encryption.org/v1\n"
_X25519_INFO = b"age-encryption.org/v1/X25519"
_SCRYPT_LABEL = b"age-encryption.org/v1/scrypt"
_ZERO_NONCE = bytes(12)
_ARGUMENT = re.compile(rb"[\x21-\x7e]+")
_BODY_LINE = re.compile(rb"[A-Za-z0-9+/]{0,64}")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")
_WORK_FACTOR = re.compile(r"[1-9][0-9]*")


# --- header -------------------------------------------------------------------------------


# NamedTuple, not a dataclass: dataclasses cost milliseconds at import on the hot path
class Stanza(NamedTuple):
    """One recipient stanza: `-> type args…` and its decoded body."""

    type: str
    args: tuple[str, ...]
    body: bytes


class Header(NamedTuple):
    """A parsed header; `mac_input` is the text the MAC covers (up to and including `---`)."""

    stanzas: tuple[Stanza, ...]
    mac: bytes
    mac_input: bytes
    payload_offset: int


def _b64decode(text: bytes | str, what: str) -> bytes:
    """Unpadded, canonical base64 only: anything else would make headers malleable."""
    raw_text = text.encode("ascii") if isinstance(text, str) else text
    if not _BASE64.fullmatch(raw_text) or len(raw_text) % 4 == 1:
        raise AgeHeaderError(f"header: invalid base64 in {what}")
    raw = base64.b64decode(raw_text + b"=" * (-len(raw_text) % 4))
    if _b64encode(raw) != raw_text:
        raise AgeHeaderError(f"header: non-canonical base64 in {what}")
    return raw


def _b64encode(raw: bytes) -> bytes:
    return base64.b64encode(raw).rstrip(b"=")


class _Lines:
    """Reads LF-terminated lines; a header that ends mid-line is truncated."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def next(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise AgeHeaderError("header: unexpected end of file")
        line, self.pos = self.data[self.pos : end], end + 1
        return line


def parse_header(data: bytes) -> Header:
    """Parse and syntax-check the header; the MAC is verified later, with the file key."""
    if not data.startswith(_VERSION_LINE):
        known = data.startswith(b"age-encryption.org/")
        raise AgeHeaderError("header: unsupported version" if known else "header: not an age file")
    lines, stanzas = _Lines(data, len(_VERSION_LINE)), []
    while True:
        start, line = lines.pos, lines.next()
        if line.startswith(b"-> "):
            stanzas.append(_parse_stanza(line, lines))
        elif line.startswith(b"---"):
            mac = _b64decode(line[4:], "header mac") if line.startswith(b"--- ") else b""
            if len(mac) != 32:
                raise AgeHeaderError("header: malformed mac line")
            if not stanzas:
                raise AgeHeaderError("header: no recipient stanzas")
            return Header(tuple(stanzas), mac, bytes(data[: start + 3]), lines.pos)
        else:
            raise AgeHeaderError("header: malformed line")


def _parse_stanza(line: bytes, lines: _Lines) -> Stanza:
    args = line[3:].split(b" ")
    if not all(_ARGUMENT.fullmatch(arg) for arg in args):
        raise AgeHeaderError("header: invalid stanza arguments")
    body_lines = [lines.next()]
    while len(body_lines[-1]) == 64:  # a full line means the body goes on
        body_lines.append(lines.next())
    if not all(_BODY_LINE.fullmatch(body_line) for body_line in body_lines):
        raise AgeHeaderError("header: invalid stanza body line")
    texts = [arg.decode("ascii") for arg in args]
    return Stanza(texts[0], tuple(texts[1:]), _b64decode(b"".join(body_lines), "stanza body"))


def _encode_header(stanzas: Sequence[Stanza], file_key: bytes) -> bytes:
    parts = [_VERSION_LINE]
    for stanza in stanzas:
        parts.append(" ".join(("->", stanza.type, *stanza.args)).encode("ascii") + b"\n")
        body = _b64encode(stanza.body)
        parts += [body[i : i + 64] + b"\n" for i in range(0, len(body), 64)]
        if len(body) % 64 == 0:  # the body must end with a short line, even an empty one
            parts.append(b"\n")
    mac_input = b"".join([*parts, b"---"])
    return mac_input + b" " + _b64encode(_header_mac(file_key, mac_input)) + b"\n"


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def _private_key(raw: bytes) -> X25519PrivateKey:
    return (
        _RUST_X25519.from_private_bytes(raw)
        if _RUST_X25519
        else X25519PrivateKey.from_private_bytes(raw)
    )


def _public_key(raw: bytes) -> X25519PublicKey:
    return (
        _RUST_X25519.from_public_bytes(raw)
        if _RUST_X25519
        else X25519PublicKey.from_public_bytes(raw)
    )


def _header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    return _mac(file_key, mac_input).finalize()


def _mac(file_key: bytes, mac_input: bytes) -> crypto_hmac.HMAC:
    # cryptography's HMAC, not the stdlib's: `import hmac` loads OpenSSL's hashlib (~2 ms on
    # every command's startup)
    mac = crypto_hmac.HMAC(_hkdf(file_key, b"", b"header"), hashes.SHA256())
    mac.update(mac_input)
    return mac


def _seal_key(key: bytes, file_key: bytes) -> bytes:
    return ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def _open_key(key: bytes, body: bytes) -> bytes | None:
    """The file key, or None when this key does not open the stanza."""
    try:
        return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, body, None)
    except InvalidTag:
        return None


# --- recipients and identities ------------------------------------------------------------


class Recipient(Protocol):
    def wrap(self, file_key: bytes, rand: Rand) -> list[Stanza]:
        """Stanzas that carry `file_key` to this recipient."""


class Identity(Protocol):
    def unwrap(self, stanzas: Sequence[Stanza]) -> bytes | None:
        """The file key, None if no stanza is ours; AgeFormatError if one of ours is bad."""


class X25519Recipient:
    """An `age1…` public key."""

    __slots__ = ("_public",)

    def __init__(self, public: bytes) -> None:
        if len(public) != 32:
            raise InvalidValue("an age recipient is a 32-byte x25519 key")
        self._public = public

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        return cls(_bech32_decode(text, "age", what="age recipient"))

    def to_string(self) -> str:
        return _bech32_encode("age", self._public)

    def __repr__(self) -> str:
        return f"X25519Recipient({self.to_string()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, X25519Recipient) and other._public == self._public

    def __hash__(self) -> int:
        return hash(self._public)

    def wrap(self, file_key: bytes, rand: Rand) -> list[Stanza]:
        ephemeral = _private_key(rand(32))
        share = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(_public_key(self._public))
        except ValueError:
            raise InvalidValue("age recipient is a low-order point") from None
        key = _hkdf(shared, share + self._public, _X25519_INFO)
        return [Stanza("X25519", (_b64encode(share).decode("ascii"),), _seal_key(key, file_key))]


class X25519Identity:
    """An `AGE-SECRET-KEY-1…` private key; its str and repr show only the public key."""

    __slots__ = ("_key",)

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key

    @classmethod
    def generate(cls, rand: Rand = os.urandom) -> X25519Identity:
        return cls(_private_key(rand(32)))

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        secret = _bech32_decode(text, "AGE-SECRET-KEY-", what="age identity")
        return cls(_private_key(secret))

    def to_string(self) -> str:
        return _bech32_encode("age-secret-key-", self._key.private_bytes_raw()).upper()

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
                shared = self._key.exchange(_public_key(share))
            except ValueError:  # OpenSSL refuses the all-zero shared secret of low-order points
                raise AgeHeaderError("header: x25519 share is a low-order point") from None
            file_key = _open_key(_hkdf(shared, share + public, _X25519_INFO), body)
            if file_key is not None:
                return file_key
        return None


def _x25519_parts(stanza: Stanza) -> tuple[bytes, bytes]:
    if len(stanza.args) != 1 or len(stanza.body) != _WRAPPED_SIZE:
        raise AgeHeaderError("header: invalid x25519 stanza")
    share = _b64decode(stanza.args[0], "x25519 share")
    if len(share) != 32:
        raise AgeHeaderError("header: invalid x25519 stanza")
    return share, stanza.body


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
        body = _seal_key(_scrypt(self._passphrase, salt, self.log_n), file_key)
        return [Stanza("scrypt", (_b64encode(salt).decode("ascii"), str(self.log_n)), body)]


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
        _check_scrypt_alone(stanzas)
        salt, work_factor = _scrypt_parts(ours[0])
        # int() of thousands of digits is itself an error; three digits exceed any limit
        log_n = int(work_factor) if len(work_factor) <= 3 else None
        if log_n is None or log_n > self.max_log_n:
            shown = work_factor if log_n else work_factor[:3] + "…"
            raise WorkFactorTooHigh(
                f"header: scrypt work factor {shown} is above the limit of {self.max_log_n}"
            )
        return _open_key(_scrypt(self._passphrase, salt, log_n), ours[0].body)


def _scrypt_parts(stanza: Stanza) -> tuple[bytes, str]:
    if len(stanza.args) != 2 or len(stanza.body) != _WRAPPED_SIZE:
        raise AgeHeaderError("header: invalid scrypt stanza")
    salt, work_factor = _b64decode(stanza.args[0], "scrypt salt"), stanza.args[1]
    if len(salt) != 16 or not _WORK_FACTOR.fullmatch(work_factor):
        raise AgeHeaderError("header: invalid scrypt stanza")
    return salt, work_factor


def _check_scrypt_alone(stanzas: Sequence[Stanza]) -> None:
    """A passphrase file authenticates its sender only if nobody else could have written it."""
    if len(stanzas) > 1 and any(stanza.type == "scrypt" for stanza in stanzas):
        raise AgeHeaderError("header: scrypt stanza must be the only stanza")


# --- files --------------------------------------------------------------------------------


def encrypt(plaintext: bytes, recipients: Sequence[Recipient], *, rand: Rand = os.urandom) -> bytes:
    """An age v1 file that any of `recipients` can open; `rand` makes tests deterministic."""
    if not recipients:
        raise InvalidValue("an age file needs at least one recipient")
    file_key = rand(FILE_KEY_SIZE)
    stanzas = [stanza for recipient in recipients for stanza in recipient.wrap(file_key, rand)]
    try:
        _check_scrypt_alone(stanzas)
    except AgeHeaderError:
        raise InvalidValue("a passphrase must be the file's only recipient") from None
    # one join for header and payload: a large vault is copied once, not twice
    return b"".join([_encode_header(stanzas, file_key), *_seal_payload(plaintext, file_key, rand)])


def decrypt(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The plaintext, once the header MAC and every payload chunk have been verified."""
    header = parse_header(data)
    return _open_payload(data, header, _unwrap(header, identities))


def unwrap_file_key(data: bytes, identities: Sequence[Identity]) -> bytes:
    """The file key: header parsed, a stanza unwrapped, and the header MAC verified."""
    return _unwrap(parse_header(data), identities)


def decrypt_with_file_key(data: bytes, file_key: bytes) -> bytes:
    """Decrypt with a known file key (tests, recovery); the header MAC is still checked."""
    if len(file_key) != FILE_KEY_SIZE:
        raise InvalidValue(f"an age file key has {FILE_KEY_SIZE} bytes")
    header = parse_header(data)
    _verify_mac(header, file_key)
    return _open_payload(data, header, file_key)


def _unwrap(header: Header, identities: Sequence[Identity]) -> bytes:
    _check_scrypt_alone(header.stanzas)
    for identity in identities:
        file_key = identity.unwrap(header.stanzas)
        if file_key is not None:
            _verify_mac(header, file_key)
            return file_key
    raise NoMatchingIdentity("no identity matched: wrong passphrase or key")


def _verify_mac(header: Header, file_key: bytes) -> None:
    try:
        _mac(file_key, header.mac_input).verify(header.mac)  # constant time
    except InvalidSignature:
        raise AgeHeaderMacError("header mac mismatch") from None


# --- payload: STREAM, 64 KiB chunks, counter || last-chunk flag as nonce -------------------


def _chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def _seal_payload(plaintext: bytes, file_key: bytes, rand: Rand) -> Iterator[bytes]:
    nonce = rand(_NONCE_SIZE)
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    view, count = memoryview(plaintext), max(1, -(-len(plaintext) // CHUNK_SIZE))
    chunks = (view[i * CHUNK_SIZE : (i + 1) * CHUNK_SIZE] for i in range(count))
    yield nonce
    for index, chunk in enumerate(chunks):
        yield aead.encrypt(_chunk_nonce(index, index == count - 1), chunk, None)


def _open_payload(data: bytes, header: Header, file_key: bytes) -> bytes:
    """Every chunk verified before anything is returned; messages count chunks from 1."""
    nonce = bytes(data[header.payload_offset : header.payload_offset + _NONCE_SIZE])
    if len(nonce) != _NONCE_SIZE:
        raise AgeHeaderError("header: file ends before the payload nonce")
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    view = memoryview(data)[header.payload_offset + _NONCE_SIZE :]
    if not view:
        raise AgePayloadError("payload: no chunks")
    step = CHUNK_SIZE + _TAG_SIZE
    count = -(-len(view) // step)
    return b"".join(
        _open_chunk(aead, i, view[i * step : (i + 1) * step], i == count - 1) for i in range(count)
    )


def _open_chunk(aead: ChaCha20Poly1305, index: int, chunk: memoryview, last: bool) -> bytes:
    if len(chunk) < _TAG_SIZE:
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


# --- bech32 (BIP 173 without the length limit) --------------------------------------------

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: Sequence[int]) -> int:
    check = 1
    for value in values:
        top, check = check >> 25, (check & 0x1FFFFFF) << 5 ^ value
        for i, generator in enumerate(_GENERATOR):
            check ^= generator if (top >> i) & 1 else 0
    return check


def _hrp_words(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _regroup(data: Sequence[int], source: int, target: int) -> tuple[list[int], int, int]:
    """Regroup bit groups; returns (words, leftover value, leftover bit count)."""
    acc, bits, out = 0, 0, []
    for value in data:
        acc, bits = (acc << source) | value, bits + source
        while bits >= target:
            bits -= target
            out.append((acc >> bits) & ((1 << target) - 1))
    return out, acc & ((1 << bits) - 1), bits


def _bech32_encode(hrp: str, data: bytes) -> str:
    words, rest, bits = _regroup(data, 8, 5)
    words += [rest << (5 - bits)] if bits else []
    poly = _polymod([*_hrp_words(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def _bech32_decode(text: str, hrp: str, *, what: str) -> bytes:
    """Strict decode of a 32-byte key with exactly this (case-sensitive) prefix."""
    if not text.startswith(hrp + "1") or text not in (text.lower(), text.upper()):
        raise InvalidValue(f"invalid {what}: wrong prefix or mixed case")
    part = text[len(hrp) + 1 :].lower()
    if len(part) < 6 or not all(c in _CHARSET for c in part):
        raise InvalidValue(f"invalid {what}: bad character or length")
    words = [_CHARSET.index(c) for c in part]
    if _polymod(_hrp_words(hrp.lower()) + words) != 1:
        raise InvalidValue(f"invalid {what}: bad checksum")
    data, rest, bits = _regroup(words[:-6], 5, 8)
    if rest or bits >= 5 or len(data) != 32:
        raise InvalidValue(f"invalid {what}: wrong key length")
    return bytes(data)


def parse_identities(text: str) -> list[X25519Identity]:
    """Every identity in an age-keygen style file; `#` comments and blank lines are skipped."""
    lines = [line.strip() for line in text.splitlines()]
    identities = [X25519Identity.parse(line) for line in lines if line and line[0] != "#"]
    if not identities:
        raise InvalidValue("no age identity (AGE-SECRET-KEY-1…) found")
    return identities
