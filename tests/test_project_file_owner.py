"""A `.keyvault.toml` another user wrote picks no project (issue 13, item 8): in a shared parent
folder (the system temp folder, a team share) anyone could otherwise choose which of your keys
`env`, `get`, `exec` and the hook export. Like git's safe.directory, only files owned by you or
root count; others are skipped with a one-line warning naming the file and its owner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import Cli

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="giving a file to another user needs root (CI runs as root)",
)
NOBODY = 65534


def setup(vault_cli: Cli, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    keys = {
        "prod": vault_cli.add("prod-1", None, "--project", "secret-prod"),
        "mine": vault_cli.add("mine-1", None, "--project", "mine"),
    }
    shared = tmp_path / "shared"
    (shared / "work").mkdir(parents=True)
    return shared, keys


def test_a_project_file_owned_by_someone_else_is_ignored_with_a_warning(
    vault_cli: Cli, tmp_path: Path
) -> None:
    shared, keys = setup(vault_cli, tmp_path)
    planted = shared / ".keyvault.toml"
    planted.write_text('project = "secret-prod"\n')
    os.chown(planted, NOBODY, NOBODY)
    here = shared / "work"
    for args in (["get"], ["env", "--shell", "bash"]):
        ran = vault_cli(*args, cwd=here)
        assert keys["prod"] not in ran.out, args
        assert (
            f"keyvault: warning: ignoring {planted}: owned by uid {NOBODY}, not by you" in ran.err
        )
        assert ran.code == 1  # the default project has no keys: nothing is exported
    hook = vault_cli("hook-env", "--shell", "bash", cwd=here)
    assert keys["prod"] not in hook.out and "secret-prod" not in hook.out


def test_a_project_file_of_yours_or_roots_is_followed(vault_cli: Cli, tmp_path: Path) -> None:
    shared, keys = setup(vault_cli, tmp_path)
    mine = shared / ".keyvault.toml"
    mine.write_text('project = "mine"\n')  # root here, and root's files count anyway
    assert vault_cli.ok("get", cwd=shared / "work").out == keys["mine"] + "\n"
    nearer = shared / "work" / ".keyvault.toml"
    nearer.write_text('project = "secret-prod"\n')
    os.chown(nearer, NOBODY, NOBODY)  # the nearest file is someone else's: skipped, not stopped
    got = vault_cli("get", cwd=shared / "work")
    assert got.out == keys["mine"] + "\n"
    assert f"ignoring {nearer}" in got.err
