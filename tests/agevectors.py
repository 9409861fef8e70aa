"""Loader for the C2SP CCTV age test vectors (shared/reference/age-testdata).

Each vector file is `key: value` lines, a blank line, then the age file (zlib-compressed when
`compressed: zlib`). See the README.md in the vector folder.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def vectors_dir() -> Path:
    """`KEYVAULT_AGE_TESTDATA`, else the shared reference folder beside the repository."""
    configured = os.environ.get("KEYVAULT_AGE_TESTDATA")
    if configured:
        return Path(configured)
    return REPO_ROOT.parent / "shared" / "reference" / "age-testdata"


def vector_names(folder: Path) -> list[str]:
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


def skip_reason(vector: Vector) -> str | None:
    """Why this implementation does not run the vector, or None when it must pass it."""
    if vector.unknown_keys:
        return f"unknown vector keys {list(vector.unknown_keys)}"
    if vector.armored:
        return "ascii armor is not supported: keyvault reads and writes binary age files only"
    post_quantum = any(i.startswith("AGE-SECRET-KEY-PQ-") for i in vector.identities)
    if post_quantum or b"\n-> mlkem768x25519 " in vector.data:
        return "post-quantum (mlkem768x25519) stanzas are not supported"
    return None
