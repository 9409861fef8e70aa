"""An import stores its rows by the rules of `add` through one batch index
(vault/model/batch.py): it must refuse exactly what the same rows added one at a time with
`add_key` refuse, with the same messages, and leave the same vault behind — duplicates
within the file and against the vault, a phone that fills up mid-import (removed keys and
spare phones counted), names made unique, the first key of a project active, a given status,
an admin key."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Clock, add, make_key, open_vault, write_config
from vault.errors import DuplicateKey, KeyvaultError
from vault.model.codec import entry_json, event_json
from vault.model.secret import Secret
from vault.store.importing import (
    ImportOptions,
    _fields_for,
    _name_for,
    _refuse_other_provider,
    _shown,
    import_keys,
)
from vault.store.inventory import add_key, add_phone, remove_key
from vault.store.keyvault import Keyvault
from vault.store.sources import Found, Reading

PHONES = [f"+4479111234{n}" for n in range(50, 55)]
PROJECTS = ["shop", "blog", "api", None]


def counter_rand() -> Callable[[int], bytes]:
    """Entry ids from a counter: both vaults give their n-th new key the same id."""
    state = iter(range(1, 1_000_000))
    return lambda size: next(state).to_bytes(size, "big")


def vault_with_history(home: Path, rng: random.Random) -> list[str]:
    """A vault with keys on phones, a removed key still holding a slot, a spare phone, a
    project whose only key is standby; returns its keys (for rows that repeat them)."""
    write_config(home, "phone_slots = 4\n")
    kv = open_vault(home, clock=Clock())
    keys = []
    for i in range(8):
        key = make_key()
        keys.append(key)
        fields = {"project": rng.choice(PROJECTS[:3]), "phone": PHONES[i % 3]}
        add(kv, f"old-{i}", key, **{k: v for k, v in fields.items() if v})
    add(kv, "gone", make_key(), phone=PHONES[0])
    remove_key(kv, "gone")
    add(kv, "quiet", make_key(), project="standby-only", status="standby")
    inventory_add_phone(kv, PHONES[4])
    return keys


def inventory_add_phone(kv: Keyvault, number: str) -> None:

    add_phone(kv, number, note="spare")


def rows(rng: random.Random, vault_keys: list[str], count: int) -> list[Found]:
    """Rows that meet every rule: repeated keys, taken and repeated names, phones filling."""
    seen: list[str] = []
    found = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.1 and vault_keys:
            key = rng.choice(vault_keys)
        elif roll < 0.2 and seen:
            key = rng.choice(seen)
        elif roll < 0.25:
            key = make_key("sk-admin-")
        elif roll < 0.3:
            key = "OPENAI_API_KEY=" + make_key()  # a pasted line: the value is the key
        else:
            key = make_key()
        seen.append(key.removeprefix("OPENAI_API_KEY="))
        fields: dict[str, Any] = {}
        project = rng.choice([*PROJECTS, "standby-only", "new-a", "new-b"])
        if project:
            fields["project"] = project
        if rng.random() < 0.6:
            fields["phone"] = rng.choice(PHONES)
        if rng.random() < 0.1:
            fields["status"] = rng.choice(["active", "standby"])
        name = rng.choice([f"row {i}", "old-1", "quiet", "dup", "dup", None])
        found.append(Found(f"rows.csv:{i + 2}", Secret(key), name, fields))
    return found


def one_by_one(kv: Keyvault, found: list[Found], options: ImportOptions) -> list[Any]:
    """What adding each row with `add_key` gives: the name it got, or why it was refused
    (worded as the import words a key met earlier in the same file)."""
    rand, outcomes, added = counter_rand(), [], []
    for item in found:
        name, _ = _name_for(item, set(kv.read().names()))
        try:
            _refuse_other_provider(item)
            entry = add_key(kv, name, item.secret, _fields_for(item, options), rand=rand).entry
        except DuplicateKey as exc:
            earlier = next((a for a in added if a[1].secret == item.secret), None)
            reason = exc.message
            if earlier is not None:
                reason = f"the same key as {earlier[0]} (imported as {earlier[1].name!r})"
            outcomes.append(("skipped", _shown(name, item.secret), reason))
        except KeyvaultError as exc:
            outcomes.append(("skipped", _shown(name, item.secret), exc.message))
        else:
            added.append((item.where, entry))
            outcomes.append(("added", entry.name, ""))  # its status: in the history compared
    return outcomes


def imported(kv: Keyvault, found: list[Found], options: ImportOptions) -> list[Any]:
    plan = import_keys(kv, [Reading(found, [])], options, rand=counter_rand())
    by_where = {a.where: ("added", a.entry.name, "") for a in plan.added}
    by_where.update({s.where: ("skipped", s.name, s.reason) for s in plan.skipped})
    return [by_where[_shown(item.where, item.secret)] for item in found]


def state(kv: Keyvault) -> tuple[list[Any], list[Any], list[Any]]:
    doc = kv.read()
    return (
        [entry_json(e, reveal=True) for e in doc.entries],
        [event_json(e) for e in doc.history],
        [tuple(p) for p in doc.phones],
    )


@pytest.mark.parametrize("seed", range(6))
def test_an_import_refuses_exactly_what_adding_row_by_row_refuses(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    batch_home, single_home = tmp_path / "batch", tmp_path / "single"
    vault_keys = vault_with_history(batch_home, rng)
    shutil.copytree(batch_home, single_home)
    found = rows(rng, vault_keys, 60)
    options = ImportOptions(project=None, fallback_project="shop" if seed % 2 else None)

    batch = open_vault(batch_home, clock=Clock())
    single = open_vault(single_home, clock=Clock())
    expected = one_by_one(single, found, options)
    got = imported(batch, found, options)

    assert got == expected
    kinds = {o[0] for o in got}
    reasons = " ".join(o[2] for o in got if o[0] == "skipped")
    assert kinds == {"added", "skipped"}  # the rows meet both outcomes …
    assert "already verified 4 keys" in reasons  # … a phone filled up mid-import …
    assert "already stored as" in reasons or "the same key as" in reasons  # … duplicates
    # same entries, ids and statuses, and the same history: each key's status when added
    # (the first of a project active), each key it displaced, in the same order
    assert state(batch) == state(single)


def test_an_index_rebuilds_when_the_document_changed_behind_it(tmp_path: Path) -> None:
    """A batch index never answers from a stale picture: a change through any VaultDoc
    method (here a removal that frees the name and a phone's live slot) is seen."""
    from vault.model.batch import EntryIndex
    from vault.store.inventory import prepare_key, store_key

    kv = open_vault(tmp_path / "kv", clock=Clock())
    add(kv, "a", make_key(), project="shop")
    doc = kv.read()
    index = EntryIndex(doc)
    doc.remove_entry("a", at="2026-03-01T12:00:00Z")
    new = prepare_key(kv, "a", Secret(make_key()), {"project": "shop"})
    store_key(doc, new, at="2026-03-01T12:00:00Z", phone_slots=3, index=index)
    assert [e.name for e in doc.entries] == ["a"]
    assert new.entry.status.value == "active"  # the project had no active key left
