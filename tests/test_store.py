"""The store's promises: atomic saves, a lock with no lost updates, private files.

- a failure at any step of a save leaves the vault byte-identical and no temp file behind;
- kill -9 at random moments during saves: the vault always opens, at the old or new generation;
- 8 processes adding 25 keys each end with all 200;
- files are 0600 and folders 0700 whatever the umask; symlinks are never followed.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import files, make_key, open_vault
from vault.errors import LockTimeout, StorageError
from vault.model.secret import Secret
from vault.store.files import FileOps, locked, write_file_atomic
from vault.store.inventory import add_key
from vault.store.keyvault import Keyvault

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process tests")


@pytest.fixture
def kv(tmp_path: Path) -> Keyvault:
    vault = open_vault(tmp_path / "kv")
    add_key(vault, "first", Secret(make_key()), {"project": "p"})
    return vault


class FailAt(FileOps):
    """Fails the `nth` call of `step` with `err`; every other call is real."""

    def __init__(self, step: str, err: int, nth: int = 1) -> None:
        self.step, self.err, self.left = step, err, nth

    def _maybe_fail(self, step: str) -> None:
        if step == self.step:
            self.left -= 1
            if self.left == 0:
                raise OSError(self.err, os.strerror(self.err))

    def open_new(self, path: Path) -> int:
        self._maybe_fail("open_new")
        return super().open_new(path)

    def write(self, fd: int, data: bytes) -> None:
        self._maybe_fail("write")
        # a short write before ENOSPC is what a full disk really does
        super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._maybe_fail("fsync")
        super().fsync(fd)

    def close(self, fd: int) -> None:
        super().close(fd)
        self._maybe_fail("close")

    def link(self, src: Path, dst: Path) -> None:
        self._maybe_fail("link")
        super().link(src, dst)

    def replace(self, src: Path, dst: Path) -> None:
        self._maybe_fail("replace")
        super().replace(src, dst)

    def fsync_dir(self, path: Path) -> None:
        self._maybe_fail("fsync_dir")
        super().fsync_dir(path)


STEPS = ["open_new", "write", "fsync", "close", "link", "replace", "fsync_dir"]


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
@pytest.mark.parametrize("step", STEPS)
def test_failed_save_leaves_vault_byte_identical(kv: Keyvault, step: str, err: int) -> None:
    # the backup is refreshed on every save, so make one save first: the .bak exists too
    add_key(kv, "second", Secret(make_key()), {"project": "p"})
    before = files(kv.paths.home)
    broken = open_vault(kv.paths.home, ops=FailAt(step, err))
    with pytest.raises(StorageError) as info:
        add_key(broken, "third", Secret(make_key()), {"project": "p"})
    assert "previous file is unchanged" in (info.value.hint or "")
    assert files(kv.paths.home) == before  # vault, backup and identity byte-identical
    assert not [p for p in kv.paths.home.iterdir() if p.name.startswith(".")]
    assert [e.name for e in kv.read().entries] == ["first", "second"]


def test_failed_backup_rename_puts_the_old_vault_back(kv: Keyvault) -> None:
    """The 2nd replace of a save moves the old vault to .bak, after the new one is in place."""
    add_key(kv, "second", Secret(make_key()), {"project": "p"})
    before = files(kv.paths.home)
    broken = open_vault(kv.paths.home, ops=FailAt("replace", errno.EIO, nth=2))
    with pytest.raises(StorageError):
        add_key(broken, "third", Secret(make_key()), {"project": "p"})
    assert files(kv.paths.home) == before
    assert not [p for p in kv.paths.home.iterdir() if p.name.startswith(".")]


def test_backup_holds_previous_generation(kv: Keyvault) -> None:
    previous = kv.paths.vault.read_bytes()
    add_key(kv, "second", Secret(make_key()), {"project": "p"})
    assert kv.paths.backup.read_bytes() == previous
    assert kv.read().generation == kv.open(previous).generation + 1


def test_files_private_under_umask_000(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        vault = open_vault(tmp_path / "a" / "kv")
        add_key(vault, "k", Secret(make_key()), {})
    finally:
        os.umask(old)
    home = vault.paths.home
    assert home.stat().st_mode & 0o777 == 0o700
    for path in home.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path.name


def test_atomic_write_refuses_planted_symlink_lock(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious")
    lock = tmp_path / "vault.lock"
    lock.symlink_to(target)
    with pytest.raises(StorageError, match="symlink"), locked(lock):
        pass
    assert target.read_text() == "precious"


def test_vault_symlink_is_not_followed(kv: Keyvault, tmp_path: Path) -> None:
    real = tmp_path / "moved.age"
    kv.paths.vault.rename(real)
    kv.paths.vault.symlink_to(real)
    with pytest.raises(StorageError, match="symlink"):
        kv.read()


def test_lock_timeout_names_the_holder(kv: Keyvault) -> None:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: hold the lock until the parent is done
        os.close(read_end)
        with locked(kv.paths.lock):
            os.write(write_end, b"x")
            time.sleep(5)
        os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 1) == b"x"
        impatient = open_vault(kv.paths.home, lock_timeout=0.2)
        before = files(kv.paths.home)
        with pytest.raises(LockTimeout, match=f"pid {pid}"):
            add_key(impatient, "late", Secret(make_key()), {})
        assert files(kv.paths.home) == before
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)


def _adder(home: Path, worker: int, count: int) -> None:
    vault = open_vault(home, lock_timeout=120)
    for i in range(count):
        add_key(vault, f"w{worker}-{i}", Secret(make_key()), {"project": f"p{worker}"})


@pytest.mark.slow
def test_eight_processes_adding_concurrently_lose_nothing(kv: Keyvault) -> None:
    workers, each = 8, 25
    pids = []
    for worker in range(workers):
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _adder(kv.paths.home, worker, each)
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0] * workers
    doc = kv.read()
    names = {e.name for e in doc.entries}
    assert len(names) == workers * each + 1
    assert all(f"w{w}-{i}" in names for w in range(workers) for i in range(each))
    assert doc.generation == 2 + workers * each  # init, first, then one per add
    assert sum(1 for e in doc.history if e.action == "add") == workers * each + 1


def _save_forever(home: Path) -> None:
    vault = open_vault(home, lock_timeout=60)
    i = 0
    while True:
        i += 1
        add_key(vault, f"k{os.getpid()}-{i}", Secret(make_key()), {})


@pytest.mark.slow
def test_kill_minus_nine_during_saves_never_damages_the_vault(kv: Keyvault) -> None:
    rng = random.Random(1234)
    kills = 0
    last_generation = kv.read().generation
    # 100 kills, and on until the writers have completed 10 saves in all: on a loaded machine
    # a forked writer may get little CPU within its 80 ms, so a fixed count could prove little
    deadline = time.monotonic() + 120
    while kills < 100 or last_generation <= 10:
        assert time.monotonic() < deadline, "the writers should have completed some saves"
        pid = os.fork()
        if pid == 0:
            try:
                _save_forever(kv.paths.home)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        kills += 1
        doc = kv.read()  # must open every time: old or new generation, never damaged
        assert doc.generation >= last_generation
        assert len(doc.entries) == doc.generation - 1
        last_generation = doc.generation
    # a kill between creating and renaming a temp file can leave one; the next save (under
    # the lock, so no live writer owns it) sweeps it away
    add_key(kv, "after-the-storm", Secret(make_key()), {})
    assert not [p.name for p in kv.paths.home.iterdir() if p.name.startswith(".")]


def test_write_file_atomic_creates_0600_and_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.env"
    write_file_atomic(target, b"one")
    assert target.stat().st_mode & 0o777 == 0o600
    with pytest.raises(StorageError):
        write_file_atomic(target, b"two", ops=FailAt("fsync", errno.EIO))
    assert target.read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.env"]


class CountingOpen:
    """Counts how often `kv` decrypts and parses vault.age."""

    def __init__(self, kv: Keyvault) -> None:
        self.calls = 0
        self.real = kv.open

        def counted(sealed: bytes) -> object:
            self.calls += 1
            return self.real(sealed)

        kv.open = counted  # type: ignore[method-assign,assignment]


def test_a_reusable_read_spares_the_change_a_second_decrypt(kv: Keyvault) -> None:
    opened = CountingOpen(kv)
    kv.read(reusable=True)
    add_key(kv, "second", Secret(make_key()), {"project": "p"})
    assert opened.calls == 1
    assert {e.name for e in kv.read().entries} == {"first", "second"}
    add_key(kv, "third", Secret(make_key()), {"project": "p"})  # a plain read() is not reused
    assert opened.calls == 3


def test_a_reusable_read_is_not_reused_after_another_writer_saved(kv: Keyvault) -> None:
    """Between `add`'s pre-check and its save another process added a key: the change starts
    from the file as it is now, so that key is not lost."""
    opened = CountingOpen(kv)
    kv.read(reusable=True)
    other = open_vault(kv.paths.home)
    add_key(other, "theirs", Secret(make_key()), {"project": "p"})
    add_key(kv, "mine", Secret(make_key()), {"project": "p"})
    assert opened.calls == 2
    assert {e.name for e in kv.read().entries} == {"first", "theirs", "mine"}


def test_a_failed_change_is_not_reused(kv: Keyvault) -> None:
    before = files(kv.paths.home)
    doc = kv.read(reusable=True)

    def half_done(d: object) -> None:
        doc.entries[0].note = "half done"
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        kv.transact(half_done)
    assert files(kv.paths.home) == before
    opened = CountingOpen(kv)
    kv.transact(lambda d: None)
    assert opened.calls == 1, "the half-changed document must not be saved"
    assert kv.read().entries[0].note is None
