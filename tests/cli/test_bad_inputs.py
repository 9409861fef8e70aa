"""Every bad input: one error line (+ one hint), the documented exit code, no traceback, no
secret in the output, and a vault that is byte-identical afterwards.

Most cases share one populated vault (module scope) because a refused command must not change
it; each case proves that with a snapshot. Cases that damage vault.age work on a copy.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import CHEAP_LOG_N, Cli, Result, make_cli, make_key
from vault import age

UK = "+447911123456"
US = "+14155552671"
Snapshot = Callable[[Path], dict[str, bytes]]


@dataclass
class Shared:
    cli: Cli
    keys: dict[str, str]
    identity: str

    def copy(self, dest: Path, **env: str) -> Cli:
        """A runner on a private copy of the shared vault (for cases that damage files)."""
        shutil.copytree(self.cli.home, dest)
        return Cli(dest, {**self.cli.env, "KEYVAULT_HOME": str(dest), **env})


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """main+spare fill the UK phone in `work`; home is in `home` on a US phone; adm is admin."""
    root = tmp_path_factory.mktemp("bad-inputs")
    runtime = Path(tempfile.mkdtemp(prefix="kvrt-", dir="/tmp"))
    cli = make_cli(root / "kv", runtime)
    cli.ok("init", "--work-factor", str(CHEAP_LOG_N))
    keys = {
        "main": cli.add("main", None, "--project", "work", "--phone", UK),
        "spare": cli.add("spare", None, "--project", "work", "--phone", UK),
        "home": cli.add("home", None, "--project", "home", "--phone", US),
        "adm": cli.add("adm", make_key("sk-admin-", 58), "--project", "ops"),
    }
    identity = cli.ok("identity", "export").out.strip()
    yield Shared(cli, keys, identity)
    shutil.rmtree(runtime, ignore_errors=True)


def check_refusal(result: Result, code: int, *secrets_: str) -> str:
    """The error contract; returns the error message (without the prefix)."""
    assert result.code == code, f"exit {result.code}, wanted {code}: {result.err}"
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.splitlines()
    assert 1 <= len(lines) <= 2, result.err
    assert lines[0].startswith("keyvault: error: "), result.err
    if len(lines) == 2:
        assert lines[1].startswith("keyvault: hint: "), result.err
    message = lines[0].removeprefix("keyvault: error: ")
    assert message == message.rstrip(".") and message[:1] == message[:1].lower(), message
    for secret in secrets_:
        for text in (result.out, result.err):
            assert secret not in text
            assert len(secret) < 40 or secret[10:30] not in text  # not even a fragment
    return message


# --- the table -----------------------------------------------------------------------------

CANARY = "canary"  # stdin placeholder: replaced by a fresh valid key that must never be echoed
FUTURE = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
# fmt: off
# (id, argv, stdin, exit code, words in the error)
CASES = [
    ("duplicate name", ["add", "main"], CANARY, 1, "already exists"),
    ("same secret twice", ["add", "again"], "key:main", 1, "already stored as 'main'"),
    ("phone without +", ["add", "x", "--phone", "07911123456"], CANARY, 2, "country code"),
    ("phone with letters", ["add", "x", "--phone", "+1 415 555 CALL"], CANARY, 2, "letters"),
    ("phone invalid", ["add", "x", "--phone", "+447700900123"], CANARY, 2, "not a valid number"),
    ("phone garbage", ["add", "x", "--phone", "+abc"], CANARY, 2, "letters"),
    ("phone full", ["add", "x", "--phone", "+44 7911 123456"], CANARY, 1,
     "already verified 2 keys (limit 2): main, spare"),
    ("date not iso", ["add", "x", "--created", "02/01/2025"], CANARY, 2, "not YYYY-MM-DD"),
    ("date in the future", ["add", "x", "--created", FUTURE], CANARY, 2, "in the future"),
    ("date 1999", ["add", "x", "--created", "1999-06-01"], CANARY, 2, "before any OpenAI key"),
    ("key with newline", ["add", "x"], "split-key", 2, "line break"),
    ("key with space", ["add", "x"], "spaced-key", 2, "spaces"),
    ("bearer key", ["add", "x"], "bearer-key", 2, "Bearer"),
    ("non-ascii key", ["add", "x"], "accented-key", 2, "non-ASCII"),
    ("empty key", ["add", "x"], "", 2, "no key on standard input"),
    ("blank key", ["add", "x"], " \n\t\n", 2, "no key on standard input"),
    ("not a key", ["add", "x"], "hello-world", 2, "not an OpenAI key"),
    ("full card", ["add", "x", "--card", "4111111111111111"], CANARY, 2, "full card number"),
    ("full card spaces", ["add", "x", "--card", "Visa 4111 1111 1111 1111"], CANARY, 2,
     "full card number"),
    ("full card dashes", ["add", "x", "--card", "4111-1111-1111-1111"], CANARY, 2,
     "full card number"),
    ("admin --activate", ["add", "x", "--project", "ops", "--activate"], "admin-key", 1,
     "admin key"),
    ("plain http url", ["add", "x", "--base-url", "http://example.com/v1"], CANARY, 2,
     "plain http"),
    ("ftp url", ["add", "x", "--base-url", "ftp://example.com/v1"], CANARY, 2, "http(s)"),
    ("url with credentials", ["add", "x", "--base-url", "https://bob:hunter2@example.com/v1"],
     CANARY, 2, "user name or password"),
    ("bad org id", ["add", "x", "--org-id", "org_abc123"], CANARY, 2, "org-…"),
    ("bad project id", ["add", "x", "--project-id", "proj-abc123"], CANARY, 2, "proj_…"),
    ("credit -1", ["add", "x", "--credit", "-1"], CANARY, 2, "between 0 and"),
    ("credit nan", ["add", "x", "--credit", "nan"], CANARY, 2, "between 0 and"),
    ("credit inf", ["add", "x", "--credit", "inf"], CANARY, 2, "between 0 and"),
    ("credit abc", ["add", "x", "--credit", "abc"], CANARY, 2, "not a number"),
    ("priority abc", ["add", "x", "--priority", "abc"], CANARY, 2, "whole number"),
    ("bad entry name", ["add", "bad name"], CANARY, 2, "must be 1-64"),
    ("bad project name", ["add", "x", "--project", "-p"], CANARY, 2, "project"),
    ("bad tag", ["add", "x", "--tag", "a b"], CANARY, 2, "tag"),
    ("note with escape", ["add", "x", "--note", "\x1b[2Jgone"], CANARY, 2, "control"),
    ("unknown --status", ["edit", "main", "--status", "paused"], None, 2, "'paused' is not one"),
    ("list unknown --status", ["list", "--status", "paused"], None, 2, "'paused' is not one"),
    ("admin edit --status active", ["edit", "adm", "--status", "active"], None, 1, "admin key"),
    ("edit unknown entry", ["edit", "ghost", "--note", "x"], None, 1, "no entry named 'ghost'"),
    ("rename onto another", ["edit", "spare", "--name", "main"], None, 1, "already exists"),
    ("move to a full phone", ["edit", "home", "--phone", UK], None, 1, "already verified 2"),
    ("edit secret to a stored one", ["edit", "main", "--secret"], "key:spare", 1,
     "already stored as 'spare'"),
    ("edit secret to a bad one", ["edit", "main", "--secret"], "spaced-key", 2, "spaces"),
    ("edit secret to admin on active", ["edit", "main", "--secret"], "admin-key", 1,
     "admin key"),
    ("edit provider openai on admin", ["edit", "adm", "--status", "active", "--provider",
                                        "openai"], None, 1, "admin key"),
    ("edit nothing", ["edit", "main"], None, 2, "nothing to change"),
    ("edit bad credit", ["edit", "main", "--credit", "nan"], None, 2, "credit"),
    ("edit bad card", ["edit", "main", "--card", "4111 1111 1111 1111"], None, 2, "full card"),
    ("show unknown", ["show", "ghost"], None, 1, "no entry named 'ghost'"),
    ("get unknown", ["get", "ghost"], None, 1, "no entry named 'ghost'"),
    ("rm unknown", ["rm", "ghost", "--yes"], None, 1, "no entry named 'ghost'"),
    ("get project without active", ["get", "--project", "ops"], None, 1, "no active key"),
    ("get name and project", ["get", "main", "--project", "work"], None, 2, "not both"),
    ("rm without --yes", ["rm", "main"], None, 2, "needs confirmation"),
    ("unknown command", ["frobnicate"], None, 2, "no such command"),
    ("unknown option", ["list", "--frob"], None, 2, "no such option"),
    ("init twice", ["init", "--work-factor", "10"], None, 1, "already exists"),
    ("wrong passphrase", ["list"], None, 3, "wrong passphrase"),
    ("wrong passphrase on add", ["add", "x"], CANARY, 3, "wrong passphrase"),
]
# fmt: on


def _stdin(kind: str | None, shared: Shared) -> tuple[str | None, list[str]]:
    """The stdin text for a case and the secrets that must not show up in the output."""
    key = make_key()
    built = {
        CANARY: key,
        "split-key": key[:40] + "\n" + key[40:],
        "spaced-key": key[:40] + " " + key[40:],
        "bearer-key": "Bearer " + key,
        "accented-key": key[:40] + "é" + key[40:],
        "admin-key": make_key("sk-admin-", 58),
    }
    if kind is None:
        return None, []
    if kind.startswith("key:"):
        return shared.keys[kind[4:]], []
    text = built.get(kind, kind)
    return text, [key] if kind in built else []


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_cleanly(case, shared, snapshot):
    label, argv, stdin, code, words = case
    text, secrets_ = _stdin(stdin, shared)
    env = {"KEYVAULT_PASSPHRASE": "not the passphrase"} if "wrong passphrase" in label else {}
    before = snapshot(shared.cli.home)
    result = shared.cli(*argv, input=text, env=env)
    message = check_refusal(result, code, *secrets_, *shared.keys.values(), shared.identity)
    assert words in message, f"{label}: {message}"
    assert snapshot(shared.cli.home) == before, f"{label} changed the vault"


@pytest.mark.slow
def test_phone_full_hint_names_the_phone_with_room(shared, snapshot):
    before = snapshot(shared.cli.home)
    result = shared.cli("add", "x", "--phone", UK, input=make_key())
    check_refusal(result, 1)
    assert result.err.splitlines()[1] == f"keyvault: hint: phones with a free slot: {US}"
    assert snapshot(shared.cli.home) == before


# --- no passphrase source, no vault, init twice --------------------------------------------


def _without_passphrase(cli: Cli) -> Cli:
    return Cli(cli.home, {k: v for k, v in cli.env.items() if not k.startswith("KEYVAULT_PASS")})


@pytest.mark.parametrize(
    "argv", [["list"], ["get", "main"], ["add", "x"], ["passwd"], ["identity", "export"]]
)
@pytest.mark.slow
def test_no_passphrase_source_fails_fast_with_exit_3(argv, shared, snapshot):
    locked = _without_passphrase(shared.cli)
    before = snapshot(shared.cli.home)
    start = time.monotonic()
    result = locked(*argv, input=make_key() if argv[0] == "add" else None, timeout=20)
    assert time.monotonic() - start < 5, "must not wait for input"
    message = check_refusal(result, 3, *shared.keys.values())
    assert "no terminal" in message
    assert "KEYVAULT_" in result.err.splitlines()[1]
    assert snapshot(shared.cli.home) == before


def test_passwd_without_a_new_passphrase_names_the_variable_to_set(shared, snapshot):
    before = snapshot(shared.cli.home)
    result = shared.cli("passwd", "--work-factor", "10")
    check_refusal(result, 3)
    assert "KEYVAULT_NEW_PASSPHRASE" in result.err.splitlines()[1]
    assert snapshot(shared.cli.home) == before


def test_init_without_a_passphrase_creates_nothing(cli):
    result = _without_passphrase(cli)("init", "--work-factor", "10", timeout=20)
    check_refusal(result, 3)
    assert "KEYVAULT_PASSPHRASE" in result.err
    assert not (cli.home / "vault.age").exists() and not (cli.home / "identity.age").exists()


def test_init_with_a_short_passphrase_creates_nothing(cli):
    result = cli("init", "--work-factor", "10", env={"KEYVAULT_PASSPHRASE": "short"})
    assert "at least 8 characters" in check_refusal(result, 2, "short")
    assert not (cli.home / "vault.age").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["show", "x"],
        ["get", "--project", "p"],
        ["phones"],
        ["log"],
        ["add", "x"],
        ["rm", "x", "--yes"],
    ],
)
def test_commands_before_init_say_to_run_init(argv, cli):
    result = cli(*argv, input=make_key() if argv[0] == "add" else None)
    message = check_refusal(result, 1)
    assert message.startswith("no vault at ")
    assert result.err.splitlines()[1] == "keyvault: hint: run `keyvault init` to create one"
    assert not (cli.home / "vault.age").exists()


def test_init_twice_overwrites_nothing(shared, snapshot):
    before = snapshot(shared.cli.home)
    for env in ({}, {"KEYVAULT_PASSPHRASE": "another passphrase"}):
        result = shared.cli("init", "--work-factor", "10", env=env)
        assert "already exists" in check_refusal(result, 1)
    assert snapshot(shared.cli.home) == before
    shared.cli.ok("get", "main")  # the old passphrase still opens it


# --- damaged, truncated and foreign vault files ---------------------------------------------


def _foreign_age_file(_: bytes, __: Shared) -> bytes:
    stranger = age.X25519Identity.generate()
    return age.encrypt(b'{"format": "keyvault/1"}', [stranger.recipient()])


def _sealed_to_vault(plain: bytes) -> Callable[[bytes, Shared], bytes]:
    def build(_: bytes, shared: Shared) -> bytes:
        identity = age.X25519Identity.parse(shared.identity)
        return age.encrypt(plain, [identity.recipient()])

    return build


def _flip(offset: int) -> Callable[[bytes, Shared], bytes]:
    def build(data: bytes, _: Shared) -> bytes:
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        return bytes(damaged)

    return build


def _future_doc() -> bytes:
    return json.dumps(
        {"format": "keyvault/9", "generation": 1, "entries": [], "recipients": [], "history": []}
    ).encode()


# (id, how to turn the good vault.age into a bad one, exit code, words)
DAMAGE = [
    ("empty file", lambda data, _: b"", 4, "not an age file"),
    (
        "png header",
        lambda data, _: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(50),
        4,
        "not an age file",
    ),
    ("random bytes", lambda data, _: secrets.token_bytes(400), 4, "not an age file"),
    ("truncated header", lambda data, _: data[:60], 4, "header"),
    ("truncated payload", lambda data, _: data[:-20], 4, "payload"),
    ("flipped payload byte", _flip(-5), 4, "payload"),
    ("trailing garbage", lambda data, _: data + b"x", 4, "payload"),
    ("age file for another recipient", _foreign_age_file, 3, "cannot open vault.age"),
    (
        "format keyvault/9",
        _sealed_to_vault(_future_doc()),
        4,
        "vault.age: unsupported format keyvault/9",
    ),
    ("decrypted garbage", _sealed_to_vault(b"\x00not json"), 4, "not JSON"),
    ("decrypted list", _sealed_to_vault(b"[]"), 4, "not a keyvault document"),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", DAMAGE, ids=[row[0] for row in DAMAGE])
def test_damaged_vault_is_reported_and_never_rewritten(case, shared, tmp_path, snapshot):
    label, damage, code, words = case
    cli = shared.copy(tmp_path / "kv")
    vault = cli.home / "vault.age"
    vault.write_bytes(damage(vault.read_bytes(), shared))
    before = snapshot(cli.home)
    for argv, stdin in ((["list"], None), (["add", "new"], make_key())):
        result = cli(*argv, input=stdin)
        message = check_refusal(result, code, *shared.keys.values(), shared.identity)
        assert words in message, f"{label} / {argv[0]}: {message}"
    assert snapshot(cli.home) == before
    if code == 4 and "unsupported" in words:
        assert "upgrade" in result.err.splitlines()[1]


def test_a_symlinked_vault_file_is_refused(shared, tmp_path, snapshot):
    cli = shared.copy(tmp_path / "kv")
    vault = cli.home / "vault.age"
    real = tmp_path / "elsewhere.age"
    vault.rename(real)
    vault.symlink_to(real)
    before = snapshot(cli.home)
    message = check_refusal(cli("list"), 1)
    assert "symlink" in message
    assert snapshot(cli.home) == before
