"""The export memo (vault/cli/memo.py): `env` and `get` through a pipe are answered from the
session agent only while nothing they depended on has changed.

Every test runs the real CLI as a process with a real agent. Whether a run was answered from
the memo is read from `python -X importtime`: a full run imports the vault's document model
(vault.model.document), an answer from the memo never does. After each kind of change the
piped output must equal a full run's (stdout to a private file, which the memo never answers)
and the first piped run after the change must be a full one.
"""

from __future__ import annotations

import io
import itertools
import os
import pty
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.helpers import CHEAP_LOG_N, PASSPHRASE, REPO, Cli, base_env, make_key, require_tool
from vault.cli.memo import GET, HIT, PUT, Memo, memo_for, recorded
from vault.session.agent import MEMO_ENTRIES, MemoStore
from vault.session.wire import exchange_frames

DOCUMENT = "vault.model.document"  # what every full run of env/get imports


class Ran(NamedTuple):
    code: int
    out: str
    memo: bool  # answered from the memo
    err: str


class World:
    """A vault with two projects, a session, and a folder tree to run `env` in."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.runtime = Path(tempfile.mkdtemp(prefix="kvmemo-", dir="/tmp"))
        env = base_env(tmp / "kv", self.runtime)
        self.admin = Cli(tmp / "kv", {**env, "KEYVAULT_PASSPHRASE": PASSPHRASE})
        self.admin.ok("init", "--work-factor", str(CHEAP_LOG_N))
        self.keys = {"main": make_key(), "relay": make_key()}
        self.admin.add("main", self.keys["main"], "--project", "work")
        self.admin.add(
            "relay", self.keys["relay"], "--project", "relay", "--base-url", "https://r.example/v1"
        )
        self.admin.ok("unlock", "--ttl", "10m")
        self.env = {**env, "SHELL": "/bin/bash"}  # no passphrase: only the session opens it
        self.folder = tmp / "repo" / "src"
        self.folder.mkdir(parents=True)
        self.out_file = tmp / "out.txt"

    def run(self, *args: str, env: dict[str, str] | None = None, piped: bool = True) -> Ran:
        """`args` as a process, its stdout a pipe or a private file (which the memo never
        answers); whether the memo answered is read from `-X importtime`."""
        fd = os.open(self.out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            proc = subprocess.run(
                [sys.executable, "-X", "importtime", "-m", "vault", *args],
                stdout=subprocess.PIPE if piped else fd,
                stderr=subprocess.PIPE,
                text=True,
                env=env or self.env,
                cwd=self.folder,
                timeout=60,
                start_new_session=True,
                check=False,
            )
        finally:
            os.close(fd)
        printed = proc.stdout if piped else self.out_file.read_text()
        return Ran(proc.returncode, printed, DOCUMENT not in proc.stderr, proc.stderr)

    def piped(self, *args: str, env: dict[str, str] | None = None) -> tuple[str, bool]:
        """What `args` print through a pipe, and whether the memo answered."""
        ran = self.run(*args, env=env)
        assert ran.code == 0, ran.err[-600:]
        return ran.out, ran.memo

    def to_file(self, *args: str, env: dict[str, str] | None = None) -> str:
        """What a full run of `args` prints (its stdout a private file)."""
        ran = self.run(*args, env=env, piped=False)
        assert ran.code == 0, ran.err[-600:]
        assert not ran.memo  # a file is never answered from the memo
        return ran.out

    def enter(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """This process takes the world's environment and folder (for in-process tests)."""
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(self.folder)

    def close(self) -> None:
        self.admin("lock")
        shutil.rmtree(self.runtime, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.close()


ENV = ("env", "--project", "work", "--shell", "bash")


def test_a_second_run_is_answered_from_the_memo(world: World) -> None:
    first, memo = world.piped(*ENV)
    assert not memo and world.keys["main"] in first
    second, memo = world.piped(*ENV)
    assert memo and second == first == world.to_file(*ENV)
    key_first, memo = world.piped("get", "relay")
    assert not memo and key_first == world.keys["relay"] + "\n"
    assert world.piped("get", "relay") == (key_first, True)


def test_an_answer_from_the_memo_imports_almost_nothing(world: World) -> None:
    world.piped(*ENV)

    def loaded(code: str, *args: str) -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code, *args],
            capture_output=True,
            text=True,
            env=world.env,
            cwd=world.folder,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-600:]
        if args:
            assert world.keys["main"] in proc.stdout
        lines = proc.stderr.splitlines()
        return {line.rsplit("|", 1)[1].strip() for line in lines if "|" in line}

    # what the console script does, minus what the interpreter loads anyway (this venv's
    # editable-install finder loads re and pathlib for everyone; a regular install does not)
    added = loaded("from vault.cli.main import main; main()", *ENV) - loaded("pass")
    heavy = ("json", "re", "enum", "pathlib", "vault.model", "vault.export", "typing", "click")
    assert (
        sorted(m for m in added if m in heavy or m.startswith(tuple(h + "." for h in heavy))) == []
    )


def _add_and_activate(world: World) -> None:
    world.admin.add("fresh", make_key(), "--project", "work", "--activate")


def _config_base_url(world: World) -> None:
    (world.admin.home / "config.toml").write_text('default_base_url = "https://relay.example/v1"\n')


def _same_size_edit_same_mtime(world: World) -> None:
    # an in-place edit that keeps the size and the modification time: the digest sees it
    config = world.admin.home / "config.toml"
    config.write_text('default_base_url = "https://relay.example/v1"\n')
    world.piped(*ENV)
    world.piped(*ENV)
    before = config.stat()
    with config.open("r+") as handle:
        handle.write('default_base_url = "https://relay.example/v2"\n')
    os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))


def _environment_variable(world: World) -> None:
    world.env = {**world.env, "KEYVAULT_TEAM_PIN": ""}  # read by every open, even when empty


CHANGES: dict[str, Callable[[World], None]] = {
    "another key activated (vault.age)": _add_and_activate,
    "config.toml created": _config_base_url,
    "config.toml edited in place, same size and mtime": _same_size_edit_same_mtime,
    "a variable env reads set": _environment_variable,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_change_is_seen(world: World, change: Callable[[World], None]) -> None:
    world.piped(*ENV)
    assert world.piped(*ENV)[1]
    change(world)
    after, memo = world.piped(*ENV)
    assert not memo
    assert after == world.to_file(*ENV)
    assert world.piped(*ENV) == (after, True)


def test_project_files_above_the_folder_are_followed(world: World) -> None:
    # `env` without --project: the nearest .keyvault.toml decides, wherever it appears
    plain = ("env", "--shell", "bash")
    top = world.tmp / "repo" / ".keyvault.toml"
    top.write_text('project = "work"\n')
    assert world.keys["main"] in world.piped(*plain)[0]
    assert world.piped(*plain)[1]
    nearer = world.folder / ".keyvault.toml"
    nearer.write_text('project = "relay"\n')
    after, memo = world.piped(*plain)
    assert not memo and world.keys["relay"] in after and "https://r.example/v1" in after
    nearer.unlink()
    after, memo = world.piped(*plain)
    assert not memo and world.keys["main"] in after and "OPENAI_BASE_URL" in after
    top.write_text('project = "relay"\n')  # same size as before
    after, memo = world.piped(*plain)
    assert not memo and world.keys["relay"] in after


def test_the_shell_env_writes_for_is_followed(world: World) -> None:
    # without --shell, the parent process (then $SHELL) picks the syntax
    fish = require_tool("fish")
    bash = require_tool("bash")
    plain = ("env", "--project", "work")
    bash_text = world.piped(*plain)[0]
    assert world.piped(*plain) == (bash_text, True)
    fish_env = {**world.env, "SHELL": fish}
    fish_text, memo = world.piped(*plain, env=fish_env)
    assert not memo and "set -gx OPENAI_API_KEY" in fish_text
    command = f"{sys.executable} -m vault env --project work | cat"
    for shell, expected in ((fish, "set -gx"), (bash, "export OPENAI_API_KEY")):
        for _ in range(2):  # the second run may come from the memo: the same words
            proc = subprocess.run(
                [shell, "-c", command],
                capture_output=True,
                text=True,
                env={**world.env, "SHELL": "/bin/sh"},
                cwd=world.folder,
                timeout=60,
                check=True,
            )
            assert expected in proc.stdout


def test_lock_drops_every_entry(world: World) -> None:
    world.piped(*ENV)
    assert world.piped(*ENV)[1]
    world.admin.ok("lock")
    world.admin.ok("unlock", "--ttl", "10m")
    assert not world.piped(*ENV)[1]


def test_an_upgrade_of_keyvault_is_a_full_run(world: World, tmp_path: Path) -> None:
    copy = tmp_path / "install"
    shutil.copytree(REPO / "vault", copy / "vault", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**world.env, "PYTHONPATH": str(copy)}
    first = world.piped(*ENV, env=env)[0]
    assert world.piped(*ENV, env=env) == (first, True)
    module = copy / "vault" / "export" / "shells.py"
    module.write_text(module.read_text() + "\n# a new version\n")
    assert world.piped(*ENV, env=env) == (first, False)


def test_a_run_that_writes_a_file_keeps_no_entry(world: World) -> None:
    # the first open after the trust pin is gone writes it again: that run keeps no entry
    pins = Path(world.env["XDG_STATE_HOME"]) / "keyvault" / "trust"
    shutil.rmtree(pins)
    assert not world.piped(*ENV)[1]
    assert any(pins.iterdir())
    assert not world.piped(*ENV)[1]  # the pin is there now: this run keeps the entry
    assert world.piped(*ENV)[1]


def test_a_terminal_or_a_file_is_never_answered_from_the_memo(world: World) -> None:
    text = world.piped(*ENV)[0]
    assert world.piped(*ENV)[1]
    assert world.to_file(*ENV) == text  # to_file asserts a full run
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "vault", *ENV],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            env=world.env,
            cwd=world.folder,
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0 and DOCUMENT in proc.stderr
    assert "these lines are for your shell to run" in proc.stderr  # the warning, every time


def test_a_damaged_or_foreign_entry_means_a_full_run(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = world.piped(*ENV)[0]
    world.enter(monkeypatch)
    memo = _memo_of(ENV, monkeypatch)
    for garbage in (b"\xff" * 40, b"\x00\x00\x00\x05hello", b"\x00\x00\x10\x00short"):
        assert exchange_frames(memo.agent, PUT, memo.key + garbage) is not None
        assert world.piped(*ENV) == (text, False)
    # the full run kept a good entry in place of the garbage
    assert exchange_frames(memo.agent, GET, memo.key)[0] == HIT


def _memo_of(argv: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> Memo:
    """The memo of `argv` in this process (its environment and folder set by the caller)."""
    read, write = os.pipe()  # memo_for answers only when stdout is a pipe

    class Piped:
        def fileno(self) -> int:
            return write

    with monkeypatch.context() as patch:
        patch.setattr(sys, "stdout", Piped())
        memo = memo_for(list(argv), None)
    os.close(read)
    os.close(write)
    assert memo is not None
    return memo


def test_a_run_that_warns_keeps_no_entry(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # in this process, against the real agent: a warning is printed every time, never kept
    world.enter(monkeypatch)
    from vault.cli import output
    from vault.cli.report import warn

    memo = _memo_of(("env", "--in-process-test"), monkeypatch)
    printed: list[str] = []
    monkeypatch.setattr(sys, "stdout", _Sink(printed))

    def warns() -> None:
        output.write_text("export A=1\n")
        warn("something the user must see each time")

    recorded(memo, warns)
    assert not memo.replay()

    def quiet() -> None:
        output.write_text("export A=1\n")

    recorded(memo, quiet)
    printed.clear()
    assert memo.replay()
    assert printed == ["export A=1\n"]


def test_everything_a_full_run_looks_at_is_a_dependency(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # stat() without open() leaves no audit event: the memo lists those paths itself (the
    # vault home, the project files up the tree); this proves the list is whole for every
    # everyday form, in a project folder and out of one
    from vault.cli import everyday

    world.enter(monkeypatch)
    (world.tmp / "repo" / ".keyvault.toml").write_text('project = "relay"\n')
    (world.admin.home / "config.toml").write_text('default_base_url = "https://c.example/v1"\n')
    monkeypatch.setattr(sys, "stdout", _Sink([]))
    looked: list[str] = []

    def noting(real: Callable[..., object]) -> Callable[..., object]:
        def look(path: object = ".", *args: object, **kwargs: object) -> object:
            looked.append(os.fspath(path) if isinstance(path, (str, os.PathLike)) else "")
            return real(path, *args, **kwargs)

        return look

    # every call that learns about a path without opening it (the import system calls the
    # posix module's own, which are not these)
    looking = ("stat", "lstat", "access", "listdir", "scandir", "readlink")

    forms = {
        ENV: lambda: everyday.env(everyday.command_context(None, "work"), "bash", None, False),
        ("env",): lambda: everyday.env(everyday.command_context(None), None, None, False),
        ("get", "main"): lambda: everyday.get(everyday.command_context(None), "main"),
        ("get",): lambda: everyday.get(everyday.command_context(None), None),
    }
    for argv, run in forms.items():
        memo = _memo_of(argv, monkeypatch)
        looked.clear()
        with monkeypatch.context() as patch:
            for name in looking:
                patch.setattr(os, name, noting(getattr(os, name)))
            seen = recorded(memo, run)
        assert not seen.spoiled, argv
        session_folder = str(Path(memo.agent).parent)
        covered = {*seen.opened, *memo.looked_at(), memo.agent}
        missed = {
            path
            for path in looked
            if path
            and path not in covered
            and not path.endswith((".py", ".pyc"))
            and not session_folder.startswith(path)  # the session folder's own checks
            # a folder on the way to a dependency: replacing it changes the status (device,
            # inode) the dependency is compared by
            and not any(dependency.startswith(path.rstrip("/") + "/") for dependency in covered)
        }
        assert missed == set(), argv


class _Sink:
    def __init__(self, printed: list[str]) -> None:
        self.printed = printed
        self.buffer = io.BytesIO()

    def write(self, text: str) -> int:
        self.printed.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_the_agent_keeps_a_bounded_number_of_entries() -> None:
    store = MemoStore()
    keys = [bytes([i]) * 32 for i in range(MEMO_ENTRIES + 1)]
    for key in keys:
        store.put(key, b"entry")
    assert store.get(keys[0]) is None  # the least recently used went first
    assert store.get(keys[1]) == b"entry"
    store.put(keys[0], b"again")  # keys[2] is now the oldest: keys[1] was just used
    assert store.get(keys[2]) is None and store.get(keys[1]) == b"entry"
    store.clear()
    assert store.get(keys[1]) is None


# --- the invariant, under random changes ------------------------------------------------------


PROJECTS = ("work", "relay", "spare")


class MemoAgrees(RuleBasedStateMachine):
    """Random changes to the vault, config.toml, the project files and the environment; after
    each, `env` and `get` through a pipe (the memo when it may answer) print exactly what a
    full run prints, and each command line twice in a row prints the same."""

    answered_from_memo = 0

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="kvmemo-sm-"))
        self.world = World(self.tmp)
        self.names = ["main", "relay"]
        self.counter = itertools.count()

    def teardown(self) -> None:
        self.world.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    @rule(project=st.sampled_from(PROJECTS), activate=st.booleans())
    def add(self, project: str, activate: bool) -> None:
        name = f"k{next(self.counter)}"
        self.world.admin.add(name, make_key(), "--project", project, *(["--activate"] * activate))
        self.names.append(name)

    @rule(data=st.data(), url=st.sampled_from(["", "https://a.example/v1", "https://b.example/v1"]))
    def edit_base_url(self, data: st.DataObject, url: str) -> None:
        self.world.admin.ok("edit", data.draw(st.sampled_from(self.names)), "--base-url", url)

    @rule(data=st.data(), status=st.sampled_from(["active", "standby"]))
    def edit_status(self, data: st.DataObject, status: str) -> None:
        self.world.admin.ok("edit", data.draw(st.sampled_from(self.names)), "--status", status)

    @rule(where=st.sampled_from(["here", "above"]), project=st.sampled_from((*PROJECTS, None)))
    def project_file(self, where: str, project: str | None) -> None:
        folder = self.world.folder if where == "here" else self.world.folder.parent
        path = folder / ".keyvault.toml"
        if project is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text(f'project = "{project}"\n')

    @rule(project=st.sampled_from((*PROJECTS, None)), url=st.booleans())
    def config(self, project: str | None, url: bool) -> None:
        lines = [f'default_project = "{project}"'] if project else []
        lines += ['default_base_url = "https://config.example/v1"'] if url else []
        (self.world.admin.home / "config.toml").write_text("".join(f"{ln}\n" for ln in lines))

    @rule(shell=st.sampled_from(["/bin/bash", "/usr/bin/fish", "/bin/zsh"]))
    def login_shell(self, shell: str) -> None:
        self.world.env = {**self.world.env, "SHELL": shell}

    @invariant()
    def piped_equals_full(self) -> None:
        # failures too: no project chosen, no active key (the memo keeps only successes)
        for args in (("env",), ("env", "--project", "relay", "--shell", "fish"), ("get",)):
            full = self.outcome(args, piped=False)
            assert self.outcome(args, piped=True) == full, args
            assert self.outcome(args, piped=True) == full, args

    def outcome(self, args: tuple[str, ...], *, piped: bool) -> tuple[int, str]:
        ran = self.world.run(*args, piped=piped)
        if piped and ran.memo:
            MemoAgrees.answered_from_memo += 1
        return ran.code, ran.out


@pytest.mark.slow
def test_the_memo_agrees_with_full_runs_under_random_changes() -> None:
    run_state_machine_as_test(
        MemoAgrees,
        settings=settings(
            max_examples=3,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    assert MemoAgrees.answered_from_memo > 0  # the memo did answer along the way


# --- every consumer agrees, with the memo answering -----------------------------------------

PRINT_OPENAI = "".join(
    f'printf "%s=%s\\n" {name} "${{{name}-<unset>}}"\n'
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")
)


@pytest.mark.slow
def test_every_consumer_agrees_after_a_switch_a_rotation_and_an_activation(
    world: World,
) -> None:
    """After a project switch, a rotation and `add --activate`: `env` (evaluated in bash,
    through `$(…)`, where the memo answers), `exec` (unmasked, to read the key), `get`
    through a pipe, the hook and the registered .env file give the same key and the same
    OPENAI_* set, with nothing left of what the shell held before."""
    dotenv = world.tmp / "work.env"
    world.admin.ok("dotenv", str(dotenv), "--project", "work")
    world.admin.add("spare", make_key(), "--project", "work", "--standby")
    project_file = world.folder / ".keyvault.toml"
    keyvault = f"{sys.executable} -m vault"
    unmasked = f"{keyvault} exec --no-masking"  # masking would hide the key we compare
    stale = {"OPENAI_BASE_URL": "https://stale.example/v1", "OPENAI_ORG_ID": "org-stale"}

    def in_bash(script: str) -> dict[str, str]:
        done = subprocess.run(
            ["bash", "--norc", "-c", script + PRINT_OPENAI],
            capture_output=True,
            text=True,
            env={**world.env, **stale},
            cwd=world.folder,
            timeout=60,
            check=True,
        )
        return dict(line.split("=", 1) for line in done.stdout.splitlines())

    def consumers() -> dict[str, dict[str, str]]:
        seen = {
            "env": in_bash(f'eval "$({keyvault} env --shell bash)"\n'),
            "env again (memo)": in_bash(f'eval "$({keyvault} env --shell bash)"\n'),
            "exec": in_bash(f"exec {unmasked} -- bash --norc -c '{PRINT_OPENAI}'\n#"),
            "hook": in_bash(f'eval "$({keyvault} hook-env --shell bash)"\n'),
        }
        get = world.piped("get")[0].strip()
        tails = {name: found["OPENAI_API_KEY"][-6:] for name, found in seen.items()}
        assert set(tails.values()) == {get[-6:]}, (tails, get[-6:])
        return seen

    for step in ("switch to relay", "back to work", "rotate", "add --activate"):
        if step == "switch to relay":
            project_file.write_text('project = "relay"\n')
        elif step == "back to work":
            project_file.write_text('project = "work"\n')
        elif step == "rotate":
            world.admin.ok("rotate", "--project", "work", "--to", "spare", "--no-check")
        else:
            world.admin.add("newest", make_key(), "--project", "work", "--activate")
        seen = consumers()
        first = seen["env"]
        assert all(found == first for found in seen.values()), (step, seen)
        assert "stale" not in "".join(first.values()), step  # nothing left from before
        if step != "switch to relay":
            written = dotenv.read_text()
            assert f"OPENAI_API_KEY={first['OPENAI_API_KEY']}" in written, step
            assert "OPENAI_BASE_URL" not in written and first["OPENAI_BASE_URL"] == "<unset>"
    assert world.piped("env", "--shell", "bash")[1]  # the memo did answer along the way
