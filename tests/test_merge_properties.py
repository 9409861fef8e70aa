"""The merge's promises for any two edit scripts from one base (issue 15):

- merged both ways (ours/theirs swapped) the documents are byte-identical;
- no entry is lost: every entry either side still has is in the result, unless the other
  side removed it and this side made no edit to it (then it is gone: delete wins over "no
  change"); a key added on both sides under two ids survives once;
- every invariant holds (VaultDoc.check_invariants runs inside merge; the result also
  reads back through every load-time check).

The scripts use VaultDoc's own methods, as the commands do, with times drawn from a few
values so that ties happen; what counts as an edit is tracked here, independently of the
merge's own rule.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.helpers import make_key
from vault.errors import KeyvaultError
from vault.model import codec
from vault.model.document import Entry, Status, VaultDoc
from vault.model.entry import CREDIT_RELAY
from vault.model.health import HealthRecord, HealthStatus
from vault.model.merge import merge
from vault.model.records import Recipient
from vault.model.secret import Secret

TIMES = [f"2026-03-0{d}T12:00:00Z" for d in range(2, 6)]
NOW = "2026-03-09T12:00:00Z"
SLOTS = 3  # the sides may use a third slot; the merge is told 2: over-commits happen
PHONES = ["+447911123456", "+447911123457", "+33612345678"]
PROJECTS = ["alpha", "beta", None]
NAMES = ["a", "b", "k5"]
SHARED_KEY = make_key()  # added on both sides under two ids: one survives
MEMBERS = [
    Recipient(n, "age1" + c * 58, TIMES[0])
    for n, c in (("alice", "a"), ("bob", "c"), ("carol", "d"))
]


def seeded(seed: int) -> Callable[[int], bytes]:
    rng = random.Random(seed)
    return lambda n: bytes(rng.randrange(256) for _ in range(n))


def base_doc() -> VaultDoc:
    doc = VaultDoc(generation=5, recipients=list(MEMBERS))
    doc.ensure_team(at=TIMES[0], rand=seeded(0))
    for index, name in enumerate(["k0", "k1", "k2", "k3", "k4", "k5"]):
        project = PROJECTS[index % 2]
        status = Status.ACTIVE if index < 2 else Status.STANDBY
        ident = f"{index:016x}"
        doc.add_entry(
            Entry(
                ident, name, Secret(make_key()), project=project, status=status, added_at=TIMES[0]
            ),
            at=TIMES[0],
            phone_slots=SLOTS,
        )
    doc.remember_export("alpha", "/srv/app/.env", at=TIMES[0])
    return doc


class Script:
    """One side's edits, and what this test counts as an edit of each entry."""

    def __init__(self, base: VaultDoc, side: str) -> None:
        self.doc = codec.loads(codec.dumps(base))
        self.side = side
        self.edited: set[str] = set()
        self.deleted: set[str] = set()
        self.counter = 0

    def unique(self) -> str:
        self.counter += 1
        return f"{self.side}{self.counter}"

    def run(self, data: st.DataObject) -> None:
        ops = [
            self.add, self.add, self.phone, self.note, self.tags, self.secret,
            self.activate, self.rotate, self.remove, self.check, self.relay_credit,
            self.spare_phone, self.drop_member, self.add_member, self.export, self.demote,
        ]  # fmt: skip
        for _ in range(data.draw(st.integers(0, 8))):
            op = data.draw(st.sampled_from(ops))
            at = data.draw(st.sampled_from(TIMES))
            with contextlib.suppress(KeyvaultError):  # refused whole: nothing changed
                op(data, at)

    def pick(self, data: st.DataObject) -> Entry | None:
        if not self.doc.entries:
            return None
        return data.draw(st.sampled_from(self.doc.entries))

    def add(self, data: st.DataObject, at: str) -> None:
        key = SHARED_KEY if data.draw(st.booleans()) else make_key()
        if any(e.secret.reveal() == key for e in self.doc.entries):
            return
        name = data.draw(st.sampled_from(NAMES))
        project = data.draw(st.sampled_from(PROJECTS))
        status = data.draw(st.sampled_from([Status.ACTIVE, Status.STANDBY]))
        ident = random.Random(self.unique()).getrandbits(64).to_bytes(8, "big").hex()
        entry = Entry(ident, name, Secret(key), project=project, status=status, added_at=at)
        self.doc.add_entry(entry, at=at, phone_slots=SLOTS)

    def _edit(self, data: st.DataObject, at: str, changes: dict[str, object]) -> None:
        entry = self.pick(data)
        if entry is not None:
            self.doc.update_entry(entry.name, changes, at=at, phone_slots=SLOTS)
            self.edited.add(entry.id)

    def note(self, data: st.DataObject, at: str) -> None:
        self._edit(data, at, {"note": self.unique()})

    def tags(self, data: st.DataObject, at: str) -> None:
        self._edit(data, at, {"tags": [self.unique()]})

    def secret(self, data: st.DataObject, at: str) -> None:
        self._edit(data, at, {"secret": Secret(make_key())})

    def phone(self, data: st.DataObject, at: str) -> None:
        entry = self.pick(data)
        number = data.draw(st.sampled_from(PHONES))
        if entry is not None and entry.phone != number:
            self.doc.update_entry(entry.name, {"phone": number}, at=at, phone_slots=SLOTS)
            self.edited.add(entry.id)

    def activate(self, data: st.DataObject, at: str) -> None:
        entry = self.pick(data)
        if entry is not None and entry.status is not Status.ACTIVE:
            self.doc.update_entry(entry.name, {"status": Status.ACTIVE}, at=at, phone_slots=SLOTS)
            self.edited.add(entry.id)

    def demote(self, data: st.DataObject, at: str) -> None:  # not an edit: policy-like
        entry = self.pick(data)
        if entry is not None and entry.status is Status.STANDBY:
            self.doc.update_entry(entry.name, {"status": Status.DISABLED}, at=at, phone_slots=SLOTS)

    def rotate(self, data: st.DataObject, at: str) -> None:
        entry = self.pick(data)
        if entry is not None and entry.status is not Status.ACTIVE:
            self.doc.rotate_to(entry, at=at, reason="test")
            self.edited.add(entry.id)

    def remove(self, data: st.DataObject, at: str) -> None:
        entry = self.pick(data)
        if entry is not None:
            self.doc.remove_entry(entry.name, at=at)
            self.deleted.add(entry.id)

    def check(self, data: st.DataObject, at: str) -> None:
        entry = self.pick(data)
        status = data.draw(st.sampled_from([HealthStatus.OK, HealthStatus.INVALID]))
        if entry is not None:
            self.doc.store_health(entry, HealthRecord(status=status, checked_at=at), at=at)

    def relay_credit(self, data: st.DataObject, at: str) -> None:
        entry = self.pick(data)
        if entry is not None:
            self.doc.set_credit(
                entry, data.draw(st.sampled_from([1.0, 2.5])), at=at, source=CREDIT_RELAY
            )

    def spare_phone(self, data: st.DataObject, at: str) -> None:
        self.doc.add_phone(data.draw(st.sampled_from(PHONES)), at=at, note=self.unique())

    def drop_member(self, data: st.DataObject, at: str) -> None:
        name = data.draw(st.sampled_from(["bob", "carol"]))
        self.doc.remove_recipient(name, at=at, rand=seeded(hash(self.unique()) & 0xFFFF))

    def add_member(self, data: st.DataObject, at: str) -> None:
        letter = data.draw(st.sampled_from("ef"))
        self.doc.add_recipient(Recipient(f"new-{letter}", "age1" + letter * 58, at), at=at)

    def export(self, data: st.DataObject, at: str) -> None:
        path = data.draw(st.sampled_from(["/srv/app/.env", "/srv/other/.env"]))
        self.doc.remember_export(data.draw(st.sampled_from(PROJECTS)), path, at=at)


def net_edit(before: Entry, after: Entry) -> bool:
    """An edit op whose effect is still there (an entry activated and displaced again, or
    set back to what it was, is unchanged)."""
    fields = ("note", "tags", "secret", "phone")
    changed = any(getattr(before, f) != getattr(after, f) for f in fields)
    return changed or (after.status is Status.ACTIVE and before.status is not Status.ACTIVE)


def survivors_expected(base: VaultDoc, ours: Script, theirs: Script) -> tuple[set[str], set[str]]:
    """(ids that must be present, ids that must be gone)."""
    old = {e.id: e for e in base.entries}
    must, gone = set(), set()
    for this, other in ((ours, theirs), (theirs, ours)):
        for entry in this.doc.entries:
            removed_there = entry.id in old and entry.id in other.deleted
            kept = entry.id in this.edited and net_edit(old.get(entry.id, entry), entry)
            if removed_there and not kept:
                gone.add(entry.id)
            else:
                must.add(entry.id)
    return must, gone - must


@pytest.mark.slow
@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_edits_merge_the_same_both_ways_and_lose_nothing(data: st.DataObject) -> None:
    base = base_doc()
    ours, theirs = Script(base, "o"), Script(base, "t")
    ours.run(data)
    theirs.run(data)
    one = merge(base, ours.doc, theirs.doc, at=NOW, rand=seeded(9), phone_slots=2)
    two = merge(base, theirs.doc, ours.doc, at=NOW, rand=seeded(9), phone_slots=2)
    assert codec.dumps(one.doc) == codec.dumps(two.doc)
    assert one.conflicts == two.conflicts
    for kind in sorted({c.kind for c in one.conflicts}):
        event(f"conflict: {kind}")
    merged = codec.loads(codec.dumps(one.doc))  # invariants and every field check
    present = {e.id for e in merged.entries}
    secrets = {e.secret.reveal() for e in merged.entries}
    must, gone = survivors_expected(base, ours, theirs)
    for ident in must - present:  # only a twin of a key added on both sides may be missing
        side = next(e for s in (ours, theirs) for e in s.doc.entries if e.id == ident)
        assert side.secret.reveal() == SHARED_KEY and SHARED_KEY in secrets, ident
    assert not (gone & present), gone & present
    assert merged.generation == max(ours.doc.generation, theirs.doc.generation) + 1
    assert merged.team is not None and merged.recipients
    for script in (ours, theirs):  # every team secret either side held is still in the chain
        assert script.doc.team is not None
        assert {x.id for x in script.doc.team.secrets} <= {x.id for x in merged.team.secrets}
