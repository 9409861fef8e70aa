"""vault/model/merge.py: each kind of conflict two machines can make, and how it resolves.

Pure: documents built with VaultDoc's own methods, times passed in. Every case is merged
both ways (ours/theirs swapped) and must give the same document; the hypothesis suite in
test_merge_properties.py does the same for random edit scripts.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.helpers import make_key
from vault.errors import MergeRefused
from vault.model import codec
from vault.model.document import Entry, Kind, Status, VaultDoc
from vault.model.merge import Merged, merge
from vault.model.records import Action, Recipient
from vault.model.secret import Secret
from vault.model.team import secret_digest

T0, T1, T2, T3, NOW = (f"2026-03-0{d}T12:00:00Z" for d in range(1, 6))
SLOTS = 2
ALICE = Recipient("alice", "age1" + "a" * 58, T0)
BOB = Recipient("bob", "age1" + "c" * 58, T0)
CAROL = Recipient("carol", "age1" + "d" * 58, T0)


def seeded(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return lambda n: bytes(rng.randrange(256) for _ in range(n))


def entry(name: str, *, project: str | None = "work", **fields: object) -> Entry:
    ident = name.encode().hex()[:16].rjust(16, "0")
    return Entry(ident, name, Secret(make_key()), project=project, added_at=T0, **fields)  # type: ignore[arg-type]


def base_doc() -> VaultDoc:
    doc = VaultDoc(generation=3, recipients=[ALICE, BOB, CAROL])
    doc.ensure_team(at=T0, rand=seeded(0))
    doc.add_entry(entry("main", status=Status.ACTIVE), at=T0, phone_slots=SLOTS)
    doc.add_entry(entry("spare"), at=T0, phone_slots=SLOTS)
    doc.add_entry(entry("old"), at=T0, phone_slots=SLOTS)
    return doc


def copy(doc: VaultDoc) -> VaultDoc:
    return codec.loads(codec.dumps(doc))


def both_ways(base: VaultDoc | None, ours: VaultDoc, theirs: VaultDoc) -> Merged:
    """The merge, after proving the swapped merge gives the same bytes."""
    first = merge(base, ours, theirs, at=NOW, rand=seeded(7))
    second = merge(base, theirs, ours, at=NOW, rand=seeded(7))
    assert codec.dumps(first.doc) == codec.dumps(second.doc)
    assert first.conflicts == second.conflicts
    codec.loads(codec.dumps(first.doc))  # every load-time check passes
    return first


def kinds(merged: Merged) -> list[str]:
    return [c.kind for c in merged.conflicts]


def named(doc: VaultDoc) -> dict[str, Entry]:
    return {e.name: e for e in doc.entries}


def test_changes_on_one_side_each_are_both_kept_without_conflict() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.update_entry("main", {"note": "ours"}, at=T1, phone_slots=SLOTS)
    theirs.update_entry("spare", {"credit_usd": 5.0}, at=T2, phone_slots=SLOTS)
    theirs.add_entry(entry("fresh"), at=T2, phone_slots=SLOTS)
    ours.generation, theirs.generation = 4, 6
    merged = both_ways(base, ours, theirs)
    got = named(merged.doc)
    assert got["main"].note == "ours" and got["spare"].credit_usd == 5.0 and "fresh" in got
    assert merged.conflicts == []
    assert merged.doc.generation == 7  # max(4, 6) + 1
    assert merged.doc.history[-1].action is Action.MERGE


def test_one_field_edited_on_both_sides_the_later_wins_and_history_keeps_both() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.update_entry("main", {"note": "early"}, at=T1, phone_slots=SLOTS)
    theirs.update_entry("main", {"note": "late"}, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    assert named(merged.doc)["main"].note == "late"
    assert kinds(merged) == ["field"]
    assert "note edited on both sides" in str(merged.conflicts[0])
    edits = [e.at for e in merged.doc.history if e.action is Action.EDIT and e.name == "main"]
    assert edits == [T1, T2]  # both sides' events, ordered by time


def test_tags_merge_as_a_set() -> None:
    base = base_doc()
    base.update_entry("main", {"tags": ["a", "b"]}, at=T0, phone_slots=SLOTS)
    ours, theirs = copy(base), copy(base)
    ours.update_entry("main", {"tags": ["a", "b", "x"]}, at=T1, phone_slots=SLOTS)
    theirs.update_entry("main", {"tags": ["b", "y"]}, at=T2, phone_slots=SLOTS)
    assert named(both_ways(base, ours, theirs).doc)["main"].tags == ["b", "x", "y"]


def test_both_sides_rotated_one_project_the_later_stays_active() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.rotate_to(ours.find("spare"), at=T1, reason="manual")
    theirs.rotate_to(theirs.find("old"), at=T2, reason="manual")
    merged = both_ways(base, ours, theirs)
    got = named(merged.doc)
    assert [n for n, e in got.items() if e.status is Status.ACTIVE] == ["old"]
    assert got["spare"].status is Status.STANDBY and got["main"].status is Status.STANDBY
    assert kinds(merged) == ["two-active"]
    assert "old (the later) stays active" in str(merged.conflicts[0])


def test_delete_against_edit_keeps_the_edited_entry() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.remove_entry("old", at=T1)
    theirs.update_entry("old", {"note": "still needed"}, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    assert named(merged.doc)["old"].note == "still needed"
    assert kinds(merged) == ["delete-edit"]


def test_delete_against_no_change_or_a_mere_check_deletes() -> None:
    from vault.model.health import HealthRecord, HealthStatus

    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.remove_entry("old", at=T1)
    ours.remove_entry("spare", at=T1)
    record = HealthRecord(status=HealthStatus.OK, checked_at=T2)
    theirs.store_health(theirs.find("spare"), record, at=T2)  # a cron check is not an edit
    merged = both_ways(base, ours, theirs)
    assert set(named(merged.doc)) == {"main"}
    assert merged.conflicts == []


def test_same_name_added_on_both_sides_keeps_both_and_renames_the_later() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    early, late = entry("new"), entry("new")
    early.id, late.id = "00000000000000e1", "00000000000000e2"
    early.added_at, late.added_at = T1, T2
    ours.add_entry(early, at=T1, phone_slots=SLOTS)
    theirs.add_entry(late, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    got = named(merged.doc)
    assert got["new"].id == early.id and got["new-2"].id == late.id
    assert got["new-2"].secret == late.secret
    assert kinds(merged) == ["same-name"]


def test_same_secret_added_twice_keeps_the_first() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    key = make_key()
    first = Entry("00000000000000f1", "mine", Secret(key), project="work", added_at=T1)
    second = Entry("00000000000000f2", "yours", Secret(key), project="work", added_at=T2)
    ours.add_entry(first, at=T1, phone_slots=SLOTS)
    theirs.add_entry(second, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    assert [e.name for e in merged.doc.entries if e.secret.reveal() == key] == ["mine"]
    assert kinds(merged) == ["same-key"]


def test_a_secret_replaced_on_both_sides_keeps_both_keys() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    early, late = make_key(), make_key()
    ours.update_entry("spare", {"secret": Secret(early)}, at=T1, phone_slots=SLOTS)
    theirs.update_entry("spare", {"secret": Secret(late)}, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    secrets = {e.name: e.secret.reveal() for e in merged.doc.entries}
    assert secrets["spare"] == late
    assert secrets["spare (other key)"] == early  # it exists at OpenAI: never dropped
    assert named(merged.doc)["spare (other key)"].status is Status.STANDBY
    assert kinds(merged) == ["secret"]


def test_health_follows_the_secret_it_was_measured_on() -> None:
    from vault.model.health import HealthRecord, HealthStatus

    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.update_entry("spare", {"secret": Secret(make_key())}, at=T1, phone_slots=SLOTS)
    record = HealthRecord(status=HealthStatus.OK, checked_at=T2)
    theirs.store_health(theirs.find("spare"), record, at=T2)  # checked the old secret
    merged = both_ways(base, ours, theirs)
    assert named(merged.doc)["spare"].health is None


def test_three_keys_on_one_phone_are_all_kept_and_the_phone_flagged() -> None:
    phone = "+447911123456"
    base = base_doc()
    base.update_entry("main", {"phone": phone}, at=T0, phone_slots=SLOTS)
    ours, theirs = copy(base), copy(base)
    ours.update_entry("spare", {"phone": phone}, at=T1, phone_slots=SLOTS)
    theirs.update_entry("old", {"phone": phone}, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    usage = merged.doc.phone_usage(SLOTS)[0]
    assert usage.phone == phone and usage.used == 3 and usage.over == 1
    assert kinds(merged) == ["phone"]


def test_a_removed_member_stays_removed_and_the_team_secret_rotates() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.remove_recipient("carol", at=T1, rand=seeded(1))
    theirs.update_entry("main", {"note": "x"}, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    assert [r.name for r in merged.doc.recipients] == ["alice", "bob"]
    team = merged.doc.team
    assert team is not None
    # the remover's fresh secret, and one more: theirs (sealed to carol) knew neither
    assert ours.team is not None and ours.team.current in team.secrets
    assert team.current not in ours.team.secrets
    assert kinds(merged) == ["team"]


def test_members_removed_on_each_side_are_both_gone_with_a_secret_neither_knew() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.remove_recipient("carol", at=T1, rand=seeded(1))
    theirs.remove_recipient("bob", at=T2, rand=seeded(2))
    merged = both_ways(base, ours, theirs)
    assert [r.name for r in merged.doc.recipients] == ["alice"]
    assert merged.doc.team is not None and ours.team is not None and theirs.team is not None
    known_to_removed = {s.id for s in ours.team.secrets} | {s.id for s in theirs.team.secrets}
    assert merged.doc.team.current.id not in known_to_removed


def test_two_members_removing_each_other_keeps_both() -> None:
    base = VaultDoc(generation=1, recipients=[ALICE, BOB])
    base.ensure_team(at=T0, rand=seeded(0))
    ours, theirs = copy(base), copy(base)
    ours.remove_recipient("bob", at=T1, rand=seeded(1))
    theirs.remove_recipient("alice", at=T2, rand=seeded(2))
    merged = both_ways(base, ours, theirs)
    assert {r.name for r in merged.doc.recipients} == {"alice", "bob"}
    assert "member" in kinds(merged)


def test_a_member_added_back_after_a_removal_stays() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.remove_recipient("carol", at=T1, rand=seeded(1))
    theirs.remove_recipient("carol", at=T1, rand=seeded(2))
    theirs.add_recipient(CAROL._replace(added_at=T2), at=T2)
    merged = both_ways(base, ours, theirs)
    assert "carol" in {r.name for r in merged.doc.recipients}


def test_two_different_vaults_do_not_merge() -> None:
    ours, theirs = base_doc(), base_doc()
    theirs.team = theirs.team._replace(vault_id="ffffffffffffffff")  # type: ignore[union-attr]
    with pytest.raises(MergeRefused, match="two different vaults"):
        merge(None, ours, theirs, at=NOW, rand=seeded(1))


def test_no_base_unions_both_sides() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.add_entry(entry("only-ours"), at=T1, phone_slots=SLOTS)
    merged = both_ways(None, ours, theirs)
    assert {"main", "spare", "old", "only-ours"} <= set(named(merged.doc))


def test_the_merge_never_changes_its_inputs() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.rotate_to(ours.find("spare"), at=T1, reason="manual")
    theirs.rotate_to(theirs.find("old"), at=T2, reason="manual")
    before = [codec.dumps(d) for d in (base, ours, theirs)]
    merge(base, ours, theirs, at=NOW, rand=seeded(1))
    assert [codec.dumps(d) for d in (base, ours, theirs)] == before


def test_an_admin_key_made_active_on_one_side_and_admin_on_the_other_is_not_active() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.update_entry("spare", {"kind": Kind.ADMIN}, at=T1, phone_slots=SLOTS)
    theirs.update_entry("spare", {"status": Status.ACTIVE}, at=T2, phone_slots=SLOTS)
    merged = both_ways(base, ours, theirs)
    spare = named(merged.doc)["spare"]
    assert spare.kind is Kind.ADMIN and spare.status is Status.STANDBY


def test_the_team_chain_keeps_every_secret_and_the_pin_of_both_sides() -> None:
    base = base_doc()
    ours, theirs = copy(base), copy(base)
    ours.rotate_team_secret(at=T1, rand=seeded(3), reason="test")
    merged = both_ways(base, ours, theirs)
    assert merged.doc.team is not None and ours.team is not None and base.team is not None
    digests = {secret_digest(s.key) for s in merged.doc.team.secrets}
    assert secret_digest(base.team.current.key) in digests
    assert secret_digest(ours.team.current.key) in digests
