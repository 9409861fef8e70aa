"""A team vault when things go wrong, through real git and real processes: a copy restored
on purpose, two syncs at once, a remote that does not answer or cannot be reached, a
repository config keyvault did not write. After each, every key either side had is still
reachable and the error says what to do."""

from __future__ import annotations

import subprocess
import sys
import time
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


def test_syncs_started_together_all_succeed(team: tuple[Member, Member, Path]) -> None:
    alice, bob, _ = team
    alice.add("from-alice")
    alice.ok("sync")
    bob.add("from-bob")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "vault", "sync"],
            env=bob.cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [(run.wait(timeout=120), run.stderr.read() if run.stderr else "") for run in runs]
    assert all(code == 0 for code, _ in results), results
    alice.ok("sync")
    assert names(alice) == names(bob) == {"from-alice", "from-bob"}


def test_sync_writes_no_git_config_when_nothing_changed(team: tuple[Member, Member, Path]) -> None:
    """A git that holds .git/config.lock (another sync, the user's `git config`) does not
    fail a sync that has nothing to set."""
    alice, _, _ = team
    alice.add("one")
    (alice.home / ".git" / "config.lock").write_text("")
    done = alice("sync")
    assert done.code == 0, done.err


def test_a_second_sync_waits_for_the_first(team: tuple[Member, Member, Path]) -> None:
    alice, _, _ = team
    alice.add("one")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(alice.home / ".git" / "keyvault-sync.lock")],
        stdout=subprocess.PIPE,
        env=alice.cli.env,
    )
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    started = time.monotonic()
    done = alice("sync")
    assert done.code == 0, done.err
    assert time.monotonic() - started >= 1.0  # it waited for the holder
    holder.wait(timeout=10)
    assert "+ one" in done.out


HOLD_LOCK = """
import sys, time
from pathlib import Path
from vault.store.files import locked
with locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(1.5)
"""


def test_a_repository_config_with_repeated_keyvault_settings_is_repaired(
    team: tuple[Member, Member, Path],
) -> None:
    alice, _, _ = team
    for _ in range(2):  # git config --add, twice: "cannot overwrite multiple values"
        alice.git("config", "--add", "merge.keyvault.driver", "false")
    alice.add("one")
    done = alice("sync")
    assert done.code == 0, done.err
    drivers = alice.git("config", "--get-all", "merge.keyvault.driver").out.splitlines()
    assert len(drivers) == 1 and "merge-driver" in drivers[0]
