"""What changed between two versions of a vault, one line per entry or member, for people.

`keyvault sync` prints what came in and what went out with these lines; they name entries
and fields, never a value (a secret that changed reads `~ main: secret`). Pure.
"""

from __future__ import annotations

from vault.model.document import VaultDoc
from vault.model.entry import Entry

_QUIET = frozenset({"id", "updated_at"})  # changes that say nothing by themselves


def describe_changes(before: VaultDoc | None, after: VaultDoc) -> list[str]:
    """`+ name (project)`, `- name`, `~ name: field, field`, `+ member NAME`, …"""
    old = {e.id: e for e in before.entries} if before is not None else {}
    new = {e.id: e for e in after.entries}
    lines = [f"+ {_label(e)}" for e in after.entries if e.id not in old]
    for entry in after.entries:
        previous = old.get(entry.id)
        if previous is not None and previous != entry:
            fields = [
                f for f in Entry.__slots__ if f not in _QUIET and _differs(previous, entry, f)
            ]
            if fields:
                lines.append(f"~ {entry.name}: {', '.join(fields)}")
    lines += [f"- {e.name}" for e in (before.entries if before else []) if e.id not in new]
    members_before = {r.recipient: r.name for r in before.recipients} if before else {}
    members_after = {r.recipient: r.name for r in after.recipients}
    lines += [f"+ member {n}" for k, n in members_after.items() if k not in members_before]
    lines += [f"- member {n}" for k, n in members_before.items() if k not in members_after]
    return lines


def _label(entry: Entry) -> str:
    return f"{entry.name} ({entry.project})" if entry.project else entry.name


def _differs(old: Entry, new: Entry, field: str) -> bool:
    return bool(getattr(old, field) != getattr(new, field))
