"""vault/rotation/members.py: removing a member names every key they could read and what to
run for each (issue 15): `rotate --mint` where an admin key exists, OpenAI's site where not."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import add, make_key, open_vault
from vault import age
from vault.rotation.members import remove_member
from vault.store.recipients import add_recipient


def test_removal_lists_the_keys_and_the_way_to_replace_each(tmp_path: Path) -> None:
    kv = open_vault(tmp_path / "kv")
    add(kv, "work-1", make_key(), project="work", activate=True)
    add(kv, "web-1", make_key(), project="web", activate=True)
    add(kv, "org-admin", "sk-admin-" + "A" * 40, project="work")
    bob = age.X25519Identity.generate().recipient().to_string()
    add_recipient(kv, "bob", bob)
    pin_before = kv.trust.pinned()
    exposed = remove_member(kv, "bob")
    assert exposed.member.name == "bob"
    assert {e.name for e in exposed.keys} == {"work-1", "web-1", "org-admin"}
    steps = "\n".join(exposed.steps)
    assert "keyvault rotate --project work --mint" in steps
    assert "keyvault rotate --project web --mint" in steps  # the one admin key serves both
    assert "replace admin key org-admin at platform.openai.com" in steps
    after = kv.read()
    assert bob not in {r.recipient for r in after.recipients}
    assert pin_before is not None and kv.trust.pinned() != pin_before  # the secret rotated


def test_without_an_admin_key_the_way_is_a_new_key_from_openai(tmp_path: Path) -> None:
    kv = open_vault(tmp_path / "kv")
    add(kv, "web-1", make_key(), project="web", activate=True)
    add_recipient(kv, "ci", age.X25519Identity.generate().recipient().to_string())
    exposed = remove_member(kv, "ci")
    assert exposed.steps == [
        "make a new key at platform.openai.com, then `keyvault add NAME --project web"
        " --activate` and revoke the old ones there"
    ]
