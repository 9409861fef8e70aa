"""The tooling is part of the suite: ruff (lint + format) on everything, mypy --strict on vault/."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

TARGETS = ["vault", "tests", "bench", "tools"]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_ruff_check_is_clean() -> None:
    result = run("ruff", "check", *TARGETS)
    assert result.returncode == 0, result.stdout[-3000:]


def test_ruff_format_is_applied() -> None:
    result = run("ruff", "format", "--check", *TARGETS)
    assert result.returncode == 0, result.stdout[-3000:]


def test_mypy_strict_on_the_library() -> None:
    result = run("mypy")  # files and strictness come from pyproject.toml
    assert result.returncode == 0, result.stdout[-3000:]
