"""A typo never succeeds silently: an unknown project or entry name in `check`, `list`, `log`,
`rotate`, `show`, `edit` and `rm` is exit 1 with "did you mean" when a name is close, and the
vault is byte-identical afterwards (a CI health gate with a typo must fail, not pass forever).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, PASSPHRASE, Cli, base_env, make_key

Snapshot = Callable[[Path], dict[str, bytes]]


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("typos")
    cli = Cli(root / "kv", {**base_env(root / "kv", root), "KEYVAULT_PASSPHRASE": PASSPHRASE})
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    for name in ("alpha-1", "alpha-2"):
        cli.ok("add", name, "--project", "alpha", "--base-url", "http://127.0.0.1:9/v1",
               input=make_key())  # fmt: skip
    yield cli


CASES = [
    (["check", "--project", "alhpa"], "no project named 'alhpa'", "did you mean 'alpha'?"),
    (["check", "alpha-3"], "no entry named 'alpha-3'", "did you mean 'alpha-2' or 'alpha-1'?"),
    (["list", "--project", "alhpa"], "no project named 'alhpa'", "did you mean 'alpha'?"),
    (["log", "alpah-1"], "no entry named 'alpah-1'", "did you mean 'alpha-1'"),
    (["rotate", "--project", "alhpa"], "no project named 'alhpa'", "did you mean 'alpha'?"),
    (["rotate", "--project", "nope"], "no project named 'nope'", "see `keyvault list`"),
    (["rotate", "--to", "alpa-1"], "no entry named 'alpa-1'", "did you mean 'alpha-1'"),
    (["show", "alpa-1"], "no entry named 'alpa-1'", "did you mean 'alpha-1'"),
    (["edit", "alpa-1", "--note", "x"], "no entry named 'alpa-1'", "did you mean 'alpha-1'"),
    (["rm", "alpa-1", "--yes"], "no entry named 'alpa-1'", "did you mean 'alpha-1'"),
    # a name in the wrong case: difflib alone rates `A1` and `a1` only half alike
    (["rm", "ALPHA-1", "--yes"], "no entry named 'ALPHA-1'", "did you mean 'alpha-1'"),
    (["list", "--project", "Alpha"], "no project named 'Alpha'", "did you mean 'alpha'?"),
]


@pytest.mark.parametrize(("args", "error", "hint"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_typo_is_an_error_with_did_you_mean(
    vault: Cli, snapshot: Snapshot, args: list[str], error: str, hint: str
) -> None:
    before = snapshot(vault.home)
    result = vault(*args)
    assert result.code == 1, result
    assert result.out == ""
    assert result.err.splitlines()[0] == f"keyvault: error: {error}"
    assert result.err.splitlines()[-1].startswith(f"keyvault: hint: {hint}")
    assert "keyvault add" not in result.err  # a missing project is not a reason to add keys
    assert snapshot(vault.home) == before
