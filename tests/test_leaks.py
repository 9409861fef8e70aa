"""A canary key goes through every command, every failure layer and a crash, and never leaks.

The canary is the stored key most likely to leak: the project's active key, which the fake
OpenAI server answers with 401 (error bodies are where keys get echoed). Every command in
`vault.cli.app.COMMANDS` at run time is run (those without a row below get a generic
`--help`, bare and `--json` run), with `KEYVAULT_DEBUG=1` set (keyvault has no logging at
all: `test_keyvault_has_no_logging_to_leak_through`). Then the canary must not be on stdout
or stderr (except where printing it is the command's purpose), nor in the history, the
config, temp files, the lock file or any process's argv. The owner's passphrase and identity
are held to the same rule.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fake_openai import FakeOpenAI
from tests.helpers import CHEAP_LOG_N, PASSPHRASE, REPO, Cli, Result, make_cli, make_key
from vault import age
from vault.cli.app import COMMANDS
from vault.model import codec
from vault.model import codec as document
from vault.model.secret import Secret
from vault.session.identity import UnlockSettings
from vault.session.unlock import Unlocker
from vault.store.config import Paths
from vault.store.keyvault import Keyvault

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

PR_GET_DUMPABLE = 3
UNSAFE = r"[\x00-\x08\x0b-\x1f\x7f\u202a-\u202e]"  # what a terminal obeys


@dataclass
class Canary:
    cli: Cli
    key: str
    identity: str
    project: Path
    tmpdir: Path
    runtime: Path
    github_env: Path
    ran: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {
            **self.cli.env,
            "TMPDIR": str(self.tmpdir),
            "KEYVAULT_DEBUG": "1",
            "GITHUB_ENV": str(self.github_env),
        }

    def run(
        self,
        *args: str,
        input: str = "",
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        stdout: int | None = None,
        preexec: Callable[[], None] | None = None,
    ) -> Result:
        self.ran.append(args)
        proc = subprocess.run(
            [sys.executable, "-m", "vault", *args],
            input=input.encode(),
            env={**self.env, **(env or {})},
            cwd=cwd or self.project,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=60,
            start_new_session=True,
            check=False,
            preexec_fn=preexec,
        )
        out = (proc.stdout or b"").decode("utf-8", "replace")
        return Result(proc.returncode, out, proc.stderr.decode("utf-8", "replace"))

    def run_many(self, many: Sequence[Sequence[str]], **kw: Any) -> list[Result]:
        """Independent commands, four at a time (they are mostly waiting on startup)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda args: self.run(*args, **kw), many))


@dataclass(frozen=True)
class Template:
    home: Path
    key: str
    identity: str


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(scope="module")
def template(server: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Template:
    """Built once: the canary (answered with 401) active in project p, a healthy spare."""
    root = tmp_path_factory.mktemp("leaks")
    cli = make_cli(root / "kv", root)
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    key = server.add_key("invalid", key=make_key())
    spare = server.add_key("ok", key=make_key())
    base = ("--base-url", server.base_url, "--phone", "+447911123456")
    cli.ok("add", "canary", "--project", "p", *base, "--note", "the canary", input=key)
    cli.ok("add", "spare", "--project", "p", "--standby", *base, input=spare)
    identity = cli.ok("identity", "export").out.strip()
    (cli.home / "config.toml").write_text("phone_slots = 2\n")  # searched like every file
    (cli.home / "config.toml").chmod(0o600)
    return Template(cli.home, key, identity)


@pytest.fixture
def canary(cli: Cli, template: Template, tmp_path: Path) -> Iterator[Canary]:
    """A private copy of the template vault, a git project folder and an empty TMPDIR."""
    shutil.copytree(template.home, cli.home)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".keyvault.toml").write_text('project = "p"\n')
    subprocess.run(["git", "init", "-q", str(project)], check=True)  # for `scan --git`
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    runtime = Path(cli.env["XDG_RUNTIME_DIR"])
    yield Canary(
        cli, template.key, template.identity, project, tmpdir, runtime, tmp_path / "github_env"
    )
    cli("lock")


def secrets_of(c: Canary) -> dict[str, str]:
    return {"canary": c.key, "passphrase": PASSPHRASE, "identity": c.identity}


def assert_no_leak(
    c: Canary, args: Sequence[str], result: Result, *, stdout_may_hold: Sequence[str] = ()
) -> None:
    for what, value in secrets_of(c).items():
        assert value not in result.err, f"{what} on stderr of {args}"
        assert value[8:40] not in result.err, f"part of {what} on stderr of {args}"
        if what not in stdout_may_hold:
            assert value not in result.out, f"{what} on stdout of {args}"


# Commands whose purpose is to print a secret on stdout, and which one.
PURPOSE: list[tuple[tuple[str, ...], str]] = [
    (("get", "canary"), "canary"),
    (("get", "--project", "p"), "canary"),
    (("show", "canary", "--reveal"), "canary"),
    (("show", "canary", "--reveal", "--json"), "canary"),
    (("env", "--project", "p", "--shell", "bash"), "canary"),
    (("env", "--shell", "fish"), "canary"),
    (("env", "--shell", "powershell"), "canary"),
    (("env", "--format", "json"), "canary"),
    (("env", "--format", "dotenv"), "canary"),
    (("hook-env", "--shell", "bash"), "canary"),
    (("identity", "export"), "identity"),
]
READS: list[tuple[str, ...]] = [
    ("list",),
    ("list", "--json"),
    ("show", "canary"),
    ("show", "canary", "--json"),
    ("phones",),
    ("phones", "--json"),
    ("log",),
    ("log", "--json"),
    ("log", "canary"),
    ("identity", "public"),
    ("recipients", "list"),
    ("recipients", "list", "--json"),
    ("status",),
    ("status", "--json"),
    ("hook", "bash"),
    ("completion", "bash"),
    ("env", "--unset", "--shell", "bash"),
    ("doctor",),
    ("doctor", "--json"),
    ("scan", "."),
    ("scan", "--json", "--git", "."),
    ("check", "--all", "--json"),
    ("check", "canary", "--deep"),
    ("usage",),
    ("usage", "--json"),
    ("rotate", "--project", "p", "--dry-run"),
    ("rotate", "--project", "p", "--dry-run", "--json"),
    ("exec", "--project", "p", "--", "true"),
    # the command prints the key; masking keeps it off keyvault's output
    (
        "exec",
        "--project",
        "p",
        "--",
        "sh",
        "-c",
        'echo "$OPENAI_API_KEY"; echo "$OPENAI_API_KEY" >&2',
    ),
    ("list", "--wide"),
    ("list", "--sort", "health", "--tag", "x"),
    ("cards",),
    ("cards", "--json"),
    ("ci", "gitlab", "--output", "report.env"),
    ("dotenv", ".env"),
    ("import", ".env", "--dry-run"),
    ("import", ".env", "--json"),
    ("--help",),
    ("--version",),
]
WRITES: list[tuple[tuple[str, ...], str, dict[str, str]]] = [
    (("add", "third", "--project", "q"), make_key(), {}),
    (("edit", "canary", "--note", "edited"), "", {}),
    (("edit", "third", "--secret"), make_key(), {}),
    (("recipients", "new-ci", "ci-bot"), "", {}),
    (("recipients", "rm", "ci-bot"), "", {}),
    (("unlock", "--ttl", "5m"), "", {}),
    (("lock",), "", {}),
    (("rotate", "--project", "p"), "", {}),
    (("rotate", "--project", "p", "--to", "canary", "--no-check"), "", {}),
    (("passwd", "--work-factor", "10"), "", {"KEYVAULT_NEW_PASSPHRASE": PASSPHRASE + " 2"}),
    (
        ("passwd", "--work-factor", "10"),
        "",
        {"KEYVAULT_PASSPHRASE": PASSPHRASE + " 2", "KEYVAULT_NEW_PASSPHRASE": PASSPHRASE},
    ),
    (("edit", "canary", "--tag", "x"), "", {}),
    (("edit", "canary", "--untag", "x"), "", {}),
    (("phones", "add", "0044 7911 123456"), "", {}),
    (("rm", "third", "--yes"), "", {}),
    (("init",), "", {}),  # refused: the vault exists
]


@pytest.mark.slow
def test_every_command_keeps_the_canary_out_of_its_output(canary: Canary) -> None:
    reads = list(zip(READS, canary.run_many(READS), strict=True))
    purpose_args = [args for args, _ in PURPOSE]
    purposeful = list(zip(purpose_args, canary.run_many(purpose_args), strict=True))
    for args, result in reads:
        assert_no_leak(canary, args, result)
        assert "Traceback" not in result.err, (args, result.err)
    for (args, result), (_, what) in zip(purposeful, PURPOSE, strict=True):
        assert result.code == 0, (args, result.err)
        assert secrets_of(canary)[what] in result.out  # it is the command's purpose
        assert_no_leak(canary, args, result, stdout_may_hold=[what])

    github = canary.run("ci", "github", "--project", "p")
    assert github.code == 0, github.err
    masks = [line for line in github.out.splitlines() if canary.key in line]
    assert masks == [f"::add-mask::{canary.key}"]  # how a runner learns what to hide
    assert_no_leak(
        canary, ("ci", "github"), Result(0, github.out.replace(masks[0], ""), github.err)
    )

    for args, stdin, env in WRITES:
        assert_no_leak(canary, args, canary.run(*args, input=stdin, env=env))
    generic = [name for name in COMMANDS if not any(a and a[0] == name for a in canary.ran)]
    for name in generic:
        for args in ((name, "--help"), (name,), (name, "--json")):
            assert_no_leak(canary, args, canary.run(*args))
    assert len(canary.ran) >= 57  # docs/security.md quotes this figure
    assert_nothing_at_rest(canary)


def assert_nothing_at_rest(c: Canary) -> None:
    """No plaintext copy anywhere keyvault writes, except the .env files it was asked for."""
    purpose = {c.project / ".env", c.project / "report.env", c.github_env}
    roots = [c.cli.home, c.tmpdir, c.runtime, c.project]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path not in purpose:
                data = path.read_bytes()
                for what, value in secrets_of(c).items():
                    assert value.encode() not in data, f"{what} in {path}"
    assert list(c.tmpdir.iterdir()) == []
    kv = Keyvault(
        Paths(c.cli.home), Unlocker(settings=UnlockSettings(passphrase=Secret(PASSPHRASE)))
    )
    doc = kv.read()
    written = json.loads(document.dumps(doc))
    metadata = json.dumps(
        {
            "history": written["history"],
            "exports": written["exports"],
            "extra": doc.extra,
            "entries": [codec.entry_json(e) for e in doc.entries],
        }
    )
    assert c.key not in metadata and c.key[8:40] not in metadata
    assert any(e.action == "add" for e in doc.history)  # the history was really read


# --- forced failures in every layer -------------------------------------------------------


@pytest.mark.slow
def test_bad_input_never_echoes_the_key(canary: Canary) -> None:
    key = canary.key
    cases = [
        (("add", "x"), f"Bearer {key}"),
        (("add", "x"), f"{key} {key}"),
        (("add", "x"), f"{key}\n{key}"),
        (("add", "x"), f"{key}é"),
        (("add", "x"), f"{key}\x1b[0m"),
        (("add", "dup"), key),  # the same key under another name
        (("add", "x", "--phone", "+447911123456"), make_key()),  # the phone is full
        (("edit", "spare", "--secret"), key),
        (("edit", "spare", "--secret"), f"Bearer {key}"),
        (("add", "x", "--provider", "other", "--project", "p", "--activate"), "sk-admin-" + key),
        (("get", "nope"), ""),
        (("env", "--shell", "cmd", "--project", "nope"), ""),
    ]
    for args, stdin in cases:
        result = canary.run(*args, input=stdin)
        assert result.code != 0, (args, result.out)
        assert_no_leak(canary, args, result)
        assert result.out == ""


FAILING_READS: list[tuple[str, ...]] = [
    ("list",),
    ("show", "canary", "--reveal"),
    ("get", "canary"),
    ("env", "--shell", "bash"),
    ("exec", "--", "true"),
    ("dotenv", ".env"),
    ("ci", "gitlab"),
    ("scan", "."),
    ("check", "--all"),
    ("rotate", "--project", "p", "--dry-run"),
    ("log", "--json"),
    ("add", "y"),
    ("unlock",),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("layer", "env", "code"),
    [
        ("wrong passphrase", {"KEYVAULT_PASSPHRASE": "wrong but long enough"}, 3),
        ("no way to ask", {"KEYVAULT_PASSPHRASE": ""}, 3),
        ("identity is the canary", {"KEYVAULT_IDENTITY": "@canary@"}, 2),
        (
            "passphrase file holds the canary",
            {"KEYVAULT_PASSPHRASE": "", "KEYVAULT_PASSPHRASE_FILE": "@file@"},
            3,
        ),
    ],
)
def test_unlock_failures_never_echo_a_secret(
    canary: Canary, layer: str, env: dict[str, str], code: int
) -> None:
    wrong = canary.tmpdir.parent / "wrong-passphrase"
    wrong.write_text(canary.key + "\n")
    env = {
        k: v.replace("@canary@", canary.key).replace("@file@", str(wrong)) for k, v in env.items()
    }
    results = canary.run_many(FAILING_READS, input=make_key(), env=env)
    for args, result in zip(FAILING_READS, results, strict=True):
        assert result.code == code, (layer, args, result.err)
        assert result.out == ""
        assert_no_leak(canary, args, result)
        assert canary.key[10:30] not in result.err


@pytest.mark.slow
def test_a_damaged_vault_never_leaks(canary: Canary) -> None:
    vault = canary.cli.home / "vault.age"
    data = bytearray(vault.read_bytes())
    data[-20] ^= 0x01
    vault.write_bytes(bytes(data))
    results = canary.run_many(FAILING_READS, input=make_key())
    for args, result in zip(FAILING_READS, results, strict=True):
        assert result.code == 4, (args, result.err)
        assert result.out == ""
        assert_no_leak(canary, args, result)


@pytest.mark.slow
def test_a_hostile_document_never_leaks_or_escapes(canary: Canary) -> None:
    """A vault sealed by a teammate: malformed fields and terminal escapes in metadata."""
    identity = age.X25519Identity.parse(canary.identity)
    kv = Keyvault(
        Paths(canary.cli.home), Unlocker(settings=UnlockSettings(identity=Secret(canary.identity)))
    )
    doc = kv.read()
    raw = json.loads(document.dumps(doc))
    hostile = "\x1b]52;c;cHduZWQ=\x07\x1b[2J\u202eevil\r\n"
    raw["entries"][0]["note"] = hostile
    raw["entries"][0]["project_id"] = hostile
    raw["history"].append({"at": hostile, "action": hostile, "name": hostile})
    sealed = age.encrypt(json.dumps(raw).encode(), [identity.recipient()])
    (canary.cli.home / "vault.age").write_bytes(sealed)
    for args in (("list",), ("show", "canary"), ("log",), ("phones",), ("doctor",)):
        result = canary.run(*args)
        assert_no_leak(canary, args, result)
        assert not re.search(UNSAFE, result.out), args
    raw["entries"][0]["status"] = "bogus"
    raw["entries"][1]["secret"] = 12345
    (canary.cli.home / "vault.age").write_bytes(
        age.encrypt(json.dumps(raw).encode(), [identity.recipient()])
    )
    for args in (("list",), ("get", "canary"), ("show", "canary", "--reveal")):
        result = canary.run(*args)
        assert result.code == 4 and result.out == ""
        assert_no_leak(canary, args, result)


@pytest.mark.slow
def test_a_malicious_relay_cannot_extract_or_inject(canary: Canary, server: FakeOpenAI) -> None:
    """A relay that echoes the key with terminal escapes in its errors, and one that
    redirects to a host of its choosing: `check` shows neither the key nor the escapes,
    and the redirect target is never sent anything."""
    with FakeOpenAI() as elsewhere:
        echo_key, redirect_key = make_key(), make_key()
        hostile = f"invalid key {echo_key} \x1b]0;pwned\x07\x1b[2J\u202e{echo_key[::-1]}"
        server.add_key(
            "relay",
            key=echo_key,
            status=401,
            error_type="invalid_request_error",
            error_code="invalid_api_key",
            message=hostile,
        )
        server.add_key("redirect", key=redirect_key, location=f"{elsewhere.base_url}/models")
        base = ("--base-url", server.base_url, "--project", "relay", "--provider", "relay")
        canary.run("add", "echo", *base, input=echo_key)
        canary.run("add", "hop", "--standby", *base, input=redirect_key)
        for args in (
            ("check", "echo", "hop"),
            ("check", "echo", "hop", "--json"),
            ("list",),
            ("show", "echo"),
            ("log",),
        ):
            result = canary.run(*args)
            for text in (result.out, result.err):
                assert echo_key not in text and redirect_key not in text, args
                assert echo_key[10:40] not in text, args
                # JSON escapes control characters; bidi marks pass (for machines, not eyes)
                unsafe = r"[\x00-\x08\x0b-\x1f\x7f]" if "--json" in args else UNSAFE
                assert not re.search(unsafe, text), args
        assert server.count(echo_key) >= 1 and server.count(redirect_key) >= 1
        assert sum(elsewhere.stats.by_key.values()) == 0  # no Authorization header left home


def limit_file_size() -> None:
    """An injected I/O failure: writes past 64 bytes fail with EFBIG (SIGXFSZ ignored)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))


@pytest.mark.slow
def test_io_failures_never_leak(
    canary: Canary, snapshot: Callable[[Path], dict[str, bytes]]
) -> None:
    before = snapshot(canary.cli.home)
    for args, stdin in [
        (("add", "z"), make_key()),
        (("edit", "canary", "--note", "n"), ""),
        (("dotenv", "big.env"), ""),
        (("ci", "gitlab"), ""),
    ]:
        result = canary.run(*args, input=stdin, preexec=limit_file_size)
        assert result.code == 1, (args, result.err)
        assert "file too large" in result.err.lower()
        assert_no_leak(canary, args, result)
    assert snapshot(canary.cli.home) == before
    assert not (canary.project / "big.env").exists()


@pytest.mark.slow
def test_crashes_with_a_traceback_never_print_the_key(canary: Canary) -> None:
    """Unexpected exceptions: output to a full device after the key is decrypted, and a
    vault file that is a folder. Python tracebacks show source lines and messages only."""
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        for args in (
            ("get", "canary"),
            ("show", "canary", "--reveal"),
            ("env", "--shell", "bash"),
            ("identity", "export"),
        ):
            result = canary.run(*args, stdout=full)
            assert result.code != 0
            assert_no_leak(canary, args, result)
    finally:
        os.close(full)
    vault = canary.cli.home / "vault.age"
    vault.rename(canary.cli.home / "moved")
    vault.mkdir()
    for args in (("list",), ("get", "canary"), ("add", "w")):
        result = canary.run(*args, input=canary.key)
        assert result.code != 0 and result.out == ""
        assert_no_leak(canary, args, result)


def test_a_secret_never_prints_itself() -> None:
    """The `Secret` type: every accidental way of turning it into text shows the mask."""
    key = make_key()
    secret = Secret(key)
    shown = [
        str(secret),
        repr(secret),
        f"{secret}",
        f"{secret!r}",
        "%s" % secret,  # noqa: UP031
        "{}".format(secret),  # noqa: UP032
        repr([secret]),
        repr({"k": secret}),
        f"{secret:>200}",
    ]
    assert all(key not in text and key[8:-4] not in text for text in shown)
    assert secret.masked == key[:8] + "…" + key[-4:]
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps(secret)


def test_keyvault_has_no_logging_to_leak_through() -> None:
    """No module logs, installs an excepthook, or prints locals with a traceback."""
    pattern = re.compile(
        r"import logging|getLogger|excepthook|capture_locals|f_locals|"
        r"faulthandler|print_exc|format_exc"
    )
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "vault").rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- argv, core dumps and a lock that never comes free ------------------------------------


def all_cmdlines() -> dict[int, bytes]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "cmdline").read_bytes()
    return found


def children_of(parent: int) -> list[int]:
    """The pids whose parent is `parent` (field 4 of /proc/PID/stat, after the name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
    return found


def assert_argv_clean(c: Canary) -> None:
    for pid, cmdline in all_cmdlines().items():
        for what, value in secrets_of(c).items():
            assert value.encode() not in cmdline, f"{what} in argv of pid {pid}"


@pytest.mark.slow
def test_no_secret_in_any_argv_while_commands_run(canary: Canary) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "vault", "exec", "--project", "p", "--", "sleep", "3"],
        env=canary.env,
        cwd=canary.project,
        start_new_session=True,
    )
    try:
        # wait for the command to start under keyvault (exec masks output: keyvault stays
        # as its parent); a fixed pause can lose this race on a loaded machine
        deadline = time.monotonic() + 20
        while not _child_named(child.pid, b"sleep"):
            assert child.poll() is None and time.monotonic() < deadline, "sleep did not start"
            time.sleep(0.01)
        assert_argv_clean(canary)
        (command,) = children_of(child.pid)
        environ = Path(f"/proc/{command}/environ").read_bytes()
        assert canary.key.encode() in environ  # the child got it, by the only allowed route
    finally:
        child.kill()
        child.wait()
    assert canary.run("unlock", "--ttl", "1m").code == 0  # the agent holds the identity
    assert_argv_clean(canary)
    agents = [pid for pid, line in all_cmdlines().items() if b"vault.session.agent" in line]
    assert agents
    for pid in agents:
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except PermissionError:
            continue  # not root: an agent is not dumpable, so not even its own user reads it
        assert PASSPHRASE.encode() not in environ and canary.identity.encode() not in environ


def test_harden_process_disables_core_dumps() -> None:
    code = (
        "import ctypes, resource; from vault.cli.main import harden_process; harden_process();"
        f"dumpable = ctypes.CDLL(None).prctl({PR_GET_DUMPABLE}, 0, 0, 0, 0);"
        "print(dumpable, resource.getrlimit(resource.RLIMIT_CORE))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert done.stdout.split(None, 1) == ["0", "(0, 0)\n"]


@pytest.mark.slow
def test_lock_timeout_and_the_waiting_process(canary: Canary) -> None:
    """Hold vault.lock; writers wait (`lock_timeout`, 4 s here) and fail with exit 1, leaking
    nothing. Meanwhile the waiting keyvault process is checked: no core dumps, no secret in
    its argv."""
    import portalocker

    config = canary.cli.home / "config.toml"
    config.write_text((config.read_text() if config.exists() else "") + "lock_timeout = 4\n")

    new_key = canary.tmpdir.parent / "new-key"
    new_key.write_text(make_key())
    lock = (canary.cli.home / "vault.lock").open("r+b")
    portalocker.lock(lock, portalocker.LOCK_EX)
    with new_key.open("rb") as stdin:
        writers = [
            subprocess.Popen(
                [sys.executable, "-m", "vault", *args],
                env=canary.env,
                cwd=canary.project,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            for args in (
                ("add", "late"),
                ("edit", "canary", "--note", "late"),
                ("rm", "spare", "--yes"),
            )
        ]
    try:
        time.sleep(1.5)
        for proc in writers:
            assert proc.poll() is None  # waiting on the lock
            limits = Path(f"/proc/{proc.pid}/limits").read_text()
            assert re.search(r"Max core file size\s+0\s+0\s", limits)
        assert_argv_clean(canary)
        outputs = [proc.communicate(timeout=30) for proc in writers]
    finally:
        portalocker.unlock(lock)
        lock.close()
        for proc in writers:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    for proc, (out, err) in zip(writers, outputs, strict=True):
        assert proc.returncode == 1
        assert out == b""
        assert b"the vault is locked by" in err
        assert_no_leak(canary, ("locked",), Result(1, out.decode(), err.decode()))
    assert_nothing_at_rest(canary)


def _child_named(parent: int, name: bytes) -> bool:
    """Whether a child process of `parent` runs the program `name`."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_bytes().rsplit(b")", 1)[1].split()
            if int(fields[1]) == parent and (stat.parent / "cmdline").read_bytes().startswith(
                name + b"\0"
            ):
                return True
        except (OSError, IndexError, ValueError):
            continue
    return False
