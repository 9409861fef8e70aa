"""Merging sealed versions of vault.age: open them, check them, merge, seal (docs/team.md).

Both ways of merging come here: git's merge driver (`keyvault merge-driver %O %A %B %P`, run
by a plain `git merge` or each step of `git pull --rebase`) and `keyvault sync`. Before
anything is merged, each side must be a member's version: it holds this machine's pinned
team secret and the common base's current one (so a file written with only the public keys,
or by a member removed since, is refused), and it is not older than the base (an old version
pushed again would otherwise delete everything added since). The result is sealed to the
merged members and passes the same checks on every member's machine.
"""

from __future__ import annotations

from pathlib import Path

from vault.errors import AuthError, KeyvaultError, MergeRefused, NoPassphraseSource
from vault.model.document import VaultDoc
from vault.model.merge import Merged, merge
from vault.model.team import secret_digest
from vault.store.files import read_file, write_file_atomic
from vault.store.keyvault import Keyvault

LOCKED_HINT = "run `keyvault unlock` and retry"


def open_version(kv: Keyvault, sealed: bytes, which: str) -> VaultDoc:
    """One version, decrypted with this machine's identity; MergeRefused names which."""
    try:
        return kv.open(sealed)
    except NoPassphraseSource:
        raise MergeRefused("the vault is locked", hint=LOCKED_HINT) from None
    except AuthError as exc:
        raise MergeRefused(
            f"{which} vault.age does not open with your identity ({exc.message})",
            hint="nothing changed here: a member removed you, or someone who is not a member"
            " wrote it; ask your team who pushed it (git log -- vault.age)",
        ) from None
    except KeyvaultError as exc:
        raise MergeRefused(f"{which} vault.age: {exc.message}", hint=exc.hint) from None


def check_side(kv: Keyvault, doc: VaultDoc, base: VaultDoc | None, which: str) -> None:
    """A member's version that continues `base` (see the module docstring)."""
    try:
        kv.trust.check_member(doc)
    except KeyvaultError as exc:
        raise MergeRefused(f"{which} {exc.message}", hint=exc.hint) from None
    if base is None:
        return
    if base.team is not None:
        digests = {secret_digest(s.key) for s in doc.team.secrets} if doc.team else set()
        if secret_digest(base.team.current.key) not in digests:
            raise MergeRefused(
                f"{which} vault.age was not written by a member: it lacks the team secret of"
                " the version both sides started from",
                hint="do not merge it: ask your team who pushed it",
            )
    if doc.generation < base.generation:
        raise MergeRefused(
            f"{which} vault.age is older than the version both sides started from"
            f" (generation {doc.generation} < {base.generation}): an old copy was pushed again",
            hint="do not merge it: it would undo every change since; ask your team",
        )


def merge_sealed(
    kv: Keyvault, base: bytes | None, ours: bytes, theirs: bytes, *, at: str
) -> tuple[bytes, Merged]:
    """The merged vault.age (sealed to the merged members) and what the merge resolved.
    A base this identity cannot open (it predates you) counts as no base."""
    mine = open_version(kv, ours, "your")
    other = open_version(kv, theirs, "the incoming")
    common = None
    if base:
        try:
            common = open_version(kv, base, "the common")
        except MergeRefused:
            common = None
    check_side(kv, mine, common, "your")
    check_side(kv, other, common, "the incoming")
    merged = merge(common, mine, other, at=at, rand=kv.rand, phone_slots=kv.config.phone_slots)
    return kv.seal(merged.doc), merged


def merge_files(kv: Keyvault, base: Path, ours: Path, theirs: Path, *, at: str) -> Merged:
    """git's merge driver: merge the three files and replace `ours` with the result. On any
    error `ours` is untouched, so git leaves its conflict state."""
    sealed, merged = merge_sealed(
        kv, read_file(base) or None, read_file(ours), read_file(theirs), at=at
    )
    write_file_atomic(ours, sealed)
    return merged
