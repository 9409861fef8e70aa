"""A team vault when things go wrong, through real git and real processes: a copy restored
on purpose, two syncs at once, a remote that does not answer or cannot be reached, a
repository config keyvault did not write. After each, every key either side had is still
reachable and the error says what to do."""

from __future__ import annotations

import shutil
import signal
import socket
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


SHORT_TIMEOUT = """
import sys
from vault.store import repo, sync
repo.NETWORK_TIMEOUT = sync.NETWORK_TIMEOUT = 2.0
from vault.cli.main import main
main(sys.argv[1:])
"""


@pytest.mark.skipif(
    shutil.which("ssh") is None or not Path("/proc/self").exists(), reason="needs ssh and /proc"
)
def test_a_remote_that_never_answers_times_out_in_one_line_and_leaves_no_ssh(
    team: tuple[Member, Member, Path],
) -> None:
    alice, _, _ = team
    with socket.socket() as server:  # accepts, then never says a word (not even ssh's banner)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        alice.git("remote", "set-url", "origin", f"ssh://git@127.0.0.1:{port}/keys.git")
        alice.add("on-a-silent-network")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", SHORT_TIMEOUT, "sync"],
            env=alice.cli.env,
            capture_output=True,
            text=True,
            timeout=60,
            start_new_session=True,  # as from cron: no terminal
            check=False,
        )
        assert time.monotonic() - started < 30
        assert done.returncode == 1, done.stderr
        assert "origin not reached (fatal: no answer within 2 s)" in done.stderr
        assert "your changes are committed here" in done.stderr
        assert _processes_naming(f"-p {port}") == []  # the ssh git started was killed too


@pytest.mark.skipif(
    shutil.which("ssh") is None or not Path("/proc/self").exists(), reason="needs ssh and /proc"
)
def test_ctrl_c_during_a_fetch_leaves_no_git_nor_ssh_behind(
    team: tuple[Member, Member, Path],
) -> None:
    alice, _, _ = team
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        alice.git("remote", "set-url", "origin", f"ssh://git@127.0.0.1:{port}/keys.git")
        running = subprocess.Popen(
            [sys.executable, "-m", "vault", "sync"],
            env=alice.cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while not _processes_naming(f"-p {port}") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_naming(f"-p {port}"), "ssh never started"
        running.send_signal(signal.SIGINT)
        _, err = running.communicate(timeout=20)
        assert running.returncode != 0 and b"interrupted" in err
        time.sleep(0.2)
        assert _processes_naming(f"-p {port}") == []
        assert alice.ok("sync", "--offline").code == 0  # no lock or state left behind


def _processes_naming(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in words and "ssh" in words:
            found.append(words)
    return found


def test_init_with_an_unreachable_remote_says_how_to_finish(
    tmp_path: Path, runtime_dir: Path
) -> None:
    alice = Member(tmp_path, "alice", runtime_dir)
    wrong = "https://alice:tok3n-s3cret@127.0.0.1:9/keys.git"  # nothing listens on port 9
    made = alice("init", "--work-factor", "10", "--git", "--remote", wrong)
    assert made.code == 1, made.err
    assert (
        "the team vault is made here, but https://***@127.0.0.1:9/keys.git was not reached"
        in made.err
    )
    assert "remote set-url origin URL" in made.err and "keyvault sync" in made.err
    assert "tok3n-s3cret" not in made.out + made.err
    bare = bare_repository(tmp_path)
    alice.git("remote", "set-url", "origin", str(bare))
    alice.add("one")
    alice.ok("sync")  # the hint's way out works
    bob = Member(tmp_path, "bob", runtime_dir)
    bob.ok("clone", str(bare), "--work-factor", "10")
    carol = Member(tmp_path, "carol", runtime_dir)  # a URL that git would read as an option
    made = carol("init", "--work-factor", "10", "--git", "--remote", "--mirror=push")
    assert made.code == 1 and "--mirror=push was not reached" in made.err, made.err


def test_a_remote_url_with_credentials_is_never_printed(tmp_path: Path, runtime_dir: Path) -> None:
    bare = bare_repository(tmp_path)
    url = "https://alice:tok3n-s3cret@git.example.invalid/keys.git"
    people = []
    for name in ("alice", "carol"):
        member = Member(tmp_path, name, runtime_dir)  # the user's git reaches `url` on disk
        (member.user_home / ".gitconfig").write_text(f'[url "{bare}"]\n\tinsteadOf = {url}\n')
        people.append(member)
    alice, carol = people
    made = alice.ok("init", "--work-factor", "10", "--git", "--remote", url)
    assert "pushed to https://***@git.example.invalid/keys.git" in made.out
    carol.ok("init", "--work-factor", "10")
    taken = carol("team", "init", "--remote", url)
    assert taken.code == 1 and "already holds a vault" in taken.err, taken.err
    empty = tmp_path / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True)
    dave = Member(tmp_path, "dave", runtime_dir)
    (dave.user_home / ".gitconfig").write_text(f'[url "{empty}"]\n\tinsteadOf = {url}\n')
    nothing = dave("clone", url, "--work-factor", "10")
    assert nothing.code == 1 and "https://***@git.example.invalid/keys.git is empty" in nothing.err
    for result in (made, taken, nothing):
        assert "tok3n-s3cret" not in result.out + result.err


def test_sync_names_a_hand_edited_shared_file_it_commits(
    team: tuple[Member, Member, Path],
) -> None:
    alice, bob, _ = team
    with (alice.home / ".gitignore").open("a") as ignore:
        ignore.write("notes.txt\n")
    alice.add("one")
    done = alice.ok("sync")
    assert "+ one" in done.out and "updated .gitignore" in done.out, done.out
    bob.ok("sync")
    assert "notes.txt" in (bob.home / ".gitignore").read_text()


def test_doctor_after_a_plain_git_pull_fails_nothing(team: tuple[Member, Member, Path]) -> None:
    """docs/team.md: plain git works too. git writes what it checks out with the user's
    umask (0644): the shared files are in the repository anyway; identity.age stays 0600."""
    alice, bob, _ = team
    with (alice.home / ".gitignore").open("a") as ignore:
        ignore.write("notes.txt\n")
    alice.add("one")
    alice.ok("sync")
    pulled = subprocess.run(
        ["sh", "-c", 'umask 022 && exec git -C "$0" pull -q --no-rebase', str(bob.home)],
        env={**bob.cli.env, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(bob.user_home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert (bob.home / ".gitignore").stat().st_mode & 0o777 == 0o644
    doctor = bob("doctor")
    assert "FAIL" not in doctor.out, doctor.out
    assert (bob.home / "vault.age").stat().st_mode & 0o777 == 0o644
    bob.add("two")  # that vault.age becomes the backup
    doctor = bob("doctor")
    assert "FAIL" not in doctor.out, doctor.out
    (bob.home / ".gitignore").chmod(0o666)  # writable by others still fails
    assert "FAIL  permissions" in bob("doctor").out


def test_a_new_members_doctor_is_clean_after_joining(tmp_path: Path, runtime_dir: Path) -> None:
    bare = bare_repository(tmp_path)
    _, bob = found_team(tmp_path, runtime_dir, bare)  # bob cloned, was added, synced
    doctor = bob("doctor")
    assert "FAIL" not in doctor.out, doctor.out
    assert not (bob.home / "vault.age.bak").exists()  # the version sealed before he joined
    bob.add("one")  # from his first change on, a backup as anywhere
    assert (bob.home / "vault.age.bak").exists()


def test_a_remote_replaced_by_another_repository_is_named_and_can_be_put_back(
    team: tuple[Member, Member, Path], tmp_path: Path, runtime_dir: Path
) -> None:
    alice, bob, bare = team
    alice.add("one")
    alice.ok("sync")
    bob.ok("sync")
    other = Member(tmp_path, "mallory", runtime_dir)
    other.ok("init", "--work-factor", "10", "--git")
    other.git("push", "-q", "--force", str(bare), "HEAD:main")
    bob.add("two")
    refused = bob("sync")
    assert refused.code == 1, refused.err
    assert "origin/main shares no history with this vault: the remote was replaced" in refused.err
    assert names(bob) == {"one", "two"}
    hint = refused.err.split("put this vault back: ", 1)[1].split()
    assert hint[:3] == ["git", "-C", str(bob.home)]
    bob.git(*hint[3:])  # the hint's command, as printed
    bob.ok("sync")
    alice.ok("sync")
    assert names(alice) == {"one", "two"}


def test_a_detached_head_and_a_stale_index_lock_say_exactly_what_to_run(
    team: tuple[Member, Member, Path],
) -> None:
    alice, _, _ = team
    alice.add("one")
    alice.ok("sync")
    alice.git("checkout", "-q", "HEAD~1")
    detached = alice("sync")
    assert detached.code == 1
    assert f"git -C {alice.home} checkout main" in detached.err, detached.err
    alice.git("checkout", "-q", "main")
    (alice.home / ".git" / "index.lock").write_text("")  # a git killed halfway
    alice.add("two")
    stale = alice("sync")
    lock = alice.home / ".git" / "index.lock"
    assert stale.code == 1 and f"if none runs, remove it (rm {lock})" in stale.err, stale.err
    lock.unlink()
    assert "+ two" in alice.ok("sync").out


@pytest.mark.slow
@pytest.mark.parametrize("left", ["HEAD.lock", "refs/remotes/origin/main.lock"])
def test_every_lock_a_killed_git_leaves_is_named_with_the_command_that_clears_it(
    team: tuple[Member, Member, Path], left: str
) -> None:
    """A git killed mid-sync leaves HEAD.lock or a ref's lock as often as index.lock; a
    fetch failing on one is no unreachable remote."""
    alice, bob, _ = team
    alice.add("one")
    alice.ok("sync")
    bob.add("two")
    lock = bob.home / ".git" / left
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text("")  # what `kill -9` of a git mid-commit or mid-fetch leaves
    stale = bob("sync")
    assert stale.code == 1, stale.err
    assert stale.err.splitlines()[0].endswith(f"{lock} exists"), stale.err
    assert "not reached" not in stale.err
    assert "keyvault: hint: a git killed mid-write left it" in stale.err
    assert f"rm {lock}" in stale.err
    lock.unlink()
    assert "+ one" in bob.ok("sync").out
    assert {e.name for e in bob.doc().entries} == {"one", "two"}


def test_another_teams_vault_pushed_here_does_not_claim_you_were_removed(
    team: tuple[Member, Member, Path], tmp_path: Path, runtime_dir: Path
) -> None:
    alice, bob, _ = team
    alice.add("one")
    alice.ok("sync")
    bob.ok("sync")
    other = Member(tmp_path, "mallory", runtime_dir)
    other.ok("init", "--work-factor", "10")
    bob.git("fetch", "-q", "origin")
    bob.git("reset", "-q", "--hard", "origin/main")
    (bob.home / "vault.age").write_bytes((other.home / "vault.age").read_bytes())
    bob.git("commit", "-qam", "a vault sealed to someone else")
    bob.git("push", "-q", "origin", "HEAD:main")
    for merging in (False, True):  # a fast-forward, then a merge with a local change
        if merging:
            alice.add("two")
        refused = alice("sync")
        assert refused.code != 0
        assert "or someone who is not a member wrote it" in refused.err, refused.err
        assert "git log -- vault.age" in refused.err
    assert names(alice) == {"one", "two"}


def test_a_member_who_lost_their_identity_is_told_how_to_join_again(
    team: tuple[Member, Member, Path], tmp_path: Path, runtime_dir: Path
) -> None:
    alice, bob, bare = team
    alice.add("one")
    alice.ok("sync")
    bob.ok("sync")
    (bob.home / "identity.age").unlink()
    lost = bob("list")
    assert lost.code != 0 and "keyvault init" not in lost.err  # init refuses: vault.age is here
    assert "--vault NEW_FOLDER clone URL" in lost.err, lost.err
    again = Member(tmp_path, "bob-again", runtime_dir)  # the hint, step by step
    joined = again.ok("clone", str(bare), "--work-factor", "10")
    key = next(word for word in joined.out.split() if word.startswith("age1"))
    alice.ok("recipients", "rm", "bob")
    alice.ok("recipients", "add", "bob-laptop", key)
    alice.ok("sync")
    again.ok("sync")
    assert names(again) == {"one"}


def test_doctor_says_what_stops_the_next_sync(team: tuple[Member, Member, Path]) -> None:
    alice, bob, bare = team
    assert "ok    sync" in alice("doctor").out
    away = bare.with_name("away.git")
    bare.rename(away)
    alice.add("on-a-plane")
    assert alice("sync").code == 1  # committed here, not pushed
    doctor = alice("doctor")
    assert "1 commit(s) made here are not shared yet" in doctor.out
    assert "fix: keyvault sync" in doctor.out
    away.rename(bare)
    alice.ok("sync")
    with (alice.home / ".gitignore").open("a") as ignore:
        ignore.write("alice.txt\n")
    alice.ok("sync")
    with (bob.home / ".gitignore").open("a") as ignore:
        ignore.write("bob.txt\n")
    bob.ok("sync", "--offline")
    assert bob("sync").code == 1  # both changed .gitignore: merge it by hand
    bob.git("merge", "origin/main", check=False)  # the hint, and a conflict in .gitignore
    doctor = bob("doctor")
    assert "a merge is in progress in the vault repository" in doctor.out, doctor.out
    assert f"git -C {bob.home} merge --abort" in doctor.out


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("identity.age", b"not your key\n"),
        ("config.toml", b'default_base_url = "https://attacker.example/v1"\n'),
        ("Vault.age.bak", b"junk\n"),  # a case-insensitive disk would write vault.age.bak
    ],
)
def test_a_pushed_file_of_this_machines_own_is_refused_and_never_replaces_yours(
    team: tuple[Member, Member, Path], tmp_path: Path, runtime_dir: Path, name: str, content: bytes
) -> None:
    """Anyone who can push (no team secret needed) could otherwise replace every member's
    identity.age, or their config.toml (OPENAI_BASE_URL to an attacker): git overwrites an
    ignored file when it checks out one."""
    alice, bob, bare = team
    alice.add("one", "--project", "p")
    alice.ok("sync")
    bob.ok("sync")
    mine = {n: (bob.home / n).read_bytes() for n in ("identity.age", "vault.age")}
    intruder = tmp_path / "intruder"
    subprocess.run(["git", "clone", "-q", str(bare), str(intruder)], check=True)
    (intruder / name).write_bytes(content)
    pusher = ["git", "-C", str(intruder), "-c", "user.name=x", "-c", "user.email=x@x"]
    subprocess.run([*pusher, "add", "-f", name], check=True)
    subprocess.run([*pusher, "commit", "-qm", "tune"], check=True)
    subprocess.run([*pusher, "push", "-q"], check=True)
    refused = bob("sync")
    assert refused.code == 1, refused.err
    assert f"origin/main holds {name}, a file each machine keeps for itself" in refused.err
    assert {n: (bob.home / n).read_bytes() for n in mine} == mine
    assert not (bob.home / "config.toml").exists()
    assert "attacker" not in bob.ok("env", "--project", "p").out
    carol = Member(tmp_path, "carol", runtime_dir)
    joining = carol("clone", str(bare), "--work-factor", "10")
    assert joining.code == 1 and f"holds {name}" in joining.err
    assert not carol.home.exists()
    subprocess.run([*pusher, "rm", "-q", "--cached", name], check=True)  # the hint's way out
    subprocess.run([*pusher, "commit", "-qm", "remove a local file"], check=True)
    subprocess.run([*pusher, "push", "-q"], check=True)
    bob.ok("sync")
    assert (bob.home / "identity.age").read_bytes() == mine["identity.age"]


def test_sync_names_the_other_files_that_came_in(team: tuple[Member, Member, Path]) -> None:
    alice, bob, _ = team
    with (alice.home / ".gitignore").open("a") as ignore:
        ignore.write("notes.txt\n")
    alice.ok("sync")
    came = bob.ok("sync")
    assert "in: from origin/main" in came.out and "updated .gitignore" in came.out, came.out
    assert "up to date" not in came.out


def test_a_pinned_ci_checkout_refuses_a_config_toml_that_came_with_it(
    team: tuple[Member, Member, Path], tmp_path: Path
) -> None:
    """docs/ci.md: a plain checkout read with KEYVAULT_TEAM_PIN. The pin vouches for
    vault.age; a config.toml pushed beside it (default_base_url) would send CI's requests,
    key included, elsewhere."""
    alice, _, bare = team
    ci_identity = alice.ok("recipients", "new-ci", "ci").out.strip().splitlines()[-1]
    alice.add("main", "--project", "work")
    alice.ok("sync")
    pin = next(
        line.split()[1] for line in alice.ok("trust").out.splitlines() if line.startswith("pin")
    )
    checkout = tmp_path / "ci" / "keys"
    subprocess.run(["git", "clone", "-q", str(bare), str(checkout)], check=True)
    env = {
        "PATH": alice.cli.env["PATH"],
        "PYTHONPATH": alice.cli.env["PYTHONPATH"],
        "HOME": str(tmp_path / "ci"),
        "XDG_STATE_HOME": str(tmp_path / "ci" / "state"),
        "KEYVAULT_HOME": str(checkout),
        "KEYVAULT_IDENTITY": ci_identity,
        "KEYVAULT_TEAM_PIN": pin,
    }
    run = [sys.executable, "-m", "vault", "env", "--project", "work"]
    clean = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
    assert clean.returncode == 0 and "OPENAI_API_KEY" in clean.stdout, clean.stderr
    (checkout / "config.toml").write_text('default_base_url = "https://attacker.example/v1"\n')
    refused = subprocess.run(run, env=env, capture_output=True, text=True, check=False)
    assert refused.returncode != 0 and "attacker" not in refused.stdout
    assert "refusing a config.toml in a team vault pinned with KEYVAULT_TEAM_PIN" in refused.stderr


def test_an_unreachable_remote_fails_sync_even_with_nothing_to_send(
    team: tuple[Member, Member, Path],
) -> None:
    """A server that syncs from cron to pick up rotations must hear that nothing came in."""
    alice, _, bare = team
    alice.ok("sync")
    away = bare.with_name("away.git")
    bare.rename(away)
    silent = alice("sync")
    assert silent.code == 1, silent.out
    assert "origin not reached" in silent.err and "nothing came in" in silent.err
    assert "up to date" not in silent.out
    assert alice("sync", "--offline").code == 0
    away.rename(bare)
    assert alice.ok("sync").out.strip() == "up to date with origin/main"


@pytest.mark.parametrize("name", [".gitignore", ".gitattributes", "notes"])
def test_a_pushed_symlink_is_refused_and_its_target_never_pushed(
    team: tuple[Member, Member, Path], tmp_path: Path, name: str
) -> None:
    """A `.gitignore` pointing at a private file: keyvault read it to keep its own lines,
    wrote what it read back into .gitignore, and pushed it to whoever set the link."""
    alice, bob, bare = team
    private = tmp_path / "private.txt"
    private.write_text("PRIVATE-LINE\n")
    intruder = tmp_path / "intruder"
    subprocess.run(["git", "clone", "-q", str(bare), str(intruder)], check=True)
    (intruder / name).unlink(missing_ok=True)
    (intruder / name).symlink_to(private)
    pusher = ["git", "-C", str(intruder), "-c", "user.name=x", "-c", "user.email=x@x"]
    subprocess.run([*pusher, "add", name], check=True)
    subprocess.run([*pusher, "commit", "-qm", "link"], check=True)
    subprocess.run([*pusher, "push", "-q"], check=True)
    refused = bob("sync")
    assert refused.code == 1 and f"holds {name}, a symbolic link" in refused.err, refused.err
    assert not (bob.home / name).is_symlink()
    alice.git("pull", "-q", "--no-rebase")  # plain git takes it: keyvault must not read it
    assert (alice.home / name).is_symlink()
    alice.add("one")
    alice("sync")
    pushed = subprocess.run(
        ["git", "-C", str(bare), "grep", "-I", "PRIVATE-LINE", "main"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pushed.stdout == ""


def test_a_deleted_vault_age_is_named_and_the_hint_restores_it(
    team: tuple[Member, Member, Path],
) -> None:
    alice, _, _ = team
    alice.add("one")
    alice.ok("sync")
    (alice.home / "vault.age").unlink()
    refused = alice("sync")
    assert refused.code == 1 and "vault.age is missing here (deleted?)" in refused.err
    assert f"git -C {alice.home} checkout -- vault.age" in refused.err
    alice.git("checkout", "--", "vault.age")
    alice.ok("sync")
    assert names(alice) == {"one"}


def test_a_config_toml_added_here_is_never_pushed(team: tuple[Member, Member, Path]) -> None:
    """Every other member's sync refuses a commit holding config.toml: sync must not send
    one (a `git add -f` by hand) and block the team."""
    alice, bob, _ = team
    (alice.home / "config.toml").write_text("phone_slots = 3\n")
    alice.git("add", "-f", "config.toml")
    alice.git("commit", "-qm", "share my settings")
    refused = alice("sync")
    assert refused.code == 1 and "config.toml is tracked by git" in refused.err, refused.err
    assert f"git -C {alice.home} rm --cached config.toml" in refused.err
    alice.git("rm", "-q", "--cached", "config.toml")
    alice.git("commit", "-qm", "keep it mine")
    alice.ok("sync")
    assert bob("sync").code == 0
