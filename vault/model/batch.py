"""An index of a document for a batch of adds (`keyvault import`): built once, kept current.

    index = EntryIndex(doc)
    for new in keys:
        store_key(doc, new, at=at, phone_slots=slots, index=index)

The rules of `add` stay with their owners: `store_key` (no key stored twice, the first key
of a project active), `VaultDoc.add_entry` (unique names and ids, phone slots via
`check_phone_room`). Each of them answers its question from the index when given one, and
`add_entry` records the entry it stored, so m rows into an n-key vault cost O(n + m), not
O(n·m). Nothing else may change the document while a batch holds its index; every change
through a VaultDoc method appends history, so an index that sees the history grow without
it rebuilds itself instead of answering from a stale picture.
"""

from __future__ import annotations

from vault.model.entry import Entry, Status
from vault.model.phones import PhoneTally
from vault.model.secret import Secret

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.model.document import VaultDoc


class EntryIndex:
    """Names, ids, keys, active keys by project and phone usage of one document."""

    def __init__(self, doc: VaultDoc) -> None:
        self._build(doc)

    def refresh(self, doc: VaultDoc) -> None:
        """Rebuild when `doc` is another document or was changed behind the index's back."""
        if doc is not self._doc or self._mark(doc) != self._seen:
            self._build(doc)

    def _build(self, doc: VaultDoc) -> None:
        self._doc = doc
        self.names: set[str] = set()
        self.ids: set[str] = set()
        self.by_secret: dict[Secret, list[Entry]] = {}
        self.active: dict[str | None, list[Entry]] = {}
        for entry in doc.entries:
            self._add(entry)
        self.phones = PhoneTally(doc)
        self._seen = self._mark(doc)

    def added(self, entry: Entry) -> None:
        """`entry` was appended to the document (and any key it displaced is standby)."""
        if entry.status is Status.ACTIVE:
            self.active[entry.project] = []  # `_displace` made the project's others standby
        self._add(entry)
        self.phones.note(entry)
        self._seen = self._mark(self._doc)

    def _add(self, entry: Entry) -> None:
        self.names.add(entry.name)
        self.ids.add(entry.id)
        self.by_secret.setdefault(entry.secret, []).append(entry)
        if entry.status is Status.ACTIVE:
            self.active.setdefault(entry.project, []).append(entry)

    @staticmethod
    def _mark(doc: VaultDoc) -> tuple[int, int]:
        return len(doc.entries), len(doc.history)
