"""Issue 13 item 9: damage in identity.age is reported as identity.age's, never blamed on
vault.age, and doctor never suggests rolling vault.age back to its backup for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Cli
from vault import age


def payload_flip(data: bytearray) -> None:
    data[-5] ^= 0x01  # inside the encrypted identity text


def mac_flip(data: bytearray) -> None:
    mac_line = data.index(b"\n--- ") + 5
    data[mac_line + 3] ^= 0x01  # the header MAC, checked once scrypt opened the file key


def garbage(data: bytearray) -> None:
    data[:] = b"age-encryption.org/v1\n-> scrypt bad\n"


DAMAGE: dict[str, Callable[[bytearray], None]] = {
    "payload": payload_flip,
    "header mac": mac_flip,
    "header": garbage,
}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_identity_is_named_and_nothing_else_is_touched(
    vault_cli: Cli, snapshot: Callable[[Path], dict[str, bytes]], how: str
) -> None:
    vault_cli.add("main", None, "--project", "demo")
    vault_cli.add("spare", None, "--project", "demo")  # so vault.age.bak exists
    identity = vault_cli.home / "identity.age"
    data = bytearray(identity.read_bytes())
    DAMAGE[how](data)
    identity.write_bytes(bytes(data))
    before = snapshot(vault_cli.home)

    listed = vault_cli("list")
    assert listed.code == 4, listed.err
    assert listed.out == ""
    first = listed.err.splitlines()[0]
    assert first.startswith("keyvault: error: identity.age"), first
    assert "vault.age" not in first
    assert "vault.age.bak" not in listed.err  # no advice to roll the vault back

    doctor = vault_cli("doctor", "--json")
    checks = json.loads(doctor.out)["checks"]
    identity_checks = [c for c in checks if c["area"] == "identity"]
    assert [c["level"] for c in identity_checks] == ["fail"]
    assert identity_checks[0]["message"].startswith("identity.age")
    assert all(c["level"] != "fail" for c in checks if c["area"] in ("vault", "backup"))
    assert not any("copy vault.age.bak" in (c["fix"] or "") for c in checks)
    assert snapshot(vault_cli.home) == before


def test_the_vault_itself_still_opens_with_the_exported_identity(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """The hint's way out is real: the identity, exported before the damage, opens vault.age."""
    vault_cli.add("main", None, "--project", "demo")
    exported = vault_cli.ok("identity", "export").out
    identity_file = tmp_path / "identity.txt"
    identity_file.write_text(exported)
    identity_file.chmod(0o600)
    identity = vault_cli.home / "identity.age"
    data = bytearray(identity.read_bytes())
    payload_flip(data)
    identity.write_bytes(bytes(data))
    env = {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY_FILE": str(identity_file)}
    assert "main" in vault_cli.ok("list", env=env).out
    assert age.parse_header((vault_cli.home / "vault.age").read_bytes())  # untouched
