"""Issue 15 through real git and real processes: members sharing one bare repository on disk.

Concurrent changes on two sides merge without a manual step and every member ends with the
same document; `git pull --rebase` runs the merge driver for each commit; a removed member
can neither read new versions nor push one that is accepted; a file written with only the
public keys, and an old version pushed again, are refused; identity.age never leaves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import PASSPHRASE, make_key
from tests.team import Member, bare_repository, found_team, needs_git
from vault import age
from vault.errors import NoMatchingIdentity
from vault.model import codec

pytestmark = [needs_git, pytest.mark.slow]


@pytest.fixture
def team(tmp_path: Path, runtime_dir: Path) -> tuple[Member, Member, Path]:
    bare = bare_repository(tmp_path)
    alice, bob = found_team(tmp_path, runtime_dir, bare)
    return alice, bob, bare


def test_three_members_change_the_same_things_and_end_with_one_document(
    team: tuple[Member, Member, Path], tmp_path: Path
) -> None:
    alice, bob, bare = team
    ci_secret = alice.ok("recipients", "new-ci", "ci").out.strip()
    alice.add("main-1", "--project", "work", "--activate")
    alice.add("spare-1", "--project", "work")
    alice.add("old-1", "--project", "work")
    alice.ok("sync")
    bob.ok("sync")

    alice.add("a-new", "--project", "work")
    alice.ok("edit", "main-1", "--note", "from alice")
    alice.ok("rotate", "--project", "work", "--to", "spare-1", "--no-check")
    alice.ok("rm", "old-1", "--yes")
    bob.add("b-new", "--project", "work")
    bob.ok("edit", "main-1", "--note", "from bob")
    bob.ok("edit", "old-1", "--note", "still in use")
    time.sleep(1.1)  # stored times have whole seconds: bob's rotation is the later one
    bob.ok("rotate", "--project", "work", "--to", "b-new", "--no-check")

    alice.ok("sync")
    merged = bob.ok("sync")
    assert "conflict(s) resolved" in merged.out
    alice.ok("sync")
    assert alice.document() == bob.document() and alice.head() == bob.head()
    doc = alice.doc()
    entries = {e.name: e for e in doc.entries}
    assert set(entries) == {"main-1", "spare-1", "old-1", "a-new", "b-new"}
    assert entries["main-1"].note == "from bob"  # the later edit
    assert entries["old-1"].note == "still in use"  # removed on one side, edited on the other
    assert [n for n, e in entries.items() if e.status.value == "active"] == ["b-new"]
    doc.check_invariants()

    # the CI member reads the shared vault with a plain clone and its own identity
    ci_home = tmp_path / "ci"
    subprocess.run(["git", "clone", "-q", str(bare), str(ci_home)], check=True)
    pin = next(ln.split()[1] for ln in alice.ok("trust").out.splitlines() if ln.startswith("pin"))
    ci_env = {
        "KEYVAULT_HOME": str(ci_home),
        "KEYVAULT_IDENTITY": ci_secret,
        "KEYVAULT_PASSPHRASE": "",
    }
    ci_env["KEYVAULT_TEAM_PIN"] = pin
    exported = alice("env", "--project", "work", "--format", "json", env=ci_env)
    assert exported.code == 0, exported.err
    assert json.loads(exported.out)["OPENAI_API_KEY"] == entries["b-new"].secret.reveal()


def test_git_pull_rebase_runs_the_driver_for_every_commit(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    with_key = {"KEYVAULT_PASSPHRASE": PASSPHRASE}
    for number in range(1, 4):
        alice.add(f"a{number}", "--project", "work")
        alice.git("commit", "-qam", f"alice {number}")
        bob.add(f"b{number}", "--project", "work")
        bob.git("commit", "-qam", f"bob {number}")
    bob.git("push", "-q", "origin", "main")
    pulled = alice.git("pull", "--rebase", "origin", "main", env=with_key)
    assert pulled.err.count("keyvault: merged vault.age") == 3, pulled.err
    alice.git("push", "-q", "origin", "main")
    bob.git("pull", "-q", "--rebase", "origin", "main", env=with_key)
    assert alice.document() == bob.document()
    assert {e.name for e in alice.doc().entries} == {f"{s}{n}" for s in "ab" for n in (1, 2, 3)}
    log = alice.git("log", "--oneline").out.splitlines()
    assert len([line for line in log if "alice" in line or "bob" in line]) == 6
    assert "Merge" not in alice.git("log", "-1").out  # a linear history, as rebase makes it


def test_a_locked_driver_leaves_gits_conflict_and_unlock_then_retry_works(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    alice.add("a1")
    alice.git("commit", "-qam", "alice")
    bob.add("b1")
    bob.ok("sync")
    before = (alice.home / "vault.age").read_bytes()
    locked = alice.git("pull", "--no-rebase", "origin", "main", check=False)
    assert locked.code != 0
    assert "keyvault: error: cannot merge vault.age: the vault is locked" in locked.err
    assert "keyvault unlock" in locked.err
    assert "U" in alice.git("status", "--porcelain").out.split("vault.age")[0]  # unmerged
    assert (alice.home / "vault.age").read_bytes() == before  # git kept ours, untouched
    alice.git("merge", "--abort")
    alice.ok("unlock", "--ttl", "5m")
    try:
        alice.git("pull", "-q", "--no-rebase", "origin", "main")  # the driver asks the session
    finally:
        alice.ok("lock")
    assert {"a1", "b1"} <= {e.name for e in alice.doc().entries}


def test_a_removed_member_cannot_read_new_versions_nor_push_an_accepted_one(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    alice.add("main-1", "--project", "work", "--activate")
    alice.ok("sync")
    bob.ok("sync")
    old_copy = (bob.home / "vault.age").read_bytes()
    removed = alice.ok("recipients", "rm", "bob")
    assert "main-1" in removed.out and "keyvault rotate" not in removed.out  # no admin key
    assert "platform.openai.com" in removed.out
    alice.add("after-removal", "--project", "work")
    alice.ok("sync")

    refused = bob("sync")
    assert refused.code != 0 and "removed you" in refused.err, refused.err
    bob_identity = bob.keyvault().unlocker.identity(bob.keyvault().paths)
    with pytest.raises(NoMatchingIdentity):
        age.decrypt(_blob(bob, "origin/main"), [bob_identity])  # fetched, unreadable

    # bob forges from what he could read, sealed to everyone's public keys, and pushes it
    plain = json.loads(codec.dumps(codec.loads(age.decrypt(old_copy, [bob_identity]))))
    plain["entries"][0]["base_url"] = "https://attacker.example/v1"
    plain["generation"] += 100
    keys = [age.X25519Recipient.parse(r["recipient"]) for r in plain["recipients"]]
    _push_file(bob, age.encrypt(json.dumps(plain).encode(), keys), "bob's forgery")
    head, vault = alice.head(), (alice.home / "vault.age").read_bytes()
    sync = alice("sync")
    assert sync.code == 4, sync.err
    assert "not written by a member" in sync.err
    assert (alice.head(), (alice.home / "vault.age").read_bytes()) == (head, vault)


def _blob(member: Member, rev: str) -> bytes:
    done = subprocess.run(
        ["git", "-C", str(member.home), "cat-file", "blob", f"{rev}:vault.age"],
        capture_output=True,
        check=True,
    )
    return done.stdout


def _push_file(member: Member, data: bytes, message: str) -> None:
    """`member` pushes vault.age = `data` on top of the remote's branch, with plain git."""
    member.git("fetch", "-q", "origin")
    member.git("reset", "-q", "--hard", "origin/main")
    (member.home / "vault.age").write_bytes(data)
    member.git("commit", "-qam", message)
    member.git("push", "-q", "origin", "HEAD:main")


def test_a_file_sealed_with_only_the_public_keys_is_refused_by_sync(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    members = [{"name": r.name, "recipient": r.recipient} for r in alice.doc().recipients]
    outsider = {
        "format": "keyvault/1",
        "generation": 999,
        "recipients": members,
        "entries": [{"id": "e" * 16, "name": "main", "secret": make_key(), "status": "active"}],
    }
    keys = [age.X25519Recipient.parse(r["recipient"]) for r in members]
    _push_file(bob, age.encrypt(json.dumps(outsider).encode(), keys), "outsider")
    alice.add("local-change")  # a merge this time, not a fast-forward
    refused = alice("sync")
    assert refused.code != 0 and "not written by a member" in refused.err, refused.err
    assert "local-change" in {e.name for e in alice.doc().entries}


def test_an_old_version_pushed_again_is_refused(team: tuple[Member, Member, Path]) -> None:
    alice, bob, _ = team
    alice.add("one")
    alice.ok("sync")
    old = (alice.home / "vault.age").read_bytes()
    alice.add("two")
    alice.ok("sync")
    bob.ok("sync")
    _push_file(bob, old, "revert to an old vault")
    fast_forward = alice("sync")
    assert fast_forward.code == 4 and "older than the one this machine last saw" in fast_forward.err
    alice.add("three")
    merging = alice("sync")
    assert merging.code != 0 and "older than the version both sides started from" in merging.err
    assert {"one", "two", "three"} <= {e.name for e in alice.doc().entries}


def test_identity_age_never_leaves(team: tuple[Member, Member, Path]) -> None:
    alice, _, bare = team
    alice.git("add", "-f", "identity.age")
    alice.git("commit", "-qm", "oops")
    refused = alice("sync")
    assert refused.code == 1 and "identity.age" in refused.err
    log = subprocess.run(
        ["git", "-C", str(bare), "log", "--all", "--oneline", "--", "identity.age"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert log.stdout == ""


def test_offline_commits_here_and_pushes_later(team: tuple[Member, Member, Path]) -> None:
    alice, bob, bare = team
    away = bare.with_name("away.git")
    bare.rename(away)
    alice.add("on-a-plane")
    pending = alice("sync")
    assert pending.code == 1 and "committed here" in pending.err, pending.err
    assert alice("sync", "--offline").code == 0
    away.rename(bare)
    pushed = alice.ok("sync")
    assert "out: pushed" in pushed.out and "+ on-a-plane" in pushed.out
    assert "+ on-a-plane" in bob.ok("sync").out


def test_sync_from_cron_while_locked_fails_in_one_line(team: tuple[Member, Member, Path]) -> None:
    alice, _, _ = team
    alice.add("x")
    locked = alice("sync", env={"KEYVAULT_PASSPHRASE": ""})
    assert locked.code == 3
    assert locked.err.startswith("keyvault: error: the vault is locked and there is no terminal")


def test_sync_outside_a_team_vault_says_how_to_make_one(tmp_path: Path, runtime_dir: Path) -> None:
    solo = Member(tmp_path, "solo", runtime_dir)
    solo.ok("init", "--work-factor", "10")
    result = solo("sync")
    assert result.code == 1 and "not a team vault" in result.err
    assert "keyvault team init" in result.err


def test_a_machine_that_missed_the_removal_still_refuses_the_removed_members_forgery(
    team: tuple[Member, Member, Path], tmp_path: Path, runtime_dir: Path
) -> None:
    """carol last synced before bob was removed, so she pins a secret bob knows; the version
    that removed him is in what she fetches, and bob's forgery lacks its secret."""
    alice, bob, bare = team
    carol = Member(tmp_path, "carol", runtime_dir)
    joined = carol.ok("clone", str(bare), "--work-factor", "10")
    carol_key = next(w for w in joined.out.split() if w.startswith("age1"))
    alice.ok("recipients", "add", "carol", carol_key)
    alice.add("main-1", "--project", "work", "--activate")
    alice.ok("sync")
    carol.ok("sync")
    bob.ok("sync")
    old_copy = (bob.home / "vault.age").read_bytes()
    alice.ok("recipients", "rm", "bob")
    alice.ok("sync")  # carol does not sync now

    bob_identity = bob.keyvault().unlocker.identity(bob.keyvault().paths)
    plain = json.loads(codec.dumps(codec.loads(age.decrypt(old_copy, [bob_identity]))))
    plain["entries"][0]["base_url"] = "https://attacker.example/v1"
    plain["generation"] += 100
    plain["recipients"] = [r for r in plain["recipients"] if r["name"] != "bob"]
    keys = [age.X25519Recipient.parse(r["recipient"]) for r in plain["recipients"]]
    _push_file(bob, age.encrypt(json.dumps(plain).encode(), keys), "after the removal")

    refused = carol("sync")
    assert refused.code == 4, refused.err
    assert "lacks the team secret of an earlier version" in refused.err
    assert "attacker" not in json.dumps([e.base_url for e in carol.doc().entries])


def test_a_push_that_loses_the_race_fetches_merges_and_pushes_again(
    team: tuple[Member, Member, Path], tmp_path: Path
) -> None:
    """bob pushes between alice's fetch and alice's push: a git on alice's PATH pushes bob's
    waiting commit just before alice's first push."""
    alice, bob, _ = team
    bob.add("bob-was-faster")
    bob.git("commit", "-qam", "bob")
    wrapper = tmp_path / "bin" / "git"
    wrapper.parent.mkdir()
    marker = tmp_path / "raced"
    real = shutil.which("git")
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" push "*) if [ ! -e {marker} ]; then touch {marker};'
        f" {real} -C {bob.home} push -q origin main; fi;; esac\n"
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    alice.add("alice-key")
    result = alice("sync", env={"PATH": f"{wrapper.parent}:{os.environ['PATH']}"})
    assert result.code == 0, result.err
    assert marker.exists() and "+ bob-was-faster" in result.out
    assert {"alice-key", "bob-was-faster"} <= {e.name for e in bob.doc().entries} | {
        e.name for e in alice.doc().entries
    }
    bob.ok("sync")
    assert alice.document() == bob.document()


def test_a_push_that_deletes_vault_age_is_refused(team: tuple[Member, Member, Path]) -> None:
    alice, bob, _ = team
    bob.git("rm", "-q", "vault.age")
    bob.git("commit", "-qm", "gone")
    bob.git("push", "-q", "origin", "main")
    fast_forward = alice("sync")
    assert fast_forward.code == 1 and "holds no vault.age" in fast_forward.err
    alice.add("mine")
    merging = alice("sync")
    assert merging.code == 1 and "deletes vault.age" in merging.err
    assert "mine" in {e.name for e in alice.doc().entries}


def test_clone_finds_the_vault_when_the_remote_head_names_another_branch(
    tmp_path: Path, runtime_dir: Path
) -> None:
    """`git init --bare` on a server points HEAD at master; alice pushes main. A clone of an
    empty repository fails, leaves nothing behind, and works once the vault is there."""
    bare = tmp_path / "server.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "master", str(bare)], check=True)
    alice, bob = Member(tmp_path, "alice", runtime_dir), Member(tmp_path, "bob", runtime_dir)

    empty = bob("clone", str(bare), "--work-factor", "10")
    assert empty.code != 0 and "is empty: there is no vault to join yet" in empty.err
    assert not bob.home.exists(), "a failed clone leaves no folder that blocks the retry"

    alice.ok("init", "--work-factor", "10", "--git", "--remote", str(bare))
    alice.add("main-1", "--project", "work", "--activate")
    alice.ok("sync")
    joined = bob.ok("clone", str(bare), "--work-factor", "10")
    bob.public_key = next(w for w in joined.out.split() if w.startswith("age1"))
    assert bob.git("symbolic-ref", "--short", "HEAD").out.strip() == "main"
    alice.ok("recipients", "add", "bob", bob.public_key)
    alice.ok("sync")
    assert "+ main-1 (work)" in bob.ok("sync").out
    bob.add("bob-1", "--project", "work")
    bob.ok("sync")
    alice.ok("sync")
    assert alice.document() == bob.document()
