"""Who can open the vault: the owner, CI identities, teammates.

Recipients are listed inside the encrypted document and the file is sealed to exactly that
list on every save, so adding one takes effect at once and removing one re-encrypts the vault
without it. Removal also rewrites `vault.age.bak`: a backup still sealed to a removed identity
would let it read the keys as they were at removal time.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault import age
from vault.errors import DuplicateName, EntryNotFound, PolicyViolation
from vault.model.document import VaultDoc
from vault.model.shapes import refuse_secret_shapes
from vault.model.validate import check_name
from vault.store.keyvault import Keyvault


@dataclass(frozen=True)
class Recipient:
    name: str
    recipient: str


def list_recipients(doc: VaultDoc) -> list[Recipient]:
    return [Recipient(r.get("name", "?"), r.get("recipient", "?")) for r in doc.recipients]


def add_recipient(kv: Keyvault, name: str, public_key: str) -> Recipient:
    """Seal the vault to one more `age1…` public key."""
    check_name(name, "recipient name")
    refuse_secret_shapes(public_key, "recipient", cards=False)  # a secret identity pasted
    parsed = age.X25519Recipient.parse(public_key.strip()).to_string()
    now = kv.now_iso()

    def change(doc: VaultDoc) -> None:
        for existing in doc.recipients:
            if existing.get("name") == name:
                raise DuplicateName(f"a recipient named {name!r} already exists")
            if existing.get("recipient") == parsed:
                raise DuplicateName(
                    f"that public key is already recipient {existing.get('name')!r}"
                )
        doc.recipients.append({"name": name, "recipient": parsed, "added_at": now})
        doc.record({"at": now, "action": "recipient-add", "name": name, "recipient": parsed})

    kv.transact(change)
    return Recipient(name, parsed)


def remove_recipient(kv: Keyvault, name: str) -> Recipient:
    """Re-encrypt the vault (and its backup) without one recipient."""
    mine = kv.unlocker.recipient(kv.paths)
    now = kv.now_iso()

    def change(doc: VaultDoc) -> Recipient:
        match = next((r for r in doc.recipients if r.get("name") == name), None)
        if match is None:
            raise EntryNotFound(
                f"no recipient named {name!r}", hint="see `keyvault recipients list`"
            )
        if match.get("recipient") == mine:
            raise PolicyViolation(
                f"{name!r} is the identity you unlocked with; removing it would lock you out"
            )
        doc.recipients.remove(match)
        doc.record(
            {"at": now, "action": "recipient-rm", "name": name, "recipient": match.get("recipient")}
        )
        return Recipient(name, match.get("recipient", "?"))

    return kv.transact(change, backup_previous=False)


def new_ci_identity(kv: Keyvault, name: str) -> tuple[Recipient, age.X25519Identity]:
    """Generate an identity for a CI job and add it as a recipient; the caller shows it once."""
    identity = age.X25519Identity.generate()
    recipient = add_recipient(kv, name, identity.recipient().to_string())
    return recipient, identity
