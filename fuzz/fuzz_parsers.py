"""Unbounded coverage-guided fuzzing of keyvault's parsers with atheris (not run in CI).

    python3 -m pip install atheris
    python3 fuzz/fuzz_parsers.py age fuzz/corpus-age -max_total_time=600
    python3 fuzz/fuzz_parsers.py document fuzz/corpus-document -max_total_time=600

The property is the one tests/test_fuzz.py checks with a fixed example count: any input
either parses or raises a `KeyvaultError`; anything else is a crash that atheris reports.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from vault import age
    from vault.errors import KeyvaultError
    from vault.model import codec as document

IDENTITY = age.X25519Identity.generate()
SCRYPT = age.ScryptIdentity("pw", max_log_n=8)  # a mutated work factor must stay cheap


def fuzz_age(data: bytes) -> None:
    for identity in (IDENTITY, SCRYPT):
        with contextlib.suppress(KeyvaultError):
            age.decrypt(data, [identity])


def fuzz_document(data: bytes) -> None:
    with contextlib.suppress(KeyvaultError):
        document.loads(data)


TARGETS: dict[str, Callable[[bytes], None]] = {"age": fuzz_age, "document": fuzz_document}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = TARGETS[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
