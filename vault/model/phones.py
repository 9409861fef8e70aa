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


def phone_usage(doc: VaultDoc, slots: int, *, ignore: Entry | None = None) -> list[PhoneUsage]:
    """Slot usage per phone, fullest first; spare phones (no key yet) included."""
    names: dict[str, list[str]] = {p.number: [] for p in doc.phones}
    for entry in doc.entries:
        if entry.phone and entry is not ignore:
            names.setdefault(entry.phone, []).append(entry.name)
    past = {p.number: tuple(k.name for k in p.past) for p in doc.phones}
    notes = {p.number: p.note for p in doc.phones}
    rows = [
        PhoneUsage(
            number,
            len(live) + len(past.get(number, ())),
            slots,
            tuple(live),
            past.get(number, ()),
            notes.get(number),
        )
        for number, live in names.items()
    ]
    return sorted(rows, key=lambda r: (-r.used, r.phone))


def check_phone_room(doc: VaultDoc, phone: str, slots: int, *, ignore: Entry | None = None) -> None:
    """PhoneFull, with the phones that still have room, when `phone` has no free slot."""
    usage = phone_usage(doc, slots, ignore=ignore)
    current = next((u for u in usage if u.phone == phone), None)
    if current is None or current.used < slots:
        return
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
