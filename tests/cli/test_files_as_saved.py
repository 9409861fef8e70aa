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


# --- Windows PowerShell 5: `>` and Out-File save UTF-16 (little-endian, with its mark) -------


def utf16(text: str) -> bytes:
    return b"\xff\xfe" + text.encode("utf-16-le")


def test_files_windows_powershell_saved_as_utf16_read_as_meant(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """`echo $pass > pass.txt`, `"project = 'demo'" > .keyvault.toml`, the identity exported
    to a file and `"OPENAI_API_KEY=…" > .env` each failed as "not UTF-8 text", "cannot read"
    or "neither UTF-8 nor GB18030"."""
    key = vault_cli.add("main", make_key(), "--project", "demo")
    passphrase_file = private(tmp_path / "pass.txt", utf16(PASSPHRASE + "\r\n"))
    env = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_PASSPHRASE_FILE": str(passphrase_file)}
    assert "main" in vault_cli.ok("list", env=env).out

    exported = vault_cli.ok("identity", "export").out.replace("\n", "\r\n")
    identity_file = private(tmp_path / "identity.txt", utf16(exported))
    env = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY_FILE": str(identity_file)}
    assert vault_cli.ok("get", "main", env=env).out == key + "\n"

    folder = tmp_path / "app"
    folder.mkdir()
    (folder / ".keyvault.toml").write_bytes(utf16("project = 'demo'\r\n"))
    assert vault_cli.ok("get", cwd=folder).out == key + "\n"

    other = make_key()
    (folder / ".env").write_bytes(utf16(f"OPENAI_API_KEY={other}\r\n"))
    plan = vault_cli.ok("import", str(folder / ".env"), "--project", "demo", "--dry-run").out
    assert plan.startswith("would add 1"), plan


def test_a_utf16_env_file_is_refused_not_mixed_with_utf8(vault_cli: Cli, tmp_path: Path) -> None:
    vault_cli.add("main", make_key(), "--project", "demo")
    target = tmp_path / ".env"
    before = utf16("DEBUG=1\r\n")
    target.write_bytes(before)
    result = vault_cli("dotenv", str(target), "--project", "demo")
    assert result.code == 1
    assert result.err.startswith(f"keyvault: error: {target} is UTF-16 text")
    assert target.read_bytes() == before
    assert vault_cli.ok("dotenv", "--list").out.startswith("no .env files")


def test_an_env_file_saved_with_a_bom_has_its_first_line_replaced(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """The mark made the first name `\\ufeffOPENAI_API_KEY`: the old key stayed in the file and
    a second OPENAI_API_KEY line was appended."""
    key = vault_cli.add("main", make_key(), "--project", "demo")
    target = private(tmp_path / ".env", BOM + b"OPENAI_API_KEY=sk-old\r\nX=1\r\n")
    vault_cli.ok("dotenv", str(target), "--project", "demo")
    assert target.read_bytes() == BOM + f"OPENAI_API_KEY={key}\r\nX=1\r\n".encode()
    assert "file(s) written by keyvault: ok" in vault_cli("doctor").out
