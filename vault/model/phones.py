"""Phone verification slots: each phone number verifies a limited number of keys.

A phone's slots are used by every entry that names it (any status: a retired key was still
verified) and by keys removed from the vault (`Phone.past`): OpenAI counts verifications,
not live keys. A merged vault can exceed the limit (two machines each used the last slot);
that is reported as over-committed, never silently dropped.
"""

from __future__ import annotations

from vault.errors import PhoneFull
from vault.model.tuples import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.model.document import VaultDoc
    from vault.model.entry import Entry


class PhoneUsage(NamedTuple):
    phone: str
    used: int
    slots: int
    entries: tuple[str, ...]  # names of the keys in the vault it verified
    removed: tuple[str, ...] = ()  # names of removed keys it verified
    note: str | None = None

    @property
    def free(self) -> int:
        return max(self.slots - self.used, 0)

    @property
    def over(self) -> int:
        """How many verifications beyond the limit (a merge of two machines' changes)."""
        return max(self.used - self.slots, 0)


class PhoneTally:
    """The keys each phone verified, counted once from a document: live entries (in the
    document's order) and removed keys, spare phones included. `check_phone_room` reads it;
    an import keeps one for the whole batch (vault/model/batch.py) and `note`s each key it
    adds, so a row costs a lookup, not a pass over the vault."""

    def __init__(self, doc: VaultDoc, *, ignore: Entry | None = None) -> None:
        self.live: dict[str, list[str]] = {p.number: [] for p in doc.phones}
        for entry in doc.entries:
            if entry.phone and entry is not ignore:
                self.live.setdefault(entry.phone, []).append(entry.name)
        self.past = {p.number: tuple(k.name for k in p.past) for p in doc.phones}
        self.notes = {p.number: p.note for p in doc.phones}

    def note(self, entry: Entry) -> None:
        """`entry` was added to the document."""
        if entry.phone:
            self.live.setdefault(entry.phone, []).append(entry.name)

    def used(self, phone: str) -> int:
        return len(self.live.get(phone, ())) + len(self.past.get(phone, ()))

    def usage(self, slots: int) -> list[PhoneUsage]:
        """Slot usage per phone, fullest first."""
        rows = [
            PhoneUsage(
                number,
                self.used(number),
                slots,
                tuple(live),
                self.past.get(number, ()),
                self.notes.get(number),
            )
            for number, live in self.live.items()
        ]
        return sorted(rows, key=lambda r: (-r.used, r.phone))


def phone_usage(doc: VaultDoc, slots: int, *, ignore: Entry | None = None) -> list[PhoneUsage]:
    """Slot usage per phone, fullest first; spare phones (no key yet) included."""
    return PhoneTally(doc, ignore=ignore).usage(slots)


def check_phone_room(
    doc: VaultDoc,
    phone: str,
    slots: int,
    *,
    ignore: Entry | None = None,
    tally: PhoneTally | None = None,
) -> None:
    """PhoneFull, with the phones that still have room, when `phone` has no free slot.
    `tally`: the document's, kept by the caller (an import), instead of counting again."""
    tally = tally if tally is not None else PhoneTally(doc, ignore=ignore)
    if phone not in tally.live or tally.used(phone) < slots:
        return
    usage = tally.usage(slots)  # the refusal names every phone: worth the sort only here
    current = next(u for u in usage if u.phone == phone)
    with_room = [u.phone for u in usage if u.free > 0]
    hint = (
        "phones with a free slot: " + ", ".join(with_room)
        if with_room
        else "no phone on file has a free slot: verify the key with a new number"
    )
    verified = [*current.entries, *(f"{n} (removed)" for n in current.removed)]
    raise PhoneFull(
        f"phone {phone} already verified {current.used} keys (limit {slots}):"
        f" {', '.join(verified)}",
        hint=hint,
    )
