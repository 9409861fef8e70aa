"""The doctor's checks for a shared vault: this machine's trust pin, over-committed phones."""

from __future__ import annotations

from vault.errors import KeyvaultError
from vault.model.document import VaultDoc
from vault.security.checks import Check, Level

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vault.store.trust import Trust


def trust_checks(doc: VaultDoc, trust: Trust) -> list[Check]:
    """Whether this machine accepts vault.age (vault/store/trust.py), and keeps its pin."""
    try:
        trust.check(doc)
    except KeyvaultError as exc:
        return [Check("trust", Level.FAIL, exc.message, exc.hint)]
    if doc.team is None:
        return [Check("trust", Level.OK, "no team record yet (the next change adds one)")]
    trust.remember(doc)
    pinned = trust.pinned()
    if pinned is None:
        message = f"cannot keep a trust pin in {trust.path.parent}"
        return [Check("trust", Level.WARN, message, "make that folder writable (XDG_STATE_HOME)")]
    message = f"pinned: vault {pinned.vault_id}, generation {pinned.generation}"
    return [Check("trust", Level.OK, message)]


def phone_checks(doc: VaultDoc, slots: int) -> list[Check]:
    """Phones that verified more keys than they may: two machines used the last slot."""
    found = []
    for usage in doc.phone_usage(slots):
        if usage.over:
            names = ", ".join((*usage.entries, *usage.removed))
            message = (
                f"phone {usage.phone} verified {usage.used} keys, {usage.over} over its"
                f" {usage.slots} slots ({names}): two machines used its last slot"
            )
            found.append(Check("phones", Level.WARN, message, "verify new keys with another phone"))
    return found
