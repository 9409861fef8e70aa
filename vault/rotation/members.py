"""Removing a team member: re-seal without them, and say which keys they could read.

`recipients rm` re-encrypts the vault (and its backup) without the member and rotates the
team secret, so nothing they write is accepted any more (vault/store/trust.py). What they
already read stays read: every key in the vault was readable by them. This lists those keys
with what to run: `rotate --mint` makes a key they never saw where an admin key exists; an
admin key itself can only be replaced at OpenAI.
"""

from __future__ import annotations

from vault.errors import NoAdminKey
from vault.model.document import VaultDoc
from vault.model.entry import Entry, Kind, Status
from vault.model.records import Recipient
from vault.model.tuples import NamedTuple
from vault.rotation.mint_admin import admin_entry
from vault.store.keyvault import Keyvault
from vault.store.recipients import remove_recipient


class Exposed(NamedTuple):
    """Keys a removed member could read, and what to run about them."""

    member: Recipient
    keys: list[Entry]  # every key still in the vault that is not retired
    steps: list[str]  # commands or instructions, one per project or admin key


def remove_member(kv: Keyvault, name: str) -> Exposed:
    removed = remove_recipient(kv, name)
    return exposure(kv.read(), removed)


def exposure(doc: VaultDoc, member: Recipient) -> Exposed:
    keys = [e for e in doc.entries if e.status is not Status.RETIRED]
    steps = []
    for project in sorted({e.project for e in keys if e.kind is Kind.API}, key=lambda p: p or ""):
        steps.append(_project_step(doc, project))
    for admin in (e for e in keys if e.kind is Kind.ADMIN):
        steps.append(
            f"replace admin key {admin.name} at platform.openai.com (Organization → Admin"
            f" keys), then `keyvault edit {admin.name} --secret`"
        )
    return Exposed(member, keys, steps)


def _project_step(doc: VaultDoc, project: str | None) -> str:
    flag = f" --project {project}" if project else ""
    try:
        admin_entry(doc, project, None)
    except NoAdminKey:
        if any(e.kind is Kind.ADMIN and e.status is not Status.RETIRED for e in doc.entries):
            return f"keyvault rotate{flag} --mint --admin ADMIN_NAME   (several admin keys fit)"
        return (
            f"make a new key at platform.openai.com, then `keyvault add NAME{flag} --activate`"
            " and revoke the old ones there"
        )
    return f"keyvault rotate{flag} --mint   (a fresh key the removed member never saw)"
