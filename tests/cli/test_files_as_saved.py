"""Files a user wrote by hand, as Windows editors and shells save them: a byte-order mark
first (Notepad, PowerShell's `Out-File`), CR LF line ends. The identity file, the
passphrase file and `.keyvault.toml` read as the user meant them; a typo in a project file
is named instead of quietly meaning "no project here"."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import PASSPHRASE, Cli, make_key

BOM = b"\xef\xbb\xbf"


def private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_an_identity_file_saved_with_a_bom_and_crlf_opens_the_vault(
    vault_cli: Cli, tmp_path: Path
) -> None:
    key = vault_cli.add("main", make_key(), "--project", "demo")
    exported = vault_cli.ok("identity", "export").out
    lines = exported.replace("\n", "\r\n").encode()
    identity_file = private(tmp_path / "identity.txt", BOM + lines)
    env = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY_FILE": str(identity_file)}
    assert vault_cli.ok("get", "main", env=env).out == key + "\n"


def test_an_identity_file_that_is_not_utf8_is_named_without_its_bytes(
    vault_cli: Cli, tmp_path: Path
) -> None:
    identity_file = private(tmp_path / "identity.bin", b"AGE-SECRET-KEY-1\xfe\xc3Q")
    env = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY_FILE": str(identity_file)}
    result = vault_cli("list", env=env)
    assert result.code != 0
    assert "is not UTF-8 text" in result.err
    assert "0xfe" not in result.err and "position" not in result.err


def test_a_passphrase_file_saved_with_a_bom_opens_the_vault(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("main", make_key(), "--project", "demo")
    passphrase_file = private(tmp_path / "pass.txt", BOM + PASSPHRASE.encode() + b"\r\n")
    env = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_PASSPHRASE_FILE": str(passphrase_file)}
    assert "main" in vault_cli.ok("list", env=env).out


def test_a_project_file_saved_with_a_bom_names_its_project(vault_cli: Cli, tmp_path: Path) -> None:
    key = vault_cli.add("main", make_key(), "--project", "demo")
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / ".keyvault.toml").write_bytes(BOM + b'project = "demo"\r\n')
    assert vault_cli.ok("get", cwd=folder).out == key + "\n"
    hook = vault_cli.ok("hook-env", "--shell", "bash", cwd=folder).out
    assert key in hook
    # beyond the plain form (a comment after the value), tomllib reads it the same way
    (folder / ".keyvault.toml").write_bytes(BOM + b'project = "demo"  # mine\n')
    assert vault_cli.ok("get", cwd=folder).out == key + "\n"


def test_a_typo_in_a_project_file_is_named(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("main", make_key(), "--project", "demo")
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / ".keyvault.toml").write_text('projekt = "demo"\n')
    result = vault_cli("env", "--shell", "bash", cwd=folder)
    assert "ignoring 'projekt'" in result.err
    assert "a project file holds only 'project" in result.err
    hook = vault_cli("hook-env", "--shell", "bash", cwd=folder)
    assert "ignoring 'projekt'" in hook.err
