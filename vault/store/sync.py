"""`keyvault sync`: commit this machine's changes, fetch, merge, push (docs/team.md).

    report = sync(kv, VaultRepo(home), at=now)

The network parts run outside the vault lock; everything that touches vault.age runs under
it, so no keyvault command changes the vault halfway through. vault.age is never merged by
git: `merge-tree` computes the merge of every other file, leaves vault.age conflicted (the
profile's driver is `exit 1`), and keyvault merges it in this process with the identity it
already holds (vault/store/merging.py), so cron with KEYVAULT_IDENTITY_FILE works as well
as a terminal. The work tree's vault.age is only ever replaced atomically (git itself
unlinks and rewrites files, which a concurrent `keyvault env` could see half-written).
Whatever comes in is checked first: a forged or rolled-back vault.age is refused, and
nothing changes.
"""

from __future__ import annotations

from vault.errors import (
    ForgedVault,
    GitError,
    KeyvaultError,
    MergeRefused,
    NotARecipient,
    SyncPending,
)
from vault.model.changes import describe_changes
from vault.model.document import VaultDoc
from vault.model.merge_records import Conflict
from vault.model.team import chain_digests, secret_digest
from vault.store.files import locked, read_file, write_file_atomic
from vault.store.keyvault import Keyvault
from vault.store.merging import merge_sealed
from vault.store.repo import NETWORK_TIMEOUT, VAULT, VaultRepo
from vault.store.trust import FORGED_HINT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

    from vault.export.targets import SyncOutcome

REMOTE: Final = "origin"
LINEAGE_DEPTH: Final = 100  # incoming versions checked for each other's team secrets
PUSH_ATTEMPTS: Final = 3  # someone pushed between our fetch and our push: fetch and merge again
RACE_WORDS: Final = ("(fetch first)", "(non-fast-forward)")  # git push's words for that race
FALLBACK_AUTHOR: Final = ("user.name=keyvault", "user.email=keyvault@localhost")


class SyncReport:
    """What a sync did, for the CLI to print (lines name entries and fields, never values)."""

    def __init__(self, remote: str, branch: str) -> None:
        self.remote, self.branch = remote, branch
        self.committed: list[str] = []  # this machine's changes, committed now
        self.incoming: list[str] = []
        self.outgoing: list[str] = []
        self.conflicts: list[Conflict] = []
        self.pushed = False
        self.member = True  # False: this identity cannot open the vault yet (a new clone)
        self.unreachable = ""  # why the last fetch failed
        self.synced: list[SyncOutcome] = []

    @property
    def upstream(self) -> str:
        return f"{self.remote}/{self.branch}"


def sync(kv: Keyvault, repo: VaultRepo, *, at: str, offline: bool = False) -> SyncReport:
    """Commit, fetch, merge, push. SyncPending when the remote could not be reached (the
    changes are committed here); GitError or MergeRefused when nothing could be merged."""
    _refuse_states(repo)
    report = SyncReport(REMOTE, repo.branch())
    repo.install()
    has_remote = REMOTE in repo.text("remote").split()
    for attempt in range(PUSH_ATTEMPTS):
        reached = not offline and has_remote and _fetch(repo, report)
        _commit_and_merge(kv, repo, report, at=at)
        if reached:
            report.outgoing = _outgoing(kv, repo, report)
        if not reached or _push(repo, report) or attempt == PUSH_ATTEMPTS - 1:
            break
    if not offline and not report.pushed and _ahead(repo, report):
        why = "no remote named origin"
        if has_remote:
            why = f"{report.remote} not reached ({report.unreachable or 'push failed'})"
        raise SyncPending(
            f"{why}: your changes are committed here and go out with the next sync",
            hint=None if has_remote else "add one: git -C HOME remote add origin URL",
            details=tuple(_summary(report)),
        )
    return report


def _refuse_states(repo: VaultRepo) -> None:
    if not repo.is_repository():
        raise GitError(
            f"{repo.home} is not a team vault (no git repository)",
            hint="make it one: keyvault team init --remote URL",
        )
    busy = repo.busy()
    if busy is not None:
        raise GitError(
            f"{busy} is in progress in the vault repository",
            hint=f"finish or abort it first (git -C {repo.home} status)",
        )


def _fetch(repo: VaultRepo, report: SyncReport) -> bool:
    done = repo.run("fetch", "-q", report.remote, timeout=NETWORK_TIMEOUT, check=False)
    report.unreachable = repo.why(done) if done.returncode != 0 else ""
    return done.returncode == 0


def _summary(report: SyncReport) -> list[str]:
    return [f"committed: {line}" for line in report.committed]


# --- under the lock -----------------------------------------------------------------------


def _commit_and_merge(kv: Keyvault, repo: VaultRepo, report: SyncReport, *, at: str) -> None:
    upstream = repo.resolve(f"refs/remotes/{report.upstream}")
    with locked(kv.paths.lock, timeout=kv.lock_timeout):
        repo.refuse_secrets(upstream)
        before = _read_member(kv, report)
        _commit_local(kv, repo, report, before)
        head = repo.head()
        if upstream is None or head == upstream or (head and repo.is_ancestor(upstream, head)):
            return
        if report.member:
            _check_lineage(kv, repo, head, upstream)
        if head is None or repo.is_ancestor(head, upstream):
            _install(kv, repo, upstream, head, verify=report.member)
        else:
            commit, merged = _merge_commit(kv, repo, head, upstream, report, at=at)
            _install(kv, repo, commit, head, merged=merged)
        after = _read_member(kv, report)
        if after is not None:
            report.incoming += describe_changes(before, after)
            if before is not None:
                report.synced = kv.follow_exports(before, after)


def _check_lineage(kv: Keyvault, repo: VaultRepo, head: str | None, upstream: str) -> None:
    """Every version that came in holds the team secret of every version before it (chains
    only grow). So a machine that missed a member's removal still refuses a forgery the
    removed member pushed after it: the forgery lacks the secret the removal added."""
    incoming = _doc_at(kv, repo, upstream)
    if incoming is None or incoming.team is None:
        return
    held = set(chain_digests(incoming.team))
    since = [f"^{head}"] if head else []
    revisions = repo.text("rev-list", f"--max-count={LINEAGE_DEPTH}", upstream, *since, "--", VAULT)
    for revision in revisions.split()[1:]:
        version = _doc_at(kv, repo, revision)
        team = version.team if version is not None else None
        if team is not None and secret_digest(team.current.key) not in held:
            raise ForgedVault(
                f"the incoming vault.age was not written by a member: it lacks the team"
                f" secret of an earlier version ({revision[:12]}), as a member removed"
                " since would write it",
                hint=FORGED_HINT,
            )


def _read_member(kv: Keyvault, report: SyncReport) -> VaultDoc | None:
    """The local vault, checked and pinned; None for a clone not yet let in."""
    if not kv.paths.vault.exists():
        return None
    try:
        doc = kv.read()
    except NotARecipient:  # a new clone waiting to be added (locked: exit 3, as anywhere)
        report.member = False
        return None
    report.member = True
    return doc


def _commit_local(
    kv: Keyvault, repo: VaultRepo, report: SyncReport, before: VaultDoc | None
) -> None:
    changed = repo.changed()
    if not changed:
        return
    if VAULT in changed and before is None:
        raise GitError("vault.age changed here but does not open with your identity")
    previous = _doc_at(kv, repo, "HEAD") if VAULT in changed else None
    repo.run("add", "--", *changed)
    generation = f"generation {before.generation}" if before is not None else "setup"
    message = f"keyvault: {generation}"
    repo.run("commit", "-q", "-m", message, "--", *changed, config=author(repo))
    if before is not None and VAULT in changed:
        report.committed = describe_changes(previous, before) or ["vault.age re-sealed"]
    else:
        report.committed = [f"updated {', '.join(changed)}"]


def author(repo: VaultRepo) -> tuple[str, ...]:
    """Commits need an author; a server running sync from cron may have none configured."""
    known = repo.run("config", "--get", "user.email", check=False).returncode == 0
    return () if known else FALLBACK_AUTHOR


def _doc_at(kv: Keyvault, repo: VaultRepo, rev: str) -> VaultDoc | None:
    oid = repo.blob_id(rev)
    if oid is None:
        return None
    try:
        return kv.open(repo.blob(oid))
    except KeyvaultError:
        return None


def _merge_commit(
    kv: Keyvault, repo: VaultRepo, head: str, upstream: str, report: SyncReport, *, at: str
) -> tuple[str, VaultDoc | None]:
    """A merge commit of `head` and `upstream` (nothing in the work tree changes yet)."""
    tree, stages = repo.merge_tree(head, upstream)
    others = sorted({path for path in stages if path != VAULT})
    if others:
        raise GitError(
            f"both sides changed {', '.join(others)} differently: keyvault merges only vault.age",
            hint=f"merge it by hand: git -C {repo.home} merge {report.upstream}",
        )
    merged_doc = None
    if VAULT in stages:
        if not report.member:
            raise MergeRefused("you changed vault.age without being able to open it")
        side = stages[VAULT]
        if 2 not in side or 3 not in side:
            raise MergeRefused(
                "one side deletes vault.age: refusing to merge that",
                hint=f"restore it in {report.upstream} (git revert), then sync again",
            )
        base = repo.blob(side[1]) if 1 in side else None
        sealed, merged = merge_sealed(kv, base, repo.blob(side[2]), repo.blob(side[3]), at=at)
        oid = repo.run("hash-object", "-w", "--stdin", stdin=sealed).stdout.decode().strip()
        tree = repo.replace_in_tree(tree, VAULT, oid)
        report.conflicts += merged.conflicts
        merged_doc = merged.doc
    message = f"keyvault: merge {report.upstream}"
    commit = repo.text(
        "commit-tree", tree, "-p", head, "-p", upstream, "-m", message, config=author(repo)
    )
    return commit, merged_doc


def _install(
    kv: Keyvault,
    repo: VaultRepo,
    commit: str,
    head: str | None,
    *,
    verify: bool = True,
    merged: VaultDoc | None = None,
) -> None:
    """Make `commit` this repository's HEAD, index and work tree; vault.age is checked
    (unless it is this process's own merge) and replaced atomically, before git moves."""
    oid = repo.blob_id(commit)
    if oid is None:
        raise GitError(f"{commit[:12]} holds no vault.age: refusing to take it")
    if oid != (repo.blob_id(head) if head else None):
        data = repo.blob(oid)
        if verify and merged is None:
            kv.trust.check(_open_incoming(kv, data))  # ForgedVault, RolledBack: no change
        previous = read_file(kv.paths.vault) if kv.paths.vault.exists() else None
        write_file_atomic(kv.paths.vault, data, backup=kv.paths.backup, ops=kv.ops)
        repo.run("update-index", "--add", "--cacheinfo", f"100644,{oid},{VAULT}")
        try:
            repo.run("reset", "-q", "--merge", commit)
        except GitError:
            if previous is not None:
                write_file_atomic(kv.paths.vault, previous, ops=kv.ops)
            repo.run("reset", "-q", "--mixed", "HEAD", "--", VAULT, check=False)
            raise
        return
    repo.run("reset", "-q", "--merge", commit)


def _open_incoming(kv: Keyvault, data: bytes) -> VaultDoc:
    try:
        return kv.open(data)
    except NotARecipient:
        raise MergeRefused(
            "the incoming vault.age is not sealed to your identity: a member removed you from"
            " the team",
            hint="nothing changed here; ask a member if that is a mistake",
        ) from None


# --- pushing ------------------------------------------------------------------------------


def _ahead(repo: VaultRepo, report: SyncReport) -> bool:
    upstream = repo.resolve(f"refs/remotes/{report.upstream}")
    since = ["HEAD", f"^{upstream}"] if upstream else ["HEAD"]
    return bool(repo.text("rev-list", "--count", *since) not in ("", "0"))


def _outgoing(kv: Keyvault, repo: VaultRepo, report: SyncReport) -> list[str]:
    """What the push will bring the remote: its vault.age against ours."""
    if not report.member or not _ahead(repo, report):
        return []
    upstream = repo.resolve(f"refs/remotes/{report.upstream}")
    mine = _doc_at(kv, repo, "HEAD")
    if mine is None:
        return []
    theirs = _doc_at(kv, repo, upstream) if upstream else None
    return describe_changes(theirs, mine)


def _push(repo: VaultRepo, report: SyncReport) -> bool:
    """Push if there is something to push; False when the remote moved meanwhile."""
    if not _ahead(repo, report):
        report.pushed = False
        return True
    target = f"HEAD:refs/heads/{report.branch}"
    done = repo.run("push", "-q", "-u", report.remote, target, timeout=NETWORK_TIMEOUT, check=False)
    if done.returncode == 0:
        report.pushed = True
        return True
    why = repo.why(done)
    if any(word in done.stderr.decode("utf-8", "replace") for word in RACE_WORDS):
        return False  # someone pushed after our fetch: fetch, merge and push again
    raise SyncPending(
        f"could not push to {report.remote} ({why}): your changes are committed here",
        details=tuple(_summary(report)),
    )
