"""The doctor's checks for a shared vault: this machine's trust pin, over-committed phones,
and the state of its git repository after a sync that could not finish."""

from __future__ import annotations

from vault.errors import KeyvaultError
from vault.model.document import VaultDoc
from vault.security.checks import Check, Level

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from vault.store.trust import Trust

_ABORT = {
    "a merge": "merge --abort",
    "a rebase": "rebase --abort",
    "a cherry-pick": "cherry-pick --abort",
}


def repository_checks(home: Path) -> list[Check]:
    """What stops or delays the next `keyvault sync`: a git operation left half done, a
    stale index.lock, commits made here and not pushed yet (as of the last fetch)."""
    from vault.store.repo import VaultRepo  # noqa: PLC0415 - git only for a team vault
    from vault.store.sync import REMOTE  # noqa: PLC0415

    repo = VaultRepo(home)
    try:
        busy = repo.busy()
        if busy is not None:
            fix = f"finish it, or undo it: git -C {home} {_ABORT[busy]}; then keyvault sync"
            return [
                Check("sync", Level.WARN, f"{busy} is in progress in the vault repository", fix)
            ]
        if (home / repo.text("rev-parse", "--git-path", "index.lock")).exists():
            message = "a git left .git/index.lock behind (or one is running now)"
            return [Check("sync", Level.WARN, message, "if no git runs, remove that file")]
        branch = repo.branch()
        upstream = repo.resolve(f"refs/remotes/{REMOTE}/{branch}")
        since = ["HEAD", f"^{upstream}"] if upstream else ["HEAD"]
        ahead = int(repo.text("rev-list", "--count", *since) or 0)
    except KeyvaultError as exc:
        return [Check("sync", Level.WARN, exc.message, exc.hint)]
    if ahead:
        message = f"{ahead} commit(s) made here are not shared yet"
        return [Check("sync", Level.WARN, message, "keyvault sync")]
    return [Check("sync", Level.OK, f"nothing here that {REMOTE}/{branch} lacks (as last fetched)")]


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
