"""vault/model.py: the invariants every change keeps (names, one active key, phone slots)."""

from __future__ import annotations

import copy
import itertools

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
from vault.model.document import (
    Entry,
    Kind,
    Status,
    VaultDoc,
    check_phone_room,
    iter_entries,
    phone_usage,
)
from vault.model.secret import Secret

UK = "+447911123456"
US = "+14155552671"
FR = "+33612345678"

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
        id=f"id{next(_ids)}",
        name=name,
        secret=Secret(key or make_key()),
        project=project,
        status=status,
        phone=phone,
        kind=kind,
    )


def doc_with(*entries: Entry) -> VaultDoc:
    return VaultDoc(generation=1, entries=list(entries))


def statuses(doc: VaultDoc) -> dict[str, str]:
    return {e.name: str(e.status) for e in doc.entries}


def snapshot(doc: VaultDoc) -> list[dict[str, object]]:
    return [e.to_dict(reveal=True) for e in doc.entries]


# --- names ------------------------------------------------------------------------------


def test_names_are_unique_on_add_and_rename():
    doc = doc_with(entry("a"), entry("b"))
    with pytest.raises(DuplicateName, match="'a' already exists"):
        doc.add(entry("a"), phone_slots=2)
    with pytest.raises(DuplicateName, match="'b' already exists"):
        doc.update("a", {"name": "b"}, phone_slots=2)
    assert [e.name for e in doc.entries] == ["a", "b"]
    assert doc.update("a", {"name": "a"}, phone_slots=2).name == "a"  # renaming to itself is fine
    assert doc.update("a", {"name": "c"}, phone_slots=2).name == "c"
    assert doc.find("c").name == "c"


def test_find_and_remove_unknown_names():
    doc = doc_with(entry("a"))
    with pytest.raises(EntryNotFound) as caught:
        doc.find("nope")
    assert caught.value.message == "no entry named 'nope'"
    assert caught.value.hint == "see `keyvault list`"
    with pytest.raises(EntryNotFound):
        doc.remove("nope")
    assert doc.remove("a").name == "a"
    assert doc.entries == []


# --- one active key per project ------------------------------------------------------------


def test_adding_an_active_key_displaces_the_old_one_to_standby():
    doc = doc_with(
        entry("old", status=Status.ACTIVE), entry("other", project="home", status=Status.ACTIVE)
    )
    doc.add(entry("new", status=Status.ACTIVE), phone_slots=2)
    assert statuses(doc) == {"old": "standby", "other": "active", "new": "active"}
    assert doc.active("work").name == "new"
    assert doc.active("home").name == "other"


def test_activate_returns_what_it_displaced():
    old, spare = entry("old", status=Status.ACTIVE), entry("spare")
    doc = doc_with(old, spare)
    displaced = doc.activate(spare)
    assert displaced is old
    assert statuses(doc) == {"old": "standby", "spare": "active"}
    assert doc.activate(spare) is None  # already the active one


def test_update_to_active_keeps_a_single_active_key():
    doc = doc_with(entry("a", status=Status.ACTIVE), entry("b"), entry("c", status=Status.RETIRED))
    doc.update("c", {"status": Status.ACTIVE}, phone_slots=2)
    assert statuses(doc) == {"a": "standby", "b": "standby", "c": "active"}
    doc.update("c", {"status": Status.DISABLED}, phone_slots=2)
    with pytest.raises(NoActiveKey, match="project 'work' has no active key"):
        doc.active("work")


def test_the_default_project_is_a_project_too():
    doc = doc_with(entry("a", project=None, status=Status.ACTIVE), entry("b", project=None))
    doc.update("b", {"status": Status.ACTIVE}, phone_slots=2)
    assert statuses(doc) == {"a": "standby", "b": "active"}
    assert doc.active(None).name == "b"
    with pytest.raises(NoActiveKey, match="the default project has no keys") as caught:
        doc_with().active(None)
    assert "keyvault add NAME" in (caught.value.hint or "")
    stranded = doc_with(entry("only", project="work", status=Status.ACTIVE))
    with pytest.raises(NoActiveKey, match="the default project has no keys") as caught:
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
        doc.add(admin(status=Status.ACTIVE), phone_slots=2)
    assert snapshot(doc) == before


def test_an_admin_key_is_never_activated_or_updated_to_active():
    adm = admin()
    doc = doc_with(entry("a", status=Status.ACTIVE), adm)
    before = snapshot(doc)
    with pytest.raises(PolicyViolation, match="never a project's active key"):
        doc.activate(adm)
    with pytest.raises(PolicyViolation):
        doc.update("adm", {"status": Status.ACTIVE}, phone_slots=2)
    assert snapshot(doc) == before
    assert doc.active("work").name == "a"


def test_an_active_key_cannot_become_an_admin_key():
    doc = doc_with(entry("a", status=Status.ACTIVE))
    with pytest.raises(PolicyViolation):
        doc.update(
            "a", {"kind": Kind.ADMIN, "secret": Secret(make_key("sk-admin-", 58))}, phone_slots=2
        )
    assert doc.find("a").kind is Kind.API


def test_active_never_returns_an_admin_key_even_from_a_crafted_document():
    doc = doc_with(admin(status=Status.ACTIVE))  # only a hand-edited vault holds this
    with pytest.raises(NoActiveKey):
        doc.active("work")


# --- phone slots --------------------------------------------------------------------------


def test_phone_slots_default_limit_and_retired_keys_still_count():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK, status=Status.RETIRED))
    with pytest.raises(PhoneFull) as caught:
        doc.add(entry("c", phone=UK), phone_slots=2)
    assert caught.value.message == f"phone {UK} already verified 2 keys (limit 2): a, b"
    assert caught.value.exit_code == 1
    assert [e.name for e in doc.entries] == ["a", "b"]


@pytest.mark.parametrize("slots", [1, 3, 5])
def test_phone_slot_limit_is_configurable(slots):
    doc = doc_with()
    for n in range(slots):
        doc.add(entry(f"k{n}", phone=UK), phone_slots=slots)
    with pytest.raises(PhoneFull, match=f"limit {slots}"):
        doc.add(entry("one-too-many", phone=UK), phone_slots=slots)
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
        doc.add(entry("g", phone=UK), phone_slots=2)
    assert caught.value.hint == f"phones with a free slot: {US}"
    with pytest.raises(PhoneFull) as caught:
        check_phone_room(doc.entries, FR, 2)
    assert caught.value.hint == f"phones with a free slot: {US}"


def test_phone_full_hint_when_no_phone_has_room():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK))
    with pytest.raises(PhoneFull) as caught:
        doc.add(entry("c", phone=UK), phone_slots=2)
    assert "no phone on file has a free slot" in (caught.value.hint or "")


def test_a_new_phone_or_an_unphoned_key_always_has_room():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK))
    doc.add(entry("c", phone=US), phone_slots=2)
    doc.add(entry("d"), phone_slots=2)
    assert len(doc.entries) == 4


def test_moving_a_key_to_a_full_phone_is_refused_but_staying_is_fine():
    doc = doc_with(entry("a", phone=UK), entry("b", phone=UK), entry("c", phone=US))
    with pytest.raises(PhoneFull):
        doc.update("c", {"phone": UK}, phone_slots=2)
    assert doc.find("c").phone == US
    doc.update("a", {"phone": UK, "note": "same phone"}, phone_slots=2)
    doc.update("a", {"phone": US}, phone_slots=2)
    assert [u.used for u in phone_usage(doc.entries, 2)] == [2, 1]


def test_phone_usage_is_fullest_first_with_free_counts():
    doc = doc_with(
        entry("a", phone=US),
        entry("b", phone=UK),
        entry("c", phone=UK),
        entry("d", phone=FR),
        entry("e"),
    )
    rows = phone_usage(doc.entries, 3)
    assert [(r.phone, r.used, r.slots, r.free, r.entries) for r in rows] == [
        (UK, 2, 3, 1, ("b", "c")),
        (US, 1, 3, 2, ("a",)),
        (FR, 1, 3, 2, ("d",)),
    ]
    over = phone_usage(doc.entries, 1)  # the limit was lowered after the fact
    assert over[0].free == 0


# --- listing, dicts, history ----------------------------------------------------------------


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
    assert names(project="none") == []


def test_to_dict_masks_the_secret_unless_revealed_and_repr_never_shows_it():
    key = make_key()
    e = entry("a", key=key)
    masked = e.to_dict()
    assert masked["secret"] == f"sk-proj-…{key[-4:]}"
    assert key not in str(masked)
    assert e.to_dict(reveal=True)["secret"] == key
    assert key not in repr(e) and key not in str(e)
    assert masked["status"] == "standby" and masked["kind"] == "api"
    assert isinstance(masked["tags"], list)


def test_from_dict_round_trip_and_defaults():
    e = entry("a", phone=UK)
    e.tags = ["x", "y"]
    assert Entry.from_dict(e.to_dict(reveal=True)) == e
    minimal = Entry.from_dict({"id": "1", "name": "m", "secret": "tok"})
    assert (minimal.status, minimal.kind, minimal.provider) == (Status.STANDBY, Kind.API, "openai")


def test_unknown_entry_fields_from_a_newer_version_survive_a_round_trip():
    raw = {**entry("newer").to_dict(reveal=True), "surprise": {"nested": [1, 2]}}
    loaded = Entry.from_dict(raw)
    assert loaded.to_dict(reveal=True)["surprise"] == {"nested": [1, 2]}


@pytest.mark.parametrize(
    "change",
    [
        {"secret": None},
        {"status": "paused"},
        {"kind": "root"},
        {"tags": None},
        {"priority": "high"},
        {"name": None},
    ],
)
def test_from_dict_refuses_malformed_entries_without_leaking_the_secret(change):
    key = make_key()
    raw = {**entry("bad", key=key).to_dict(reveal=True), **change}
    if change.get("name", "") is None:
        del raw["name"]
    with pytest.raises(DamagedVault, match=r"vault entry .* is malformed") as caught:
        Entry.from_dict(raw)
    assert key not in str(caught.value)


def test_a_checked_shape_does_not_vouch_for_other_types_or_tags():
    """Shapes are checked once and remembered; the same keys with other types, or bad tags
    inside a list, are still refused (the cache is keyed by the types too)."""
    good = entry("good").to_dict(reveal=True)
    assert Entry.from_dict(good).name == "good"  # this shape is now known
    for change in ({"priority": True}, {"credit_usd": "5"}, {"health": []}, {"tags": [1]}):
        with pytest.raises(DamagedVault):
            Entry.from_dict({**good, **change})
    assert Entry.from_dict({**good, "priority": 3, "credit_usd": 2.5}).credit_usd == 2.5


def test_many_shapes_are_all_checked():
    """A crafted vault that gives every entry its own shape is still checked entry by entry."""
    base = entry("x").to_dict(reveal=True)
    for i in range(1500):
        assert Entry.from_dict({**base, f"future_{i}": i}).extra == {f"future_{i}": i}
    with pytest.raises(DamagedVault):
        Entry.from_dict({**base, "future_x": 1, "priority": None})


def test_effective_base_url_defaults_to_openai():
    e = entry("a")
    assert e.effective_base_url == "https://api.openai.com/v1"
    e.base_url = "https://relay.example.com/v1"
    assert e.effective_base_url == "https://relay.example.com/v1"


def test_history_is_appended():
    doc = doc_with()
    doc.record({"action": "init"})
    doc.record({"action": "add"})
    assert [h["action"] for h in doc.history] == ["init", "add"]


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
        (lambda: [entry("twin"), entry("twin", project="home")], "two entries named 'twin'"),
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
