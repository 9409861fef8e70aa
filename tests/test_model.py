"""vault/model: the invariants every change keeps, and the history each change records.

Names and ids unique, one active key per project (never an admin key), phone verifications
counted even after a key is removed, a file exported to one project at a time, a new secret
loses the old one's health, mint records move only along their state machine.
"""

from __future__ import annotations

import copy
import itertools
import os

import pytest

from tests.helpers import make_key
from vault.errors import (
    DamagedVault,
    DuplicateName,
    EntryNotFound,
    NoActiveKey,
    PhoneFull,
    PolicyViolation,
)
from vault.model import codec
from vault.model.document import Entry, Kind, Status, VaultDoc, iter_entries
from vault.model.health import HealthRecord, HealthStatus
from vault.model.phones import check_phone_room, phone_usage
from vault.model.records import Action, MintRecord, MintState, Recipient
from vault.model.secret import Secret

UK = "+447911123456"
US = "+14155552671"
FR = "+33612345678"
AT = "2026-11-30T12:00:00Z"
OWNER = Recipient("owner", "age1" + "q" * 58)

_ids = itertools.count(1)


def entry(
    name: str,
    *,
    project: str | None = "work",
    status: Status = Status.STANDBY,
    phone: str | None = None,
    kind: Kind = Kind.API,
    key: str | None = None,
) -> Entry:
    return Entry(
        id=f"{next(_ids):016x}",
        name=name,
        secret=Secret(key or make_key()),
        project=project,
        status=status,
        phone=phone,
        kind=kind,
    )


def doc_with(*entries: Entry) -> VaultDoc:
    return VaultDoc(generation=1, recipients=[OWNER], entries=list(entries))


def add(doc: VaultDoc, new: Entry, slots: int = 2) -> None:
    doc.add_entry(new, at=AT, phone_slots=slots)


def update(doc: VaultDoc, target: str, slots: int = 2, **changes: object) -> Entry:
    return doc.update_entry(target, changes, at=AT, phone_slots=slots)


def statuses(doc: VaultDoc) -> dict[str, str]:
    return {e.name: str(e.status) for e in doc.entries}


def snapshot(doc: VaultDoc) -> bytes:
    return codec.dumps(doc)


def actions(doc: VaultDoc) -> list[str]:
    return [str(e.action) for e in doc.history]


# --- names and ids ----------------------------------------------------------------------


def test_names_are_unique_on_add_and_rename():
    doc = doc_with(entry("a"), entry("b"))
    with pytest.raises(DuplicateName, match="'a' already exists"):
        add(doc, entry("a"))
    with pytest.raises(DuplicateName, match="'b' already exists"):
        update(doc, "a", name="b")
    assert doc.names() == ["a", "b"]
    same = doc.find("a")
    assert update(doc, "a", name="a") is same  # renaming to itself is fine, and no change
    assert update(doc, "a", name="c").name == "c"
    assert doc.find("c").name == "c"
    assert actions(doc) == ["edit"]  # the rename to itself recorded nothing


def test_ids_are_unique_on_add():
    first = entry("a")
    doc = doc_with(first)
    twin = entry("b")
    twin.id = first.id
    with pytest.raises(DuplicateName, match="id"):
        add(doc, twin)


def test_unknown_names_say_what_is_close():
    doc = doc_with(entry("work-main"))
    with pytest.raises(EntryNotFound) as caught:
        doc.find("work-mian")
    assert caught.value.message == "no entry named 'work-mian'"
    assert caught.value.hint == "did you mean 'work-main'?"
    with pytest.raises(EntryNotFound) as caught:
        doc.find("zzz")
    assert caught.value.hint == "see `keyvault list`"
    with pytest.raises(EntryNotFound):
        doc.remove_entry("nope", at=AT)
    with pytest.raises(EntryNotFound, match="no project named 'wrok'") as caught:
        doc.require_project("wrok")
    assert caught.value.hint == "did you mean 'work'?"
    doc.require_project("work")
    doc.require_project(None)


# --- one active key per project ------------------------------------------------------------


def test_adding_an_active_key_displaces_the_old_one_and_says_so():
    doc = doc_with(
        entry("old", status=Status.ACTIVE), entry("other", project="home", status=Status.ACTIVE)
    )
    add(doc, entry("new", status=Status.ACTIVE))
    assert statuses(doc) == {"old": "standby", "other": "active", "new": "active"}
    assert doc.active("work").name == "new"
    assert doc.active("home").name == "other"
    assert actions(doc) == ["add", "status"]
    assert doc.history[1].name == "old"
    assert doc.history[1].detail["reason"] == "new became the active key"


def test_rotate_to_switches_in_one_step_and_records_why():
    old, spare = entry("old", status=Status.ACTIVE), entry("spare")
    doc = doc_with(old, spare)
    assert doc.rotate_to(spare, at=AT, reason="manual") is old
    assert statuses(doc) == {"old": "standby", "spare": "active"}
    (event,) = doc.history
    assert event.action is Action.ROTATE
    assert dict(event.detail) == {
        "from": "old",
        "from_entry": old.id,
        "old_status": "standby",
        "reason": "manual",
    }
    third = entry("third")
    add(doc, third)
    doc.rotate_to(third, at=AT, reason="due", retire_old=True)
    assert statuses(doc)["spare"] == "retired"


def test_update_to_active_keeps_a_single_active_key():
    doc = doc_with(entry("a", status=Status.ACTIVE), entry("b"), entry("c", status=Status.RETIRED))
    update(doc, "c", status=Status.ACTIVE)
    assert statuses(doc) == {"a": "standby", "b": "standby", "c": "active"}
    update(doc, "c", status=Status.DISABLED)
    with pytest.raises(NoActiveKey, match="project 'work' has no active key"):
        doc.active("work")


def test_side_effect_statuses_never_touch_the_active_key():
    active = entry("a", status=Status.ACTIVE)
    doc = doc_with(active, entry("b"))
    with pytest.raises(PolicyViolation):
        doc.set_status(active, Status.DISABLED, at=AT, action=Action.DISABLE, why="x")
    with pytest.raises(PolicyViolation):
        doc.set_status(doc.find("b"), Status.ACTIVE, at=AT, action=Action.ENABLE, why="x")
    doc.set_status(doc.find("b"), Status.DISABLED, at=AT, action=Action.DISABLE, why="3 fails")
    assert statuses(doc) == {"a": "active", "b": "disabled"}
    assert doc.history[-1].detail["reason"] == "3 fails"


def test_the_default_project_is_a_project_too():
    doc = doc_with(entry("a", project=None, status=Status.ACTIVE), entry("b", project=None))
    update(doc, "b", status=Status.ACTIVE)
    assert statuses(doc) == {"a": "standby", "b": "active"}
    assert doc.active(None).name == "b"
    with pytest.raises(NoActiveKey, match="the default project has no keys") as caught:
        doc_with().active(None)
    assert "keyvault add NAME" in (caught.value.hint or "")
    stranded = doc_with(entry("only", project="work", status=Status.ACTIVE))
    with pytest.raises(NoActiveKey, match="no project was chosen, and the default") as caught:
        stranded.active(None)  # the user forgot --project: point at the projects that work
    assert "projects with an active key: work" in (caught.value.hint or "")
    assert doc.projects() == [None]
    assert doc_with(
        entry("x", project="b"), entry("y", project=None), entry("z", project="a")
    ).projects() == [None, "a", "b"]


# --- admin keys ---------------------------------------------------------------------------


def admin(name: str = "adm", **kw: object) -> Entry:
    return entry(name, kind=Kind.ADMIN, key=make_key("sk-admin-", 58), **kw)  # type: ignore[arg-type]


def test_an_admin_key_is_never_added_as_active_and_the_doc_is_untouched():
    doc = doc_with(entry("a", status=Status.ACTIVE))
    before = snapshot(doc)
    with pytest.raises(PolicyViolation, match="admin key"):
        add(doc, admin(status=Status.ACTIVE))
    assert snapshot(doc) == before


def test_an_admin_key_is_never_activated_or_updated_to_active():
    adm = admin()
    doc = doc_with(entry("a", status=Status.ACTIVE), adm)
    before = snapshot(doc)
    with pytest.raises(PolicyViolation, match="never a project's active key"):
        doc.rotate_to(adm, at=AT, reason="manual")
    with pytest.raises(PolicyViolation):
        update(doc, "adm", status=Status.ACTIVE)
    assert snapshot(doc) == before
    assert doc.active("work").name == "a"


def test_an_active_key_cannot_become_an_admin_key():
    doc = doc_with(entry("a", status=Status.ACTIVE))
    with pytest.raises(PolicyViolation):
        update(doc, "a", kind=Kind.ADMIN, secret=Secret(make_key("sk-admin-", 58)))
    assert doc.find("a").kind is Kind.API


def test_active_never_returns_an_admin_key_even_from_a_crafted_document():
    doc = doc_with(admin(status=Status.ACTIVE))  # only a hand-edited vault holds this
    with pytest.raises(NoActiveKey):
        doc.active("work")
    with pytest.raises(DamagedVault, match="an admin key cannot be active"):
        doc.check_invariants()


# --- a new secret is an unchecked key ---------------------------------------------------------


def test_a_new_secret_drops_the_old_keys_health():
    checked = entry("a")
    checked.health = HealthRecord(HealthStatus.OK, AT, last_ok_at=AT)
    doc = doc_with(checked)
    update(doc, "a", note="same key, new note")
    assert doc.find("a").health is not None
    update(doc, "a", secret=Secret(make_key()))
    assert doc.find("a").health is None  # nobody checked the new key
    assert doc.history[-1].detail["fields"] == ["secret"]


# --- phone slots --------------------------------------------------------------------------


def test_phone_slots_default_limit_and_retired_keys_still_count():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK, status=Status.RETIRED))
    with pytest.raises(PhoneFull) as caught:
        add(doc, entry("c", phone=UK))
    assert caught.value.message == f"phone {UK} already verified 2 keys (limit 2): a, b"
    assert caught.value.exit_code == 1
    assert doc.names() == ["a", "b"]


def test_a_removed_key_still_uses_its_phone_slot():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK), entry("c", phone=US))
    doc.remove_entry("b", at=AT)
    with pytest.raises(PhoneFull) as caught:  # OpenAI still counts b's verification
        add(doc, entry("d", phone=UK))
    assert caught.value.message == f"phone {UK} already verified 2 keys (limit 2): a, b (removed)"
    assert caught.value.hint == f"phones with a free slot: {US}"
    (row,) = [u for u in doc.phone_usage(2) if u.phone == UK]
    assert (row.used, row.free, row.entries, row.removed) == (2, 0, ("a",), ("b",))
    again = codec.loads(codec.dumps(doc))  # the verification survives a save
    assert [u.removed for u in again.phone_usage(2) if u.phone == UK] == [("b",)]


def test_a_spare_phone_is_offered_before_it_verifies_anything():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK))
    doc.add_phone(FR, at=AT, note="rented 2026-11")
    with pytest.raises(PhoneFull) as caught:
        add(doc, entry("c", phone=UK))
    assert caught.value.hint == f"phones with a free slot: {FR}"
    with pytest.raises(DuplicateName):
        doc.add_phone(UK, at=AT)
    assert actions(doc) == ["phone-add"]


@pytest.mark.parametrize("slots", [1, 3, 5])
def test_phone_slot_limit_is_configurable(slots):
    doc = doc_with()
    for n in range(slots):
        add(doc, entry(f"k{n}", phone=UK), slots)
    with pytest.raises(PhoneFull, match=f"limit {slots}"):
        add(doc, entry("one-too-many", phone=UK), slots)
    assert len(doc.entries) == slots


def test_phone_full_hint_lists_only_phones_with_room():
    doc = doc_with(
        entry("a", phone=UK),
        entry("b", phone=UK),
        entry("c", phone=US),
        entry("d", phone=FR),
        entry("e", phone=FR),
        entry("f", project=None),
    )
    with pytest.raises(PhoneFull) as caught:
        add(doc, entry("g", phone=UK))
    assert caught.value.hint == f"phones with a free slot: {US}"
    with pytest.raises(PhoneFull) as caught:
        check_phone_room(doc, FR, 2)
    assert caught.value.hint == f"phones with a free slot: {US}"


def test_phone_full_hint_when_no_phone_has_room():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK))
    with pytest.raises(PhoneFull) as caught:
        add(doc, entry("c", phone=UK))
    assert "no phone on file has a free slot" in (caught.value.hint or "")


def test_a_new_phone_or_an_unphoned_key_always_has_room():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK))
    add(doc, entry("c", phone=US))
    add(doc, entry("d"))
    assert len(doc.entries) == 4


def test_moving_a_key_to_a_full_phone_is_refused_but_staying_is_fine():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK), entry("c", phone=US))
    with pytest.raises(PhoneFull):
        update(doc, "c", phone=UK)
    assert doc.find("c").phone == US
    update(doc, "a", phone=UK, note="same phone")
    update(doc, "a", phone=US)
    assert [u.used for u in phone_usage(doc, 2)] == [2, 1]


def test_phone_usage_is_fullest_first_and_flags_over_commitment():
    doc = doc_with(
        entry("a", phone=US),
        entry("b", phone=UK),
        entry("c", phone=UK),
        entry("d", phone=FR),
        entry("e"),
    )
    rows = phone_usage(doc, 3)
    assert [(r.phone, r.used, r.slots, r.free, r.entries) for r in rows] == [
        (UK, 2, 3, 1, ("b", "c")),
        (US, 1, 3, 2, ("a",)),
        (FR, 1, 3, 2, ("d",)),
    ]
    over = phone_usage(doc, 1)  # the limit was lowered, or a merge met two machines' keys
    assert (over[0].free, over[0].over) == (0, 1)


# --- export targets -----------------------------------------------------------------------


def test_a_file_belongs_to_one_project_and_re_pointing_moves_it():
    doc = doc_with(entry("s", project="side"), entry("w"))
    assert doc.remember_export("side", "/p/.env", at=AT) is True
    assert doc.remember_export("side", "/p/.env", at=AT) is False
    assert doc.remember_export("work", "/p/.env", at=AT) is True
    assert [t.path for t in doc.export_targets("work")] == ["/p/.env"]
    assert doc.export_targets("side") == []
    assert actions(doc) == ["export", "export-move"]
    assert doc.history[-1].detail["from_project"] == "side"


# --- recipients ---------------------------------------------------------------------------


def test_recipients_are_unique_and_the_last_one_stays():
    doc = doc_with()
    alice = Recipient("alice", "age1" + "a" * 58)
    doc.add_recipient(alice, at=AT)
    with pytest.raises(DuplicateName):
        doc.add_recipient(Recipient("alice", "age1" + "b" * 58), at=AT)
    with pytest.raises(DuplicateName, match="already recipient 'alice'"):
        doc.add_recipient(Recipient("bob", alice.recipient), at=AT)
    with pytest.raises(PolicyViolation, match="lock you out"):
        doc.remove_recipient("owner", at=AT, keep=OWNER.recipient, rand=os.urandom)
    assert doc.remove_recipient("alice", at=AT, rand=os.urandom) == alice
    with pytest.raises(PolicyViolation, match="at least one recipient"):
        doc.remove_recipient("owner", at=AT, rand=os.urandom)
    # removing a recipient rotates the team secret (this document had none yet: its first)
    assert actions(doc) == ["recipient-add", "recipient-rm", "team-secret"]
    assert doc.team is not None and len(doc.team.secrets) == 1


# --- mint records -------------------------------------------------------------------------


def mint(rid: str = "00000000000000a1") -> MintRecord:
    return MintRecord(rid, MintState.INTENT, "work", "proj_x", "0" * 16, "acct", AT)


def test_mint_admin_move_only_along_their_state_machine():
    doc = doc_with()
    doc.add_mint(mint(), at=AT)
    with pytest.raises(PolicyViolation, match="cannot go from intent to active"):
        doc.advance_mint("00000000000000a1", MintState.ACTIVE, at=AT)
    doc.advance_mint("00000000000000a1", MintState.CREATED, at=AT, action=Action.MINT, id="svc")
    doc.advance_mint("00000000000000a1", MintState.SWITCHED, at=AT)
    doc.advance_mint("00000000000000a1", MintState.ACTIVE, at=AT)
    assert doc.mint("00000000000000a1").id == "svc"
    with pytest.raises(PolicyViolation):
        doc.add_mint(mint(), at=AT)  # the same id twice
    assert actions(doc) == ["mint-intent", "mint"]


# --- listing ------------------------------------------------------------------------------


def test_iter_entries_filters_by_project_and_status():
    doc = doc_with(
        entry("a", status=Status.ACTIVE),
        entry("b"),
        entry("c", project="home"),
        entry("d", project=None, status=Status.RETIRED),
    )
    names = lambda **kw: [e.name for e in iter_entries(doc, **kw)]  # noqa: E731
    assert names() == ["a", "b", "c", "d"]
    assert names(project="work") == ["a", "b"]
    assert names(status="standby") == ["b", "c"]
    assert names(project="work", status="active") == ["a"]


def test_repr_and_display_json_never_show_the_secret():
    key = make_key()
    e = entry("a", key=key)
    masked = codec.entry_json(e)
    assert masked["secret"] == f"sk-proj-…{key[-4:]}"
    assert key not in str(masked)
    assert codec.entry_json(e, reveal=True)["secret"] == key
    assert key not in repr(e) and key not in str(e)
    assert masked["status"] == "standby" and masked["kind"] == "api"


def test_effective_base_url_defaults_to_openai():
    e = entry("a")
    assert e.effective_base_url == "https://api.openai.com/v1"
    e.base_url = "https://relay.example.com/v1"
    assert e.effective_base_url == "https://relay.example.com/v1"


# --- check_invariants on crafted documents ------------------------------------------------


def test_check_invariants_accepts_a_sound_document():
    doc = doc_with(
        entry("a", status=Status.ACTIVE),
        entry("b"),
        entry("c", project="home", status=Status.ACTIVE),
        entry("d", project=None, status=Status.ACTIVE),
    )
    doc.check_invariants()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (lambda: [entry("twin"), entry("twin", project="home")], "share the name 'twin'"),
        (
            lambda: [entry("a", status=Status.ACTIVE), entry("b", status=Status.ACTIVE)],
            "two active keys in project 'work'",
        ),
        (
            lambda: [
                entry("a", project=None, status=Status.ACTIVE),
                entry("b", project=None, status=Status.ACTIVE),
            ],
            "two active keys in project None",
        ),
    ],
)
def test_check_invariants_refuses_crafted_documents(entries, message):
    doc = doc_with(*entries())
    before = copy.deepcopy(snapshot(doc))
    with pytest.raises(DamagedVault, match=message) as caught:
        doc.check_invariants()
    assert caught.value.exit_code == 4
    assert snapshot(doc) == before  # checking never "repairs" silently
