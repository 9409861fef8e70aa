"""Loader for the C2SP CCTV age test vectors kept in tests/vectors/age/.

Each vector file is `key: value` lines, a blank line, then the age file (zlib-compressed when
`compressed: zlib`). See the README.md in the vector folder for where they come from.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

VECTOR_DIR = Path(__file__).resolve().parent / "vectors" / "age"
KNOWN_KEYS = frozenset(
    {"expect", "payload", "file key", "identity", "passphrase", "armored", "compressed", "comment"}
)
NOT_VECTORS = frozenset({"LICENSE", "README.md"})


@dataclass(frozen=True)
class Vector:
    """One CCTV vector; `data` is the age file, already decompressed."""

    name: str
    expect: str
    payload_sha256: str | None
    file_key: bytes | None
    identities: tuple[str, ...]
    passphrases: tuple[str, ...]
    armored: bool
    unknown_keys: tuple[str, ...]
    data: bytes


def vector_names(folder: Path = VECTOR_DIR) -> list[str]:
    return sorted(
        path.name
        for path in folder.iterdir()
        if path.is_file() and path.name not in NOT_VECTORS and not path.name.startswith(".")
    )


def load(path: Path) -> Vector:
    head, blank, body = path.read_bytes().partition(b"\n\n")
    if not blank:
        raise ValueError(f"{path.name}: no blank line after the vector header")
    fields: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    unknown = sorted(set(fields) - KNOWN_KEYS)
    compression = fields.get("compressed", [])
    if compression == ["zlib"]:
        body = zlib.decompress(body)
    elif compression:
        unknown.append(f"compressed: {compression}")
    file_key = fields.get("file key", [None])[0]
    return Vector(
        name=path.name,
        expect=fields.get("expect", ["?"])[0],
        payload_sha256=fields.get("payload", [None])[0],
        file_key=bytes.fromhex(file_key) if file_key else None,
        identities=tuple(fields.get("identity", [])),
        passphrases=tuple(fields.get("passphrase", [])),
        armored=fields.get("armored") == ["yes"],
        unknown_keys=tuple(unknown),
        data=body,
    )


def unsupported(vector: Vector) -> str | None:
    """What keyvault does not implement that this vector needs, or None when it must pass it.

    keyvault reads binary age files with X25519 and scrypt stanzas only; an unsupported
    vector is still run, to prove it is refused cleanly (tests/test_age.py).
    """
    if vector.unknown_keys:
        raise ValueError(f"{vector.name}: unknown vector keys {list(vector.unknown_keys)}")
    if vector.armored:
        return "armor"
    if is_post_quantum(vector):
        return "post-quantum"
    return None


def is_post_quantum(vector: Vector) -> bool:
    """Uses ML-KEM-768 + X25519 hybrid identities or stanzas, which keyvault does not have."""
    pq_identity = any(i.startswith("AGE-SECRET-KEY-PQ-") for i in vector.identities)
    return pq_identity or b"\n-> mlkem768x25519 " in vector.data
