"""Another local user (or a hostile repo) plants files; the disk fills up; the umask is 000.

- vault.lock, vault.age, temp files, .env targets and CI report files are never followed
  through a planted symlink: the file it points to is never read, written or created;
- a FIFO planted as vault.age, identity.age, vault.age.bak or config.toml is refused, not
  waited on (opening one blocks until a writer comes);
- under umask 000 everything keyvault creates is still 0600 (files) and 0700 (folders);
- on a full tmpfs (root only; skipped where mount is not permitted) a save fails with exit 1
  and leaves vault.age, vault.age.bak and a .env file byte-identical, with no temp file left.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, Cli, make_key
from vault.store.files import FileOps, sweep_temp_files

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX symlinks and modes")

Snapshot = Callable[[Path], dict[str, bytes]]
PRECIOUS = b"another user's file\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file the attacker wants keyvault to overwrite, truncate or reveal."""
    target = tmp_path / "outside" / "precious"
    target.parent.mkdir()
    target.write_bytes(PRECIOUS)
    return target


@pytest.fixture
def keyed(vault_cli: Cli) -> Cli:
    vault_cli.add("k1", None, "--project", "p")
    return vault_cli


def test_a_planted_lock_symlink_is_refused(keyed: Cli, outside: Path, snapshot: Snapshot) -> None:
    lock = keyed.home / "vault.lock"
    lock.unlink()
    lock.symlink_to(outside)
    before = snapshot(keyed.home)
    result = keyed("add", "k2", input=make_key())
    assert result.code == 1
    assert "vault.lock: is a symlink; refusing to follow it" in result.err
    assert outside.read_bytes() == PRECIOUS
    assert snapshot(keyed.home) == before


def test_a_dangling_lock_symlink_creates_nothing(keyed: Cli, tmp_path: Path) -> None:
    lock = keyed.home / "vault.lock"
    lock.unlink()
    planted = tmp_path / "created-by-keyvault"
    lock.symlink_to(planted)
    assert keyed("rm", "k1", "--yes").code == 1
    assert not planted.exists() and not planted.is_symlink()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vault.age", "identity.age"])
def test_a_symlinked_vault_file_is_not_read(keyed: Cli, tmp_path: Path, name: str) -> None:
    real = keyed.home / name
    moved = tmp_path / f"moved-{name}"
    real.rename(moved)
    real.symlink_to(moved)
    result = keyed("list")
    assert result.code == 1 and result.out == ""
    assert f"{name}: is a symlink; refusing to follow it" in result.err


def test_temp_files_are_created_exclusively(tmp_path: Path, outside: Path) -> None:
    """O_CREAT|O_EXCL never follows a symlink, whatever name an attacker guessed."""
    guessed = tmp_path / ".vault.age.1234.deadbeef.tmp"
    guessed.symlink_to(outside)
    with pytest.raises(FileExistsError):
        FileOps().open_new(guessed)
    dangling = tmp_path / ".vault.age.1234.cafe.tmp"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(FileExistsError):
        FileOps().open_new(dangling)
    assert outside.read_bytes() == PRECIOUS
    assert not (tmp_path / "would-be-created").exists()


def test_sweeping_planted_temp_links_removes_the_links_only(keyed: Cli, outside: Path) -> None:
    planted = keyed.home / ".vault.age.999.0badf00d.tmp"
    planted.symlink_to(outside)
    assert sweep_temp_files(keyed.home / "vault.age") == [planted]
    assert outside.read_bytes() == PRECIOUS
    planted.symlink_to(outside)
    keyed.add("k2", None)  # every save sweeps under the lock
    assert not planted.is_symlink() and outside.read_bytes() == PRECIOUS


def test_a_symlinked_dotenv_target_is_refused(keyed: Cli, tmp_path: Path, outside: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.symlink_to(outside)
    result = keyed("dotenv", str(env_file), "--project", "p")
    assert result.code == 1 and result.out == ""
    assert "symbolic link" in result.err
    assert outside.read_bytes() == PRECIOUS and env_file.is_symlink()


def test_a_symlinked_ci_report_is_replaced_not_followed(
    keyed: Cli, tmp_path: Path, outside: Path
) -> None:
    report = tmp_path / "keyvault.env"
    report.symlink_to(outside)
    keyed.ok("ci", "gitlab", "--project", "p", "--output", str(report))
    assert outside.read_bytes() == PRECIOUS
    info = os.lstat(report)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600


def test_a_symlinked_github_env_is_refused(keyed: Cli, tmp_path: Path, outside: Path) -> None:
    github_env = tmp_path / "github_env"
    github_env.symlink_to(outside)
    result = keyed("ci", "github", "--project", "p", env={"GITHUB_ENV": str(github_env)})
    assert result.code == 1
    assert outside.read_bytes() == PRECIOUS


def test_a_symlinked_home_is_refused_by_init(cli: Cli, tmp_path: Path) -> None:
    real = tmp_path / "real-home"
    real.mkdir(mode=0o700)
    cli.home.symlink_to(real)
    result = cli("init", "--work-factor", str(CHEAP_LOG_N))
    assert result.code == 1 and "symlink" in result.err
    assert list(real.iterdir()) == []


# --- umask 000 ----------------------------------------------------------------------------


@pytest.mark.slow
def test_umask_000_still_gives_private_files(cli: Cli, tmp_path: Path) -> None:
    def run(*args: str, env: dict[str, str], input: str = "") -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "vault", *args],
            env={**cli.env, **env},
            input=input,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=lambda: os.umask(0),
            start_new_session=True,
        )
        assert proc.returncode == 0, proc.stderr

    nested = tmp_path / "a" / "b" / "kv"
    env = {"KEYVAULT_HOME": str(nested)}
    run("init", "--work-factor", str(CHEAP_LOG_N), env=env)
    run("add", "k", "--project", "p", input=make_key(), env=env)
    run("add", "k2", "--project", "p", input=make_key(), env=env)
    project = tmp_path / "project"
    project.mkdir()
    run("dotenv", str(project / ".env"), "--project", "p", env=env)
    run("ci", "gitlab", "--project", "p", "--output", str(project / "report.env"), env=env)
    for folder in (tmp_path / "a", tmp_path / "a" / "b", nested):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    created = [*nested.iterdir(), project / ".env", project / "report.env"]
    assert {p.name for p in nested.iterdir()} >= {"identity.age", "vault.age", "vault.age.bak"}
    for path in created:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# --- a full disk --------------------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mount not permitted here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> None:
    """Write until the file system says ENOSPC (and keep the file)."""
    with (folder / "filler").open("wb", buffering=0) as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * 4096)
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0")
    probe = folder / "probe"
    with pytest.raises(OSError) as caught, probe.open("wb", buffering=0) as handle:
        handle.write(b"x" * 4096)
    assert caught.value.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_registered_env_on_a_full_disk_keeps_its_bytes_and_says_so_once(
    cli: Cli, small_tmpfs: Path
) -> None:
    """The vault saves (its disk has room); the .env that follows it cannot: the file keeps
    every byte, and the warning names its path once and the reason."""
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    cli.ok("add", "k1", "--project", "p", input=make_key())
    env_file = small_tmpfs / ".env"
    env_file.write_text("KEEP=me\n")
    cli.ok("dotenv", str(env_file), "--project", "p")
    before = env_file.read_bytes()
    fill(small_tmpfs)
    moved = cli("add", "k2", "--project", "p", "--activate", input=make_key())
    assert moved.code == 0, moved.err
    assert env_file.read_bytes() == before
    warning = f"could not update {env_file}: could not save (no space left on device)"
    assert warning in moved.err and moved.err.count(str(env_file)) == 1, moved.err
    (small_tmpfs / "filler").unlink()


def test_a_full_disk_leaves_the_old_vault(cli: Cli, small_tmpfs: Path, snapshot: Snapshot) -> None:
    home = small_tmpfs / "kv"
    env = {"KEYVAULT_HOME": str(home)}
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N), env=env)
    cli.ok("add", "k1", "--project", "p", input=make_key(), env=env)
    env_file = small_tmpfs / ".env"
    env_file.write_text("KEEP=me\n")
    before = snapshot(home)
    env_before = env_file.read_bytes()
    fill(small_tmpfs)
    result = cli("add", "k2", "--project", "p", input=make_key(), env=env)
    assert result.code == 1, result.err
    assert "could not save (no space left on device)" in result.err
    assert snapshot(home) == before
    assert result.out == ""
    exported = cli("dotenv", str(env_file), "--project", "p", env=env)
    assert exported.code == 1
    assert env_file.read_bytes() == env_before
    leftovers = [p.name for p in small_tmpfs.rglob(".*") if p.name.endswith(".tmp")]
    assert leftovers == []
    (small_tmpfs / "filler").unlink()
    assert "k1" in cli.ok("list", env=env).out


@pytest.mark.parametrize(
    ("name", "command", "message"),
    [
        ("vault.age", ("list",), "keyvault: error: vault.age: is not a regular file"),
        ("identity.age", ("list",), "keyvault: error: identity.age: is not a regular file"),
        ("config.toml", ("list",), "config.toml: cannot read (not a regular file)"),
        ("vault.age.bak", ("doctor",), "vault.age.bak does not open: vault.age.bak: is not a"),
    ],
)
def test_a_planted_fifo_is_refused_not_waited_on(
    keyed: Cli, name: str, command: tuple[str, ...], message: str
) -> None:
    """Opening a FIFO waits for a writer: every command (and the cd hook's `env`) hung."""
    planted = keyed.home / name
    planted.unlink(missing_ok=True)
    os.mkfifo(planted, 0o600)
    result = keyed(*command, timeout=20)
    assert result.code == 1
    assert message in result.err + result.out


def test_a_config_symlink_to_a_device_is_refused(keyed: Cli) -> None:
    """A symlinked config.toml is fine (dotfiles); to /dev/zero it was read until memory ran
    out."""
    (keyed.home / "config.toml").symlink_to("/dev/zero")
    result = keyed("list", timeout=20)
    assert result.code == 1
    assert result.err == (
        f"keyvault: error: {keyed.home}/config.toml: cannot read (not a regular file)\n"
    )
    (keyed.home / "config.toml").unlink()
    real = keyed.home.parent / "dotfiles-config.toml"
    real.write_text("phone_slots = 3\n")
    (keyed.home / "config.toml").symlink_to(real)
    assert keyed.ok("list").out.startswith("NAME")


def test_init_refuses_a_home_others_can_write(cli: Cli) -> None:
    """Anyone could swap identity.age there for one whose passphrase they chose."""
    cli.home.mkdir()
    cli.home.chmod(0o777)
    result = cli("init", "--work-factor", str(CHEAP_LOG_N))
    assert result.code == 1
    assert result.err.splitlines() == [
        f"keyvault: error: {cli.home}: others can write to this folder (mode 0777); refusing to"
        " create a vault in it",
        f"keyvault: hint: chmod 700 {cli.home}",
    ]
    assert list(cli.home.iterdir()) == []
    cli.home.chmod(0o755)  # readable is not writable: files are 0600 anyway
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
