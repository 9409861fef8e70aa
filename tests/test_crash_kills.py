"""Real crashes of real commands: `kill -9` delivered by strace at the nth rename or fsync of
a command, then the next command run as a user would.

- a kill between a temp file and its rename leaves no copy behind for good: the next save of
  that file removes it, for every file keyvault writes (vault.age, identity.age, .env files,
  the trust pin), not only vault.age;
- `init` killed between identity.age and vault.age is finished by the next `init`;
- two `init`s at once never pair one's identity with the other's vault;
- `clone` killed anywhere leaves the home as it was, so the same command runs again;
- a vault.age cut short (power loss) says where to look next;
- a merge git left half done (its driver killed) pins nothing and takes no change;
- a read racing another process's save is read again, not refused as a rollback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, REPO, Cli, add, make_key, open_vault, require_tool
from tests.team import Member, bare_repository, found_team, needs_git
from vault.errors import RolledBack
from vault.model.document import VaultDoc
from vault.store.files import FileOps, sweep_dead_writers, write_file_atomic
from vault.store.keyvault import Keyvault

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="strace and /proc: Linux")

# what vault/store/files.py names its temp files: .<name>.<pid>.<8 hex>.tmp|bak
TEMP = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.(tmp|bak)")


def strace() -> str:
    path = require_tool("strace")
    probe = subprocess.run([path, "-o", os.devnull, "true"], capture_output=True, check=False)
    if probe.returncode != 0:  # a container without CAP_SYS_PTRACE
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode().strip()}")
    return path


def killed_at(cli: Cli, call: str, nth: int, *args: str, input: str = "") -> bool:
    """Run `keyvault ARGS` and SIGKILL it as it enters its own `nth` `call` (its children,
    git, run untouched); False when the command finished first."""
    argv = [strace(), "-qq", "-o", os.devnull, "-e", f"trace={call}"]
    argv += ["-e", f"inject={call}:signal=KILL:when={nth}", sys.executable, "-m", "vault", *args]
    done = subprocess.run(
        argv, input=input, capture_output=True, text=True, env=cli.env, timeout=60, check=False
    )
    return done.returncode in (-9, 128 + 9)


def temp_files(*folders: Path) -> list[str]:
    return sorted(str(p) for f in folders for p in f.rglob(".*") if TEMP.fullmatch(p.name))


def test_a_dead_writers_temp_files_go_and_a_live_ones_stay(tmp_path: Path) -> None:
    target = tmp_path / ".env"  # its temps: ..env.<pid>.<hex>.tmp
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = int(gone.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        left = [tmp_path / f"..env.{dead}.0badf00d.tmp", tmp_path / f"..env.{dead}.cafebabe.bak"]
        kept = [
            tmp_path / f"..env.{live.pid}.0badf00d.tmp",  # a save in progress
            tmp_path / f"..env.{os.getpid()}.12345678.tmp",
            tmp_path / f"..env.local.{dead}.0badf00d.tmp",  # another file's temp
            tmp_path / f"..env.{dead}.tmp",  # not a name keyvault makes
            tmp_path / ".env.backup",
        ]
        for path in left + kept:
            path.write_text("x")
        assert sorted(sweep_dead_writers(target)) == sorted(left)
        assert all(p.exists() for p in kept) and not any(p.exists() for p in left)
    finally:
        live.kill()
        live.wait()


@pytest.mark.slow
def test_kills_mid_save_leave_no_temp_file_behind_the_next_save(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """rotate writes vault.age, vault.age.bak, the trust pin and a registered .env: a kill at
    any of their renames leaves at most the old or new file, and the next save
    sweeps every temp of the files it writes (before: only vault.age's were)."""
    project = tmp_path / "app"
    project.mkdir()
    dotenv = project / ".env"
    dotenv.write_text("DEBUG=1\n")
    dotenv.chmod(0o600)
    old, new = make_key(), make_key()
    vault_cli.add("old", old, "--project", "p")
    vault_cli.add("new", new, "--project", "p")
    vault_cli.ok("dotenv", str(dotenv), "--project", "p")
    state = Path(os.environ["XDG_STATE_HOME"])
    other = {"old": "new", "new": "old"}
    kills = 0
    for call in ("rename",):  # entering each rename, its temp file is complete and left
        for nth in range(1, 12):
            rotate = ("rotate", "--project", "p", "--to", other[_active(vault_cli)], "--no-check")
            if not killed_at(vault_cli, call, nth, *rotate):
                break
            kills += 1
            assert dotenv.stat().st_mode & 0o777 == 0o600
            assert dotenv.read_text() in (f"DEBUG=1\nOPENAI_API_KEY={k}\n" for k in (old, new))
            # the next commands open the vault and save; their saves sweep what the kill left
            rotate = ("rotate", "--project", "p", "--to", other[_active(vault_cli)])
            vault_cli.ok(*rotate, "--no-check")
            assert temp_files(vault_cli.home, project, state) == [], (call, nth)
    assert kills >= 4  # vault.age, its backup, the pin and the .env were all hit


@pytest.mark.slow
def test_an_init_killed_between_its_two_files_is_finished_by_the_next(cli: Cli) -> None:
    # the 1st rename puts identity.age in place, the 2nd vault.age
    assert killed_at(cli, "rename", 2, "init", "--work-factor", str(CHEAP_LOG_N))
    assert (cli.home / "identity.age").exists() and not (cli.home / "vault.age").exists()
    lost = cli("list")
    assert lost.code == 1 and "`keyvault init` finishes it" in lost.err, lost.err
    sealed = (cli.home / "identity.age").read_bytes()

    wrong = cli("init", env={"KEYVAULT_PASSPHRASE": "another passphrase, long enough"})
    assert wrong.code == 3, wrong.err
    assert "interrupted `keyvault init`" in wrong.err
    assert not (cli.home / "vault.age").exists()

    finished = cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    assert "finished an interrupted init" in finished.out
    assert (cli.home / "identity.age").read_bytes() == sealed  # the same identity, kept
    key = cli.add("k1", None, "--project", "p")
    assert cli.ok("get", "k1").out.strip() == key
    assert temp_files(cli.home) == []
    again = cli("init")
    assert again.code == 1 and "already holds a vault" in again.err


def _active(cli: Cli) -> str:
    listed = json.loads(cli.ok("list", "--json").out)
    return next(e["name"] for e in listed if e["status"] == "active")


def _holds_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(str(fd.readlink()) == str(path) for fd in fds.iterdir())
    except OSError:
        return False


@pytest.mark.slow
def test_an_init_racing_another_leaves_the_winners_files_alone(cli: Cli, tmp_path: Path) -> None:
    """Both pass the first "already exists" check; the loser must see the winner's files
    under the lock instead of replacing vault.age with one sealed to its own identity."""
    from vault.store.files import locked

    cli.home.mkdir(mode=0o700)
    winner = open_vault(tmp_path / "winner")
    with locked(cli.home / "vault.lock"):
        loser = subprocess.Popen(
            [sys.executable, "-m", "vault", "init", "--work-factor", str(CHEAP_LOG_N)],
            env=cli.env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not _holds_open(loser.pid, cli.home / "vault.lock"):
            assert loser.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        for name in ("identity.age", "vault.age"):  # the other init wins the race
            (cli.home / name).write_bytes((winner.paths.home / name).read_bytes())
            (cli.home / name).chmod(0o600)
    _, err = loser.communicate(timeout=30)
    assert loser.returncode == 1 and "already holds a vault" in err, err
    for name in ("identity.age", "vault.age"):
        assert (cli.home / name).read_bytes() == (winner.paths.home / name).read_bytes()


def test_a_vault_cut_short_points_at_doctor_and_the_backup(vault_cli: Cli) -> None:
    vault_cli.add("k1")
    vault = vault_cli.home / "vault.age"
    vault.write_bytes(vault.read_bytes()[: vault.stat().st_size // 2])  # power loss
    cut = vault_cli("list")
    assert cut.code == 4
    assert cut.err.splitlines()[1] == (
        "keyvault: hint: `keyvault doctor` checks whether vault.age.bak opens"
    ), cut.err


@pytest.mark.slow
@needs_git
def test_a_clone_killed_anywhere_leaves_the_home_as_it_was(
    tmp_path: Path, runtime_dir: Path
) -> None:
    """Before, a kill mid-clone left a half-made home that the next clone refused ("not
    empty"), and a kill after identity.age left a member who never saw their public key."""
    bare = bare_repository(tmp_path)
    alice = Member(tmp_path, "alice", runtime_dir)
    alice.ok("init", "--work-factor", str(CHEAP_LOG_N), "--git", "--remote", str(bare))
    bob = Member(tmp_path, "bob", runtime_dir)
    clone = ("clone", str(bare), "--work-factor", str(CHEAP_LOG_N))
    kills = 0
    for call, nth in (("rename", 1), ("fsync", 3), ("fsync", 7), ("wait4", 2), ("wait4", 9)):
        if not killed_at(bob.cli, call, nth, *clone):
            continue
        kills += 1
        assert not bob.home.exists(), (call, nth, sorted(bob.home.iterdir()))
    assert kills >= 4
    joined = bob.ok(*clone)
    public = next(w for w in joined.out.split() if w.startswith("age1"))
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".clone")]
    assert sorted(p.name for p in bob.home.iterdir()) == [
        ".git",
        ".gitattributes",
        ".gitignore",
        "identity.age",
        "vault.age",
        "vault.lock",
    ]
    # a member who missed the key (a kill right after the clone) finds it in `sync`
    assert public in bob.ok("sync").err
    alice.ok("recipients", "add", "bob", public)
    alice.ok("sync")
    assert "+ member bob" in bob.ok("sync").out


@pytest.mark.slow
def test_an_identity_export_killed_midway_leaves_no_file_to_trust(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """Before, a kill between creating the file and writing it left an empty key.txt, and
    the next export refused it as "already exists": a backup that looks made but is not."""
    reference = tmp_path / "reference.txt"
    vault_cli.ok("identity", "export", "-o", str(reference))
    out = tmp_path / "key.txt"
    kills = 0
    for nth in range(1, 6):  # the 1st write of the process is the identity's
        if not killed_at(vault_cli, "write", nth, "identity", "export", "-o", str(out)):
            break
        kills += 1
        if out.exists():  # killed after it was in place: whole, or not there at all
            assert out.read_bytes() == reference.read_bytes(), nth
            out.unlink()
    assert kills >= 2
    if not out.exists():  # the loop ends with a run that finished
        vault_cli.ok("identity", "export", "-o", str(out))
    assert out.read_bytes() == reference.read_bytes()
    assert out.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "kv") == [
        "key.txt",
        "reference.txt",
    ]
    again = vault_cli("identity", "export", "-o", str(out))
    assert again.code == 1 and "already exists" in again.err


@pytest.mark.slow
@needs_git
def test_a_merge_left_half_done_pins_nothing_and_takes_no_change(
    tmp_path: Path, runtime_dir: Path
) -> None:
    """git's merge driver killed after writing its result (or refusing: a locked vault)
    leaves vault.age conflicted, holding a newer generation than HEAD. Before, reading it
    (`list`) pinned that generation, and the `git merge --abort` the hint asks for then made
    every command refuse the vault as a rollback (exit 4); a key added meanwhile was saved
    into the file the abort throws away."""
    bare = bare_repository(tmp_path)
    alice, bob = found_team(tmp_path, runtime_dir, bare)
    alice.add("a1")
    alice.add("a2")  # alice's side is two generations ahead of the common base
    alice.ok("sync")
    bob.add("b1")
    bob.ok("sync", "--offline")
    pulled = bob.git("pull", "--no-rebase", "-q", "origin", "main", check=False)  # locked
    assert pulled.code != 0 and "cannot merge vault.age" in pulled.err, pulled.err
    bob.git("checkout", "--theirs", "vault.age")  # the newer file a killed driver leaves
    assert {"a1", "a2"} <= set(bob.ok("list").out.split())

    refused = bob("add", "b2", input=make_key())
    assert refused.code == 1, refused.err
    assert "a merge is in progress in the vault repository; nothing was saved" in refused.err
    bob.git("merge", "--abort")
    assert "b1" in bob.ok("list").out  # not refused as a rollback
    bob.ok("sync")
    assert {e.name for e in bob.doc().entries} >= {"a1", "a2", "b1"}


class InterruptAt(FileOps):
    """Ctrl-C arriving during one step of a save."""

    def __init__(self, step: str) -> None:
        self.step = step

    def fsync(self, fd: int) -> None:
        if self.step == "fsync":
            raise KeyboardInterrupt
        super().fsync(fd)

    def fsync_dir(self, path: Path) -> None:
        if self.step == "fsync_dir":
            raise KeyboardInterrupt
        super().fsync_dir(path)


@pytest.mark.parametrize("step", ["fsync", "fsync_dir"])
def test_ctrl_c_mid_save_leaves_a_whole_file_and_no_temp(tmp_path: Path, step: str) -> None:
    target, backup = tmp_path / "vault.age", tmp_path / "vault.age.bak"
    write_file_atomic(target, b"older", backup=backup)
    write_file_atomic(target, b"old", backup=backup)
    with pytest.raises(KeyboardInterrupt):
        write_file_atomic(target, b"new", backup=backup, ops=InterruptAt(step))
    assert target.read_bytes() in (b"old", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vault.age", "vault.age.bak"]


class SavedMeanwhile(Keyvault):
    """A reader that, between reading vault.age and checking it, lets another process's save
    land (a new vault.age and a pin one generation ahead), as `cron` and a person do."""

    def __init__(self, home: Path, other: Keyvault, times: int) -> None:
        reader = open_vault(home)
        super().__init__(reader.paths, reader.unlocker)
        self.other, self.left = other, times

    def open(self, sealed: bytes) -> VaultDoc:
        doc = super().open(sealed)
        if self.left:
            self.left -= 1
            add(self.other, f"meanwhile-{self.left}", make_key())
        return doc


def test_a_read_racing_a_save_is_no_rollback(tmp_path: Path) -> None:
    """Before, 3 people editing and listing at once got 'vault.age is older than the one
    this machine last saw' (exit 4, "restore the newer copy") about once in 13 commands."""
    writer = open_vault(tmp_path / "kv")
    add(writer, "first", make_key())
    # the reader gets the file as it was when it read it (the save came after): no rollback
    doc = SavedMeanwhile(tmp_path / "kv", writer, times=1).read()
    assert "first" in {e.name for e in doc.entries}
    # and it did not move the pin back: the next reader sees the save, no rollback either
    after = open_vault(tmp_path / "kv").read()
    assert {"first", "meanwhile-0"} <= {e.name for e in after.entries}
    # an older file that stays in place is still a rollback
    older = (tmp_path / "kv" / "vault.age.bak").read_bytes()
    (tmp_path / "kv" / "vault.age").write_bytes(older)
    with pytest.raises(RolledBack):
        open_vault(tmp_path / "kv").read()
