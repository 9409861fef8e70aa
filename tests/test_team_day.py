"""Issue 15, "done when": two people, one shared bare repository, a day of ordinary edits on
both sides, and not one manual conflict resolution.

Each does what a team does with a key pool: adds keys (with phones, cards, credit), edits
notes and tags, rotates projects, removes a key the other still uses, adds the same key
pasted from a chat, registers a .env file, makes a CI identity; they sync whenever they
think of it, often after the other changed the same things. Every sync must succeed on its
own; at the end both have the same document, nothing either added is lost, and the
over-committed phone is flagged where people look.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import make_key
from tests.team import Member, bare_repository, found_team, needs_git

pytestmark = [needs_git, pytest.mark.slow]

PHONE_1, PHONE_2 = "+447911123456", "+33612345678"


def synced(member: Member) -> str:
    result = member("sync")
    assert result.code == 0, f"{member.name}: sync needed a human\n{result.err}"
    status = member.git("status", "--porcelain").out
    assert status == "", f"{member.name}: the work tree is not clean after sync\n{status}"
    return result.out


def test_a_day_of_ordinary_edits_needs_no_manual_merge(tmp_path: Path, runtime_dir: Path) -> None:
    alice, bob = found_team(tmp_path, runtime_dir, bare_repository(tmp_path))
    chat_key = make_key()

    # morning: alice fills the pool, bob joins in
    alice.add("work-1", "--project", "work", "--activate", "--phone", PHONE_1, "--card",
              "Visa ****1111", "--credit", "20")  # fmt: skip
    alice.add("work-2", "--project", "work")
    synced(alice)
    synced(bob)
    bob.add("web-1", "--project", "web", "--activate")
    bob.ok("phones", "add", PHONE_2, "--note", "the office phone")
    bob.ok("edit", "work-2", "--note", "bob's spare")
    alice.ok("edit", "work-1", "--credit", "15")
    alice.add("work-3", "--project", "work", "--phone", PHONE_1)  # PHONE_1's second key
    synced(bob)
    morning = synced(alice)
    assert "+ web-1 (web)" in morning

    # midday: both use PHONE_1's last slot, both tag web-1, both rotate work
    bob.add("web-2", "--project", "web", "--phone", PHONE_1)  # bob saw one key on it
    alice.ok("rotate", "--project", "work", "--to", "work-2", "--no-check")
    alice.ok("edit", "web-1", "--tag", "prod")
    bob.ok("edit", "web-1", "--tag", "team")
    bob.add("work-4", "--project", "work")
    bob.ok("rotate", "--project", "work", "--to", "work-4", "--no-check")
    synced(alice)
    midday = synced(bob)
    assert "conflict(s) resolved" in midday and "over-committed" in midday
    synced(alice)

    # afternoon: a removal against an edit, one key pasted twice, a .env file, a CI member
    alice.ok("rm", "work-3", "--yes")
    bob.ok("edit", "work-3", "--note", "I still use this")
    alice.cli.add("from-chat", chat_key, "--project", "web")
    bob.cli.add("chat-key", chat_key, "--project", "web")
    env_file = tmp_path / "app" / ".env"
    env_file.parent.mkdir()
    alice.ok("dotenv", str(env_file), "--project", "web")
    alice.ok("recipients", "new-ci", "ci-bot")
    synced(bob)
    evening = synced(alice)
    assert "the same key was added on both sides" in evening
    assert "removed on one side, edited on the other: kept" in evening
    synced(bob)

    # end of day: one document, nothing lost, the problems flagged where people look
    synced(alice)
    assert alice.document() == bob.document() and alice.head() == bob.head()
    doc = alice.doc()
    names = {e.name for e in doc.entries}
    assert {"work-1", "work-2", "work-3", "work-4", "web-1", "web-2"} <= names
    assert [e.secret.reveal() for e in doc.entries].count(chat_key) == 1
    entries = {e.name: e for e in doc.entries}
    assert entries["work-3"].note == "I still use this"
    assert entries["web-1"].tags == ["prod", "team"]
    assert entries["work-1"].credit_usd == 15
    for project in ("work", "web"):
        assert sum(e.status.value == "active" for e in doc.entries if e.project == project) == 1
    assert {r.name for r in doc.recipients} == {"owner", "bob", "ci-bot"}
    phones = json.loads(bob.ok("phones", "--json").out)
    over = [p for p in phones if p["phone"] == PHONE_1]
    assert over and over[0]["over"] == 1
    assert any(p["phone"] == PHONE_2 for p in phones)
    doctor = bob("doctor")
    assert "over its 2 slots" in doctor.out
    assert alice.git("log", "--merges", "--oneline").out.count("keyvault: merge") >= 2
    unlocked = {"KEYVAULT_PASSPHRASE": alice.cli.env["KEYVAULT_PASSPHRASE"]}
    diff = alice.git("log", "-p", "--first-parent", "-4", "--", "vault.age", env=unlocked).out
    assert "entry work-3" in diff and "fingerprint" in diff
    assert all(e.secret.reveal() not in diff for e in doc.entries)
