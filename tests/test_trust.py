"""vault/store/trust.py: a vault.age not written by a member, or older than one this machine
saw, is refused on every open (issue 15), and the pin costs `keyvault env` nothing.

age has no sender authentication: the forgeries here are real age files sealed with only the
recipients' public keys, as anyone who can push to a shared repository could write them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import Cli, make_key, open_vault
from vault import age
from vault.errors import ForeignVault, ForgedVault, InvalidValue, RolledBack
from vault.model import codec
from vault.model.records import Recipient
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store.config import Paths
from vault.store.keyvault import Keyvault
from vault.store.recipients import add_recipient, remove_recipient
from vault.store.trust import PIN_VARIABLE, Trust, parse_pin, pin_of


def forge(home: Path, change: dict[str, object] | None = None, *, doc: bytes | None = None) -> None:
    """Write vault.age as an outsider would: a document sealed to the public keys it lists."""
    body = json.loads(doc if doc is not None else _plain(home))
    body.update(change or {})
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    keys = [age.X25519Recipient.parse(r["recipient"]) for r in body["recipients"]]
    (home / "vault.age").write_bytes(age.encrypt(json.dumps(body).encode(), keys))


def _plain(home: Path) -> bytes:
    return codec.dumps(open_vault(home).open((home / "vault.age").read_bytes()))


def test_a_new_vault_is_pinned_and_the_pin_holds_no_secret(vault_cli: Cli) -> None:
    kv = open_vault(vault_cli.home)
    pin = kv.trust.pinned()
    doc = kv.read()
    assert doc.team is not None and pin == pin_of(doc)
    stored = kv.trust.path.read_text()
    assert doc.team.current.key not in stored and doc.team.current.id not in stored
    assert kv.trust.path.stat().st_mode & 0o777 == 0o600
    assert not kv.trust.path.is_relative_to(vault_cli.home)  # never in the (git) vault home


def test_reading_writes_the_pin_only_when_something_changed(vault_cli: Cli) -> None:
    key = vault_cli.add("main", None, "--project", "work")
    path = open_vault(vault_cli.home).trust.path
    before = path.stat()
    assert vault_cli("env", "--project", "work", "--shell", "bash").code == 0
    assert vault_cli("get", "main").out.strip() == key
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_file_written_with_only_the_public_keys_is_refused(vault_cli: Cli) -> None:
    vault_cli.add("main", None, "--project", "work")
    plain = json.loads(_plain(vault_cli.home))
    evil = make_key()
    plain["entries"][0].update(secret=evil, base_url="https://attacker.example/v1")
    without_team = {k: v for k, v in plain.items() if k != "team"}
    made_up = dict(
        plain, team={**plain["team"], "secrets": [{"id": "0" * 16, "key": "A" * 42 + "E="}]}
    )
    for forged in (without_team, made_up):
        forge(vault_cli.home, doc=json.dumps(forged).encode())
        for args in (("env", "--project", "work", "--shell", "bash"), ("get", "main"), ("list",)):
            result = vault_cli(*args)
            assert result.code == 4 and result.out == "", (args, result.err)
            assert "not written by a member of this vault" in result.err
            assert evil not in result.err


def test_another_vaults_file_is_refused(vault_cli: Cli) -> None:
    plain = json.loads(_plain(vault_cli.home))
    plain["team"]["vault_id"] = "f" * 16
    forge(vault_cli.home, doc=json.dumps(plain).encode())
    result = vault_cli("list")
    assert result.code == 4 and "belongs to another vault" in result.err


@pytest.mark.slow
def test_a_rollback_is_refused_until_accepted(vault_cli: Cli) -> None:
    vault_cli.add("one")
    vault_cli.add("two")  # vault.age.bak now holds the vault without "two"
    home = vault_cli.home
    shutil.copy(home / "vault.age.bak", home / "vault.age")
    refused = vault_cli("list")
    assert refused.code == 4 and refused.out == ""
    assert "older than the one this machine last saw" in refused.err
    assert "keyvault trust --accept-rollback" in refused.err
    add = vault_cli("add", "three", input=make_key())
    assert add.code == 4  # a change is refused too: nothing is written on an old base
    accepted = vault_cli("trust", "--accept-rollback")
    assert accepted.code == 0, accepted.err
    assert "one" in vault_cli.ok("list").out


def test_a_removed_member_cannot_forge_for_a_machine_that_saw_the_removal(tmp_path: Path) -> None:
    alice_home = tmp_path / "alice"
    alice = open_vault(alice_home)
    bob = age.X25519Identity.generate()
    add_recipient(alice, "bob", bob.recipient().to_string())
    bob_copy = (alice_home / "vault.age").read_bytes()  # what bob could read while a member
    remove_recipient(alice, "bob")
    known = codec.loads(age.decrypt(bob_copy, [bob]))
    body = json.loads(codec.dumps(known))
    body["generation"] += 10
    body["entries"] = [{"id": "e" * 16, "name": "main", "secret": make_key(), "status": "active"}]
    body["recipients"] = [r for r in body["recipients"] if r["name"] != "bob"]
    forge(alice_home, doc=json.dumps(body).encode())
    with pytest.raises(ForgedVault, match="lacks the vault's team secret"):
        alice.read()
    # honest limit: a machine whose pin predates the removal still accepts it
    stale = Trust(tmp_path / "elsewhere")
    stale.write(pin_of(known) or pytest.fail("no team"))
    stale.check(
        codec.loads(age.decrypt((alice_home / "vault.age").read_bytes(), [_identity(alice)]))
    )


def _identity(kv: Keyvault) -> age.X25519Identity:
    return kv.unlocker.identity(kv.paths)


def test_a_vault_without_a_team_record_opens_and_gets_one_at_its_first_save(tmp_path: Path) -> None:
    golden = Path(__file__).parent / "golden" / "v1"
    home = tmp_path / "kv"
    home.mkdir(mode=0o700)
    for name in ("vault.age", "identity.age"):
        shutil.copy(golden / name, home / name)
    unlocker = Unlocker(UnlockSettings(passphrase=Secret("golden passphrase, test only")))
    kv = Keyvault(Paths(home), unlocker)
    assert kv.read().team is None and kv.trust.pinned() is None  # nothing to pin yet
    ci = Recipient("ci", age.X25519Identity.generate().recipient().to_string())
    kv.transact(lambda doc: doc.add_recipient(ci, at="2026-03-01T00:00:00Z"))
    doc = kv.read()
    assert doc.team is not None and kv.trust.pinned() == pin_of(doc)


def test_the_pin_from_the_environment_refuses_a_forgery_on_a_fresh_machine(tmp_path: Path) -> None:
    home = tmp_path / "kv"
    kv = open_vault(home)
    pin = pin_of(kv.read())
    assert pin is not None
    forge(home, {"team": None})
    fresh = Trust(home, {"HOME": str(tmp_path / "ci-home"), PIN_VARIABLE: pin.text})
    ci = Keyvault(Paths(home), kv.unlocker, trust=fresh)
    with pytest.raises(ForgedVault):
        ci.read()
    forge(
        home,
        {"team": {"vault_id": "1" * 16, "secrets": [{"id": "2" * 16, "key": "A" * 42 + "E="}]}},
    )
    with pytest.raises(ForeignVault):
        ci.read()
    with pytest.raises(InvalidValue):
        parse_pin("not-a-pin")


@pytest.mark.slow
def test_trust_shows_resets_and_expects_a_pin(vault_cli: Cli, tmp_path: Path) -> None:
    shown = vault_cli.ok("trust").out
    pin = next(line.split()[1] for line in shown.splitlines() if line.startswith("pin"))
    assert parse_pin(pin) == pin_of(open_vault(vault_cli.home).read())._replace(generation=0)  # type: ignore[union-attr]
    assert vault_cli.ok("trust", "--reset").out.strip() == "pin forgotten"
    wrong = "0" * 16 + ":" + "0" * 32
    assert vault_cli.ok("trust", "--expect", wrong).code == 0
    assert vault_cli("list").code == 4  # the expected vault is not this one
    vault_cli.ok("trust", "--expect", pin)
    assert vault_cli("list").code == 0
    assert vault_cli("trust", "--reset", "--accept-rollback").code == 2


def test_an_unwritable_state_folder_never_fails_a_read(vault_cli: Cli, tmp_path: Path) -> None:
    blocked = tmp_path / "state-is-a-file"
    blocked.write_text("")
    env = {"XDG_STATE_HOME": str(blocked)}
    assert vault_cli("list", env=env).code == 0
    doctor = vault_cli("doctor", env=env)
    assert "cannot keep a trust pin" in doctor.out


def test_a_rolled_back_file_via_the_library(tmp_path: Path) -> None:
    kv = open_vault(tmp_path / "kv")
    old = (kv.paths.vault).read_bytes()
    kv.transact(lambda doc: None)
    kv.paths.vault.write_bytes(old)
    with pytest.raises(RolledBack):
        kv.read()
    assert kv.trust.accept_rollback(kv.open(old)).generation == 1
    assert kv.read().generation == 1


def test_a_save_while_a_reader_decrypts_is_not_a_rollback(tmp_path: Path) -> None:
    # A save writes vault.age, then the pin. A reader that got the file just before a save
    # and looked at the pin just after it saw a generation older than the pin: it refused
    # its own vault as rolled back (twice in 360 `env` runs beside a loop of `edit`s). The
    # save lands here while the reader decrypts, between its read of the file and its check.
    writer = open_vault(tmp_path / "kv")

    class SavedMeanwhile(Unlocker):
        def decrypt(self, paths: Paths, sealed: bytes) -> bytes:
            plain = super().decrypt(paths, sealed)
            writer.transact(lambda doc: None)
            return plain

    unlocker = SavedMeanwhile(settings=writer.unlocker.settings)
    reader = Keyvault(writer.paths, unlocker)
    generation = writer.read().generation
    assert reader.read().generation == generation  # its copy, accepted
    assert reader.read().generation == generation + 1  # the next read: the next copy
    assert writer.trust.pinned() == pin_of(writer.read())
