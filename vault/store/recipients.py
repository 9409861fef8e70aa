"""Who can open the vault: the owner, CI identities, teammates.

Recipients are listed inside the encrypted document and the file is sealed to exactly that
list on every save, so adding one takes effect at once and removing one re-encrypts the vault
without it. Removal also rewrites `vault.age.bak`: a backup still sealed to a removed identity
would let it read the keys as they were at removal time.
"""

from __future__ import annotations

from vault import age
from vault.model.document import VaultDoc
from vault.model.records import Recipient
from vault.model.shapes import refuse_secret_shapes
from vault.model.validate import check_name
from vault.store.keyvault import Keyvault


def list_recipients(doc: VaultDoc) -> list[Recipient]:
    return list(doc.recipients)


def add_recipient(kv: Keyvault, name: str, public_key: str) -> Recipient:
    """Seal the vault to one more `age1…` public key."""
    check_name(name, "recipient name")
    refuse_secret_shapes(public_key, "recipient", cards=False)  # a secret identity pasted
    parsed = age.X25519Recipient.parse(public_key.strip()).to_string()
    now = kv.now_iso()
    recipient = Recipient(name, parsed, added_at=now)
    kv.transact(lambda doc: doc.add_recipient(recipient, at=now))
    return recipient


def remove_recipient(kv: Keyvault, name: str) -> Recipient:
    """Re-encrypt the vault (and its backup) without one recipient."""
    mine = kv.unlocker.recipient(kv.paths)
    now = kv.now_iso()
    return kv.transact(
        lambda doc: doc.remove_recipient(name, at=now, keep=mine, rand=kv.rand),
        backup_previous=False,
    )


def new_ci_identity(kv: Keyvault, name: str) -> tuple[Recipient, age.X25519Identity]:
    """Generate an identity for a CI job and add it as a recipient; the caller shows it once."""
    identity = age.X25519Identity.generate()
    recipient = add_recipient(kv, name, identity.recipient().to_string())
    return recipient, identity
