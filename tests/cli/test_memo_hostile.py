"""The export memo (vault/cli/memo.py) under attack: a change made while a full run records,
inputs that reach a run in unusual ways, entries that the agent hands back damaged or
hostile, and the process-wide state a recording swaps.

The setting is tests/cli/test_memo.py's World: a real vault, a real session agent, the CLI
as a process. Whether the memo answered is read from `python -X importtime` (a full run
imports vault.model.document). A race is made exact rather than waited for: the test runs the
recording in this process, against the real agent, with the change made inside the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.test_memo import DOCUMENT, ENV, World, _memo_of, _Sink
from vault import age
from vault.cli import everyday, output
from vault.cli.memo import GET, HIT, PUT, Memo, recorded
from vault.cli.memo_entry import FORMAT, status
from vault.session.wire import exchange_frames


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.close()


def run_cli(
    world: World, *args: str, env: dict[str, str] | None = None, piped: bool = True
) -> tuple[int, str, bool]:
    """Exit code, standard output, and whether the memo answered (never, to a file)."""
    ran = world.run(*args, env=env, piped=piped)
    assert "Traceback" not in ran.err, ran.err[-800:]
    return ran.code, ran.out, ran.memo


def in_process(world: World, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]) -> Memo:
    """This process set up as the CLI would run `argv` in the world; the memo of `argv`."""
    world.enter(monkeypatch)
    memo = _memo_of(argv, monkeypatch)
    monkeypatch.setattr(sys, "stdout", _Sink([]))
    return memo


@contextlib.contextmanager
def another_process(code: str) -> Iterator[Callable[[], None]]:
    """A process, started now, that runs `code` when told to and says when it is done: a
    change made by someone else while a run records (the recorder notes whatever this
    process does, and talking to a pipe it already has is nothing it notes)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import sys\nsys.stdin.read(1)\n{code}\nprint('done')"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    def now() -> None:
        stdin.write(b"x")
        stdin.flush()
        assert stdout.readline() == b"done\n"

    try:
        yield now
    finally:
        stdin.close()
        proc.wait(timeout=30)


# --- a change while a full run records ----------------------------------------------------


def test_a_file_edited_while_a_run_records_keeps_no_entry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edit that leaves size, mtime and ctime alone: a write through a shared mapping to
    # a page that is already dirty (a file system with coarse timestamps does the same for
    # any edit within one tick). The run read the old contents; the entry must not pair
    # its output with the new ones.
    config = world.admin.home / "config.toml"
    config.write_text('default_base_url = "https://a.example/v1"\n')
    where = config.read_bytes().index(b"a.example")
    with open(config, "r+b") as handle, mmap.mmap(handle.fileno(), 0) as mapped:
        mapped[where] = ord("a")  # dirties the page: the times move now, not later
        before = config.stat()
        memo = in_process(world, monkeypatch, ENV)

        def run_while_edited() -> None:
            everyday.env(everyday.command_context(None, "work"), "bash", None, False)
            mapped[where] = ord("b")

        assert not recorded(memo, run_while_edited).spoiled
        after = config.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ctime_ns) == (
        before.st_size,
        before.st_mtime_ns,
        before.st_ctime_ns,
    )
    code, piped, answered = run_cli(world, *ENV)
    assert not answered
    assert "https://b.example/v1" in piped
    assert (code, piped) == run_cli(world, *ENV, piped=False)[:2]


def test_a_project_file_made_while_a_run_records_keeps_no_entry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `env` without --project looks for .keyvault.toml up the tree without opening what is
    # missing: a file that appears once the run has looked must not be taken for the state
    # the run saw
    plain = ("env", "--shell", "bash")
    (world.tmp / "repo" / ".keyvault.toml").write_text('project = "work"\n')
    memo = in_process(world, monkeypatch, plain)
    nearer = world.folder / ".keyvault.toml"
    text = 'project = "relay"\n'
    make = f"open({str(nearer)!r}, 'w').write({text!r})"
    with another_process(make) as now:

        def run_then_project_file() -> None:
            everyday.env(everyday.command_context(None), "bash", None, False)
            now()

        assert not recorded(memo, run_then_project_file).spoiled
    assert nearer.read_text() == text
    code, piped, answered = run_cli(world, *plain)
    assert (code, answered) == (0, False)
    assert world.keys["relay"] in piped
    assert run_cli(world, *plain, piped=False)[1] == piped


# --- inputs that reach a run in unusual ways -----------------------------------------------


def test_an_identity_file_named_like_code_is_followed(world: World) -> None:
    # a run skips the files Python imports (followed by status as keyvault's code); a
    # KEYVAULT_IDENTITY_FILE that happens to end in .py is not one of them
    identity = world.tmp / "key.py"
    world.admin.ok("identity", "export", "-o", str(identity))
    env = {**world.env, "KEYVAULT_IDENTITY_FILE": str(identity)}
    first = run_cli(world, *ENV, env=env)
    assert first[0] == 0 and world.keys["main"] in first[1]
    assert run_cli(world, *ENV, env=env) == (0, first[1], True)
    identity.write_text(age.X25519Identity.generate().to_string() + "\n")
    code, piped, answered = run_cli(world, *ENV, env=env)
    assert not answered
    assert code != 0 and world.keys["main"] not in piped
    assert run_cli(world, *ENV, env=env, piped=False)[0] == code


READS: dict[str, Callable[[], str]] = {
    "os.environ.get": lambda: os.environ.get("KV_MEMO_PROBE", "-"),
    "os.environ.setdefault": lambda: os.environ.setdefault("KV_MEMO_PROBE", "-"),
    "os.environb": lambda: os.environb.get(b"KV_MEMO_PROBE", b"-").decode(),
    "os.getenv": lambda: os.getenv("KV_MEMO_PROBE", "-"),
    "counting": lambda: str(len(os.environ)),
    "repr": lambda: str(len(repr(os.environ))),
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_every_way_of_reading_the_environment_is_followed(
    world: World, monkeypatch: pytest.MonkeyPatch, read: Callable[[], str]
) -> None:
    monkeypatch.setenv("KV_MEMO_PROBE", "one")
    memo = in_process(world, monkeypatch, ("env", "--probe"))
    seen = recorded(memo, lambda: output.write_text(read() + "\n"))
    assert not seen.spoiled
    assert memo.replay()
    monkeypatch.setenv("KV_MEMO_PROBE", "three")  # same length: `len(repr())` changes too
    monkeypatch.setenv("KV_MEMO_OTHER", "x")  # so does the count
    assert not memo.replay()


def test_a_change_to_the_environment_is_made_and_keeps_no_entry(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KV_MEMO_PROBE", "one")
    memo = in_process(world, monkeypatch, ("env", "--probe"))

    def pops() -> None:
        output.write_text(os.environ.pop("KV_MEMO_PROBE") + "\n")

    assert recorded(memo, pops).spoiled == "changed the environment"
    assert "KV_MEMO_PROBE" not in os.environ  # as the real os.environ.pop does
    assert not memo.replay()


def test_the_recorder_never_fails_what_the_run_does(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # an open relative to a folder descriptor while the working folder is gone: the hook
    # cannot tell which file it is (os.getcwd() fails), and the open must still succeed
    memo = in_process(world, monkeypatch, ("env", "--probe"))
    (tmp_path / "data").write_text("from a folder descriptor\n")
    folder = os.open(tmp_path, os.O_RDONLY)
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()

    def opens_beside() -> None:
        fd = os.open("data", os.O_RDONLY, dir_fd=folder)
        try:
            output.write_text(os.read(fd, 100).decode())
        finally:
            os.close(fd)

    try:
        seen = recorded(memo, opens_beside)
    finally:
        os.close(folder)
    assert seen.spoiled.startswith("the recorder failed")


def test_a_recording_restores_the_process_on_every_path(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo = in_process(world, monkeypatch, ("env", "--probe"))
    environ, environb, stderr = os.environ, os.environb, sys.stderr

    def interrupted() -> None:
        output.write_text("export A=1\n")
        raise KeyboardInterrupt

    def fails() -> None:
        output.write_text("export A=1\n")
        raise OSError("the output went away")

    for run, raised in ((interrupted, KeyboardInterrupt), (fails, OSError)):
        with pytest.raises(raised):
            recorded(memo, run)
        assert (os.environ, os.environb, sys.stderr) == (environ, environb, stderr)
        assert os.environ is environ and os.environb is environb and sys.stderr is stderr
        assert output.stop_keeping() == []  # nothing is being kept any more
        assert not memo.replay()  # and nothing was kept


# --- entries the agent hands back ----------------------------------------------------------


def _part(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


HEAD = _part(FORMAT) + _part(b"1") + _part(b"text") + _part(b"export OPENAI_API_KEY=stale\n")
HOSTILE = {
    "a status path with a NUL": HEAD + _part(b"S") + _part(b"/tmp/a\x00b") + _part(b"missing"),
    "a file path with a NUL": HEAD + _part(b"F") + _part(b"/\x00") + _part(b"missing"),
    "a variable with a NUL": HEAD + _part(b"V") + _part(b"A\x00B") + _part(b"set"),
    "a huge count": _part(FORMAT) + _part(b"9" * 40),
    "a length past the end": _part(FORMAT) + b"\xff\xff\xff\xff",
    "a dependency cut short": HEAD + _part(b"F") + _part(b"/etc/hostname"),
    "a device that never ends": HEAD + _part(b"F") + _part(b"/dev/zero") + _part(b"x"),
}


@pytest.mark.parametrize("entry", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_entry_never_breaks_the_command(
    world: World, monkeypatch: pytest.MonkeyPatch, entry: bytes
) -> None:
    full = run_cli(world, *ENV, piped=False)
    world.enter(monkeypatch)
    memo = _memo_of(ENV, monkeypatch)
    assert exchange_frames(memo.agent, PUT, memo.key + entry) is not None
    code, piped, answered = run_cli(world, *ENV)
    assert (code, piped, answered) == (*full[:2], False)


def test_the_cli_run_in_process_never_uses_the_memo(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `vault.cli.main.run` serves hosts (and tests) that run thousands of commands in one
    # process: recording swaps process-wide state, so it never records, and never answers
    # from an entry, here one that would print something else
    from vault.cli.main import run

    world.enter(monkeypatch)
    memo = _memo_of(ENV, monkeypatch)
    stale = HEAD  # an entry without dependencies: always "unchanged"
    assert exchange_frames(memo.agent, PUT, memo.key + stale) is not None
    read, write = os.pipe()
    with os.fdopen(read, "rb") as reader, os.fdopen(write, "w") as writer:
        monkeypatch.setattr(sys, "stdout", writer)
        environ = os.environ
        assert run(list(ENV)) == 0
        writer.close()
        printed = reader.read().decode()
    assert world.keys["main"] in printed and "stale" not in printed
    assert os.environ is environ
    assert exchange_frames(memo.agent, GET, memo.key) == (HIT, stale)  # nor kept a new one


def test_a_closed_standard_error_neither_fails_the_run_nor_hides_a_warning(world: World) -> None:
    # `keyvault env 2>&- | …`: Python has no sys.stderr, and keyvault drops its warnings.
    # The recorder wrapped the missing stream and failed the command (exit 1, nothing on
    # stdout) whenever it warned; and an entry kept then would skip the warning later, for
    # a run whose standard error is open
    identity = world.tmp / "identity.txt"
    world.admin.ok("identity", "export", "-o", str(identity))
    identity.chmod(0o644)  # a warning on every run: readable by others
    env = {**world.env, "KEYVAULT_IDENTITY_FILE": str(identity)}
    full = run_cli(world, *ENV, env=env, piped=False)
    command = f"exec {sys.executable} -m vault {' '.join(ENV)} 2>&-"
    for _ in range(2):
        closed = subprocess.run(
            ["bash", "-c", command],
            capture_output=True,
            text=True,
            env=env,
            cwd=world.folder,
            timeout=60,
            check=False,
        )
        assert (closed.returncode, closed.stdout) == full[:2]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vault", *ENV],
        capture_output=True,
        text=True,
        env=env,
        cwd=world.folder,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout) == full[:2]
    assert DOCUMENT in proc.stderr and "readable by other users" in proc.stderr


WARNINGS: dict[str, Callable[[], object]] = {
    "write": lambda: sys.stderr.write("keyvault: warning: x\n"),
    "writelines": lambda: sys.stderr.writelines(["keyvault: warning: x\n"]),
    "print": lambda: print("keyvault: warning: x", file=sys.stderr),
    "buffer": lambda: sys.stderr.buffer.write(b"keyvault: warning: x\n"),
    "buffer.writelines": lambda: sys.stderr.buffer.writelines([b"keyvault: warning: x\n"]),
}


@pytest.mark.parametrize("warns", WARNINGS.values(), ids=WARNINGS.keys())
def test_every_way_of_writing_to_standard_error_keeps_no_entry(
    world: World, monkeypatch: pytest.MonkeyPatch, warns: Callable[[], object]
) -> None:
    memo = in_process(world, monkeypatch, ("env", "--probe"))
    read, write = os.pipe()
    with os.fdopen(read, "rb") as reader, os.fdopen(write, "w") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)

        def run() -> None:
            output.write_text("export A=1\n")
            warns()
            sys.stderr.flush()

        assert recorded(memo, run).spoiled == "wrote to standard error"
        stderr.close()
        assert reader.read() == b"keyvault: warning: x\n"  # and it was written
    assert not memo.replay()


@pytest.mark.slow
def test_an_entry_naming_huge_files_is_not_read_for_hours(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a process of ours can fill the agent: an entry that names a 200 MiB file a thousand
    # times, each with its true status and digest, had `env` read 200 GB before answering
    sparse = world.tmp / "sparse"
    with sparse.open("wb") as handle:
        handle.truncate(200 << 20)
    digest = hashlib.blake2b(b"\0" * (200 << 20), digest_size=32).hexdigest().encode()
    huge = _part(b"F") + _part(str(sparse).encode()) + _part(status(str(sparse)) + b" " + digest)
    entry = HEAD + huge * 1000
    full = run_cli(world, *ENV, piped=False)
    world.enter(monkeypatch)
    memo = _memo_of(ENV, monkeypatch)
    assert exchange_frames(memo.agent, PUT, memo.key + entry) is not None
    started = time.monotonic()
    assert run_cli(world, *ENV) == (*full[:2], False)
    assert time.monotonic() - started < 30
