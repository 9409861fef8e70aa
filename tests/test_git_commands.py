"""The two commands git runs for vault.age (issue 15): `merge-driver` (it asks for the
passphrase on a terminal, never without one, and on failure leaves %A as it was) and
`textconv` (entries line by line, secrets masked, never a prompt)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.cli.terminal import in_terminal
from tests.helpers import PASSPHRASE, Cli, make_key, open_vault
from vault.model.textview import fingerprint, text_view


def three_versions(cli: Cli, tmp_path: Path) -> tuple[Path, Path, Path]:
    """base, ours and theirs of one vault, as git hands them to a merge driver."""
    cli.add("main", None, "--project", "work")
    base = tmp_path / "base"
    shutil.copy(cli.home / "vault.age", base)
    cli.ok("edit", "main", "--note", "ours")
    ours = tmp_path / "ours"
    shutil.copy(cli.home / "vault.age", ours)
    shutil.copy(base, cli.home / "vault.age")
    cli.ok("trust", "--accept-rollback")
    cli.ok("edit", "main", "--tag", "theirs")
    theirs = tmp_path / "theirs"
    shutil.copy(cli.home / "vault.age", theirs)
    return base, ours, theirs


def test_the_driver_asks_on_a_terminal_and_merges(vault_cli: Cli, tmp_path: Path) -> None:
    base, ours, theirs = three_versions(vault_cli, tmp_path)
    env = {k: v for k, v in vault_cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
    term = in_terminal(
        ["merge-driver", str(base), str(ours), str(theirs), "vault.age"], env, cwd=vault_cli.home
    )
    term.expect("passphrase: ")
    term.send(PASSPHRASE + "\n")
    assert term.wait() == 0, term.text
    assert "keyvault: merged vault.age" in term.text
    merged = open_vault(vault_cli.home).open(ours.read_bytes())
    main = merged.find("main")
    assert main.note == "ours" and main.tags == ["theirs"]


def test_without_a_terminal_the_driver_fails_and_leaves_ours(
    vault_cli: Cli, tmp_path: Path
) -> None:
    base, ours, theirs = three_versions(vault_cli, tmp_path)
    before = ours.read_bytes()
    result = vault_cli(
        "merge-driver", str(base), str(ours), str(theirs), "vault.age",
        env={"KEYVAULT_PASSPHRASE": ""}, cwd=vault_cli.home,  # where git runs drivers
    )  # fmt: skip
    assert result.code != 0 and result.out == ""
    assert result.err.splitlines() == [
        "keyvault: error: cannot merge vault.age: the vault is locked",
        "keyvault: hint: run `keyvault unlock` and retry",
    ]
    assert ours.read_bytes() == before


def test_textconv_masks_secrets_and_never_prompts(vault_cli: Cli) -> None:
    key = vault_cli.add("main", make_key(), "--project", "work", "--note", "hello")
    view = vault_cli.ok("textconv", "vault.age", cwd=vault_cli.home).out
    assert "entry main [" in view and "  note: hello" in view
    assert f"(fingerprint {fingerprint(key)})" in view
    assert key not in view
    assert view == "\n".join(text_view(open_vault(vault_cli.home).read())) + "\n"
    locked = vault_cli("textconv", "vault.age", env={"KEYVAULT_PASSPHRASE": ""}, cwd=vault_cli.home)
    assert locked.code == 0 and locked.out.startswith("(encrypted: unlock to see)")
    vault_cli.ok("edit", "main", "--note", "changed")
    changed = vault_cli(
        "textconv", "vault.age", env={"KEYVAULT_PASSPHRASE": ""}, cwd=vault_cli.home
    )
    assert changed.out.splitlines()[0] != locked.out.splitlines()[0]  # git shows a change
