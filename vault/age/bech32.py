"""Bech32 (BIP 173 without its 90-character length limit), the text form of age keys.

`bech32_encode` writes `age1…` recipients and `AGE-SECRET-KEY-1…` identities; `bech32_decode`
reads them back strictly (exact prefix, one case, valid checksum, a 32-byte payload), raising
`InvalidValue` with a message that never repeats the key.
"""

from __future__ import annotations

from collections.abc import Sequence

from vault.errors import InvalidValue

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


def bech32_encode(hrp: str, data: bytes) -> str:
    words, rest, bits = _regroup(data, 8, 5)
    words += [rest << (5 - bits)] if bits else []
    poly = _polymod([*_hrp_words(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


def bech32_decode(text: str, hrp: str, *, what: str) -> bytes:
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
