"""vault.age as lines of text for `git diff` and `git log -p` (`keyvault textconv`).

One line per field, in a fixed order, so a diff shows exactly which entry and field changed;
secrets are masked with a short fingerprint (a changed key shows as a changed fingerprint);
team secrets are shown by id only. Pure.
"""

from __future__ import annotations

import json

from vault.model.document import VaultDoc
from vault.model.entry import Entry
from vault.model.records import Event

_NOT_SHOWN = frozenset({"id", "name", "secret", "health", "extra"})


def text_view(doc: VaultDoc) -> list[str]:
    lines = [f"keyvault vault: generation {doc.generation}"]
    if doc.team is not None:
        ids = ", ".join(s.id for s in doc.team.secrets)
        lines.append(f"team {doc.team.vault_id}: secrets {ids}")
    lines += [f"member {r.name} {r.recipient}" for r in doc.recipients]
    for entry in sorted(doc.entries, key=lambda e: (e.name, e.id)):
        lines += _entry_lines(entry)
    lines += [
        f"phone {p.number}: {len(p.past)} removed key(s), note {p.note!r}" for p in doc.phones
    ]
    lines += [f"export {t.path} -> {t.project}" for t in doc.exports]
    lines += [f"mint {m.rid} {m.state} {m.name} ({m.project})" for m in doc.mints]
    lines.append("history:")
    lines += [_event_line(e) for e in doc.history]
    return lines


def _entry_lines(entry: Entry) -> list[str]:
    lines = [f"entry {entry.name} [{entry.id}]"]
    lines.append(
        f"  secret: {entry.secret.masked} (fingerprint {fingerprint(entry.secret.reveal())})"
    )
    for field in Entry.__slots__:
        value = getattr(entry, field)
        if field in _NOT_SHOWN or value in (None, [], ""):
            continue
        shown = value.value if hasattr(value, "value") else value
        lines.append(f"  {field}: {_one_line(shown)}")
    if entry.health is not None:
        lines.append(f"  health: {entry.health.status.value} at {entry.health.checked_at}")
    return lines


def _event_line(event: Event) -> str:
    about = f" {event.name}" if event.name else ""
    about += f" ({event.project})" if event.project else ""
    rest = f" {_one_line(dict(event.detail))}" if event.detail else ""
    return f"  {event.at} {event.action}{about}{rest}"


def _one_line(value: object) -> str:
    return (
        json.dumps(value, ensure_ascii=True, sort_keys=True)
        if not isinstance(value, str)
        else json.dumps(value)[1:-1]
    )


def fingerprint(secret: str) -> str:
    """32 bits of a personalised digest: tells two keys apart, reveals nothing of either."""
    from _blake2 import blake2b  # noqa: PLC0415

    return blake2b(
        secret.encode("utf-8", "surrogateescape"), digest_size=4, person=b"kv-textconv"
    ).hexdigest()
