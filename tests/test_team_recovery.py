"""A team vault when things go wrong, through real git and real processes: a copy restored
on purpose, two syncs at once, a remote that does not answer or cannot be reached, a
repository config keyvault did not write. After each, every key either side had is still
reachable and the error says what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.team import Member, bare_repository, found_team, needs_git

pytestmark = [needs_git, pytest.mark.slow]


@pytest.fixture
def team(tmp_path: Path, runtime_dir: Path) -> tuple[Member, Member, Path]:
    bare = bare_repository(tmp_path)
    alice, bob = found_team(tmp_path, runtime_dir, bare)
    return alice, bob, bare


def names(member: Member) -> set[str]:
    return {entry.name for entry in member.doc().entries}


def test_a_copy_restored_on_purpose_reaches_every_member(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    for name in ("one", "two", "three"):
        alice.add(name)
        alice.ok("sync")
    bob.ok("sync")
    alice.git("checkout", "HEAD~2", "--", "vault.age")  # back to the vault with "one" only
    assert alice("list").code == 4
    accepted = alice.ok("trust", "--accept-rollback")
    assert "it is now generation" in accepted.out
    assert names(alice) == {"one"}
    alice.ok("sync")
    taken = bob("sync")  # an ordinary change by a member, not a rollback, on bob's machine
    assert taken.code == 0, taken.err
    assert "- two" in taken.out and "- three" in taken.out
    assert names(bob) == {"one"}
    bob.add("four")  # and the team goes on from there
    bob.ok("sync")
    alice.ok("sync")
    assert names(alice) == {"one", "four"}


def test_an_old_copy_pushed_with_plain_git_is_refused_with_what_to_do(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    alice.add("one")
    alice.ok("sync")
    alice.add("two")
    alice.ok("sync")
    bob.ok("sync")
    before = (bob.home / "vault.age").read_bytes()
    alice.git("revert", "--no-edit", "HEAD")  # plain git: the old bytes, the old generation
    alice.git("push", "-q", "origin", "HEAD:main")
    refused = bob("sync")
    assert refused.code == 4, refused.err
    assert "the incoming vault.age is older than the one this machine last saw" in refused.err
    assert "nothing changed here" in refused.err and "--accept-rollback" in refused.err
    assert (bob.home / "vault.age").read_bytes() == before
    assert alice("list").code == 4  # alice's own keyvault refuses it too, until she says so
    alice.ok("trust", "--accept-rollback")
    alice.ok("sync")
    assert bob("sync").code == 0
    assert names(bob) == {"one"}


def git_out(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout
