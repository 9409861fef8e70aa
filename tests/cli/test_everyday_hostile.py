"""The everyday vault under hostile input: what a stranger types into `add`, `edit`,
config.toml and the environment gets one line and a non-zero exit, and never leaves a vault
that later commands cannot open."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import Cli, add, files, make_key, open_vault
from vault.cli.variables import USER_VARIABLES
from vault.errors import UnreadableChange
from vault.model.document import VaultDoc

# bidi overrides and isolates: they reorder what a terminal shows ("evil\u202eexe.txt")
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("char", BIDI)
@pytest.mark.parametrize("option", ["--card", "--note"])
def test_bidi_metadata_is_refused_and_the_vault_still_opens(
    vault_cli: Cli, option: str, char: str
) -> None:
    vault_cli.add("main-1", None, "--project", "demo")
    before = files(vault_cli.home)
    added = vault_cli("add", "x1", "--project", "demo", option, f"Wild{char}Card", input=make_key())
    edited = vault_cli("edit", "main-1", option, f"Wild{char}Card")
    for result in (added, edited):
        assert result.code == 2, result.err
        assert result.err.count("\n") == 1 and "control characters" in result.err
        assert char not in result.err
    assert files(vault_cli.home) == before
    vault_cli.ok("list")


def test_a_save_never_writes_an_entry_the_reader_refuses(vault_cli: Cli) -> None:
    """The last guard, for any path past the input checks: the change is refused, whole."""
    kv = open_vault(vault_cli.home)
    add(kv, "main-1", make_key(), project="demo")
    before = files(vault_cli.home)

    def smuggle(doc: VaultDoc) -> None:
        doc.entries[0] = doc.entries[0].evolve(card="Wild\u202eCard")

    with pytest.raises(UnreadableChange, match=r"entries\[0\]\.card is not a card label"):
        kv.transact(smuggle)
    assert files(vault_cli.home) == before
    assert vault_cli.ok("list").out.startswith("NAME")


@pytest.mark.slow
def test_config_values_of_the_wrong_kind_are_refused(vault_cli: Cli) -> None:
    vault_cli.add("main-1", None, "--project", "demo")
    before = files(vault_cli.home)
    for line in (
        "phone_slots = true",  # a bool is an int to Python; to the user it is a mistake
        "scrypt_log_n = true",
        'default_project = ""',
        'default_project = "de\\u001b[31mmo"',
        'default_project = "demo\\u202e"',
        'default_project = "two words"',
    ):
        (vault_cli.home / "config.toml").write_text(line + "\n", encoding="utf-8")
        setting = line.split(" ", 1)[0]
        for command in (("add", "x1"), ("env",)):
            result = vault_cli(*command, input=make_key())
            assert result.code == 1, (line, command, result.err)
            expected = f"{vault_cli.home}/config.toml: bad value for {setting}"
            assert result.err == f"keyvault: error: {expected}\n"
        (vault_cli.home / "config.toml").unlink()
        assert files(vault_cli.home) == before
    (vault_cli.home / "config.toml").write_text('default_project = "demo"\nphone_slots = 3\n')
    assert "OPENAI_API_KEY" in vault_cli.ok("env").out


def test_a_misspelt_keyvault_variable_is_named_not_ignored_silently(vault_cli: Cli) -> None:
    vault_cli.add("main-1", None, "--project", "demo")
    for command in (("list",), ("env", "--project", "demo")):  # click, and the fast path
        result = vault_cli(
            *command,
            env={"KEYVAULT_HOEM": "/elsewhere", "KEYVAULT_PROJECT": "demo", "KEYVAULT_\x1b[2J": ""},
        )
        assert result.code == 0, result.err
        assert result.err.splitlines() == [
            "keyvault: warning: KEYVAULT_?[2J is not a keyvault variable: ignored",
            "keyvault: warning: KEYVAULT_HOEM is not a keyvault variable: ignored; did you mean"
            " KEYVAULT_HOME?",
            "keyvault: warning: KEYVAULT_PROJECT is not a keyvault variable: ignored; choose the"
            " project with --project, a .keyvault.toml or default_project",
        ]
    assert vault_cli.ok("list", env={"KEYVAULT_DEBUG": "1"}).err == ""


@pytest.mark.parametrize("where", [("--vault", ""), ("list", "--vault="), ("env", "--vault", "")])
def test_an_empty_vault_path_is_refused_not_replaced(
    vault_cli: Cli, where: tuple[str, ...]
) -> None:
    """`--vault "$DIR"` with DIR unset must not open the KEYVAULT_HOME (or default) vault."""
    args = [*where, "list"] if where[0] == "--vault" else list(where)
    result = vault_cli(*args)
    assert (result.code, result.out) == (2, "")
    assert result.err == "keyvault: error: --vault needs a folder; it was given an empty path\n"


def test_a_vault_home_that_is_a_file_is_named_once(cli: Cli, tmp_path: Path) -> None:
    a_file = tmp_path / "vault.age"
    a_file.write_bytes(b"not a folder")
    for command in (("list",), ("init",), ("status",), ("env",)):
        result = cli(*command, env={"KEYVAULT_HOME": str(a_file)})
        assert result.code == 1, result.err
        assert result.err.splitlines()[0] == (
            f"keyvault: error: {a_file}: the vault home is a file, not a folder"
        )
    assert a_file.read_bytes() == b"not a folder"


def test_a_missing_identity_beside_a_vault_does_not_send_you_to_init(vault_cli: Cli) -> None:
    (vault_cli.home / "identity.age").unlink()
    result = vault_cli("list")
    assert result.code == 1
    assert "keyvault init" not in result.err
    assert "vault.age is here but identity.age is not" in result.err
    assert vault_cli("init").code == 1  # what the old hint sent people to: it refuses


def test_identity_export_to_a_file_is_private_from_the_first_byte(
    vault_cli: Cli, tmp_path: Path
) -> None:
    vault_cli.add("main-1", None, "--project", "demo")
    target = tmp_path / "key.txt"
    result = vault_cli.ok("identity", "export", "--output", str(target))
    assert result.out == f"wrote {target} (0600)\n" and "AGE-SECRET-KEY-1" not in result.out
    assert target.stat().st_mode & 0o777 == 0o600
    opened = vault_cli.ok(
        "list", env={"KEYVAULT_PASSPHRASE": "", "KEYVAULT_IDENTITY_FILE": str(target)}
    )
    assert opened.out.splitlines()[1].startswith("main-1 ")
    again = vault_cli("identity", "export", "-o", str(target))
    assert again.code == 1 and "already exists; refusing to overwrite it" in again.err
    assert target.read_text().startswith("AGE-SECRET-KEY-1")


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("identity", "export"), "your secret identity"),
        (("show", "main-1", "--reveal"), "the key"),
        (("recipients", "new-ci", "ci-job"), "the CI identity"),
        (("get", "main-1"), "the key"),  # the fast path
        (("env", "--project", "demo", "--format", "dotenv"), "the key"),
        (("--vault", "{home}", "env", "--project", "demo", "--shell", "bash"), "the key"),
    ],
)
def test_a_secret_printed_into_a_file_others_can_read_warns(
    vault_cli: Cli, tmp_path: Path, args: tuple[str, ...], what: str
) -> None:
    """`keyvault identity export > key.txt` under umask 022: the shell made key.txt 0644."""
    vault_cli.add("main-1", None, "--project", "demo")
    shared = tmp_path / "out.txt"
    shared.touch()
    shared.chmod(0o644)
    args = tuple(a.replace("{home}", str(vault_cli.home)) for a in args)
    with shared.open("w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "vault", *args],
            env=vault_cli.env, stdout=out, stderr=subprocess.PIPE, text=True, check=False,
            start_new_session=True,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warning = f"standard output is a file that group or others can read, and {what} is in it"
    assert warning in proc.stderr and "AGE-SECRET" not in proc.stderr
    assert "AGE-SECRET-KEY-1" in shared.read_text() or "sk-" in shared.read_text()
    private = tmp_path / "private.txt"
    private.touch()
    private.chmod(0o600)
    with private.open("w") as out:
        quiet = subprocess.run(
            [sys.executable, "-m", "vault", "show", "main-1", "--reveal"],
            env=vault_cli.env, stdout=out, stderr=subprocess.PIPE, text=True, check=False,
            start_new_session=True,
        )  # fmt: skip
    assert quiet.returncode == 0 and "group or others" not in quiet.stderr
    assert vault_cli.ok("identity", "export").err == ""  # a pipe: nothing to warn about


def test_an_unknown_recipient_points_at_the_recipient_list(vault_cli: Cli) -> None:
    result = vault_cli("recipients", "rm", "nobody")
    assert result.code == 1
    assert result.err.splitlines()[1] == "keyvault: hint: see `keyvault recipients list`"


@pytest.mark.parametrize(
    "args",
    [
        ("list", "extra\x1b]0;pwned\x07"),  # click quotes an extra argument raw
        ("list", "\u202eextra"),
        ("show", "a", "b\x1b[2J"),
    ],
)
def test_no_error_message_carries_an_escape_to_the_terminal(
    vault_cli: Cli, args: tuple[str, ...]
) -> None:
    result = vault_cli(*args)
    assert result.code == 2
    assert result.err.startswith("keyvault: error: got unexpected extra argument")
    assert not any(c in result.err for c in ("\x1b", "\x07", "\u202e"))


def test_a_key_given_as_an_argument_is_masked_and_called_leaked(vault_cli: Cli) -> None:
    """`keyvault add NAME sk-…`: refused, and the user is told the key is in their history."""
    key = make_key()
    before = files(vault_cli.home)
    result = vault_cli("add", "main-1", key)
    assert result.code == 2 and key not in result.err
    assert result.err.splitlines() == [
        f"keyvault: error: got unexpected extra argument ({key[:8]}…{key[-4:]})",
        "keyvault: hint: a value typed on the command line is now in your shell history and"
        " was visible to ps: delete that history line, and rotate the key if it is a real one",
    ]
    assert files(vault_cli.home) == before
    plain = vault_cli("add", "main-1", "other")
    assert plain.err.splitlines()[1] == "keyvault: hint: see `keyvault add --help`"


def test_every_variable_people_set_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    automation = readme.split("## Automation", 1)[1].split("\n## ", 1)[0]
    assert [name for name in USER_VARIABLES if f"`{name}`" not in automation] == []


def test_a_wrong_passphrase_from_the_environment_says_where_it_came_from(
    vault_cli: Cli, tmp_path: Path
) -> None:
    right = tmp_path / "passphrase"
    right.write_text(vault_cli.env["KEYVAULT_PASSPHRASE"] + "\n")
    right.chmod(0o600)
    both = vault_cli(
        "list", env={"KEYVAULT_PASSPHRASE": "stale", "KEYVAULT_PASSPHRASE_FILE": str(right)}
    )
    assert both.code == 3
    assert both.err.splitlines()[1] == (
        "keyvault: hint: the passphrase in KEYVAULT_PASSPHRASE did not open identity.age"
        " (KEYVAULT_PASSPHRASE_FILE is not read when it is set)"
    )
    wrong = tmp_path / "wrong"
    wrong.write_text("stale\n")
    wrong.chmod(0o600)
    from_file = vault_cli(
        "list", env={"KEYVAULT_PASSPHRASE": "", "KEYVAULT_PASSPHRASE_FILE": str(wrong)}
    )
    assert from_file.code == 3
    assert f"hint: the passphrase in {wrong} did not open identity.age" in from_file.err
    assert "stale" not in both.err + from_file.err


@pytest.mark.slow
def test_a_name_typed_decomposed_finds_the_stored_one(vault_cli: Cli) -> None:
    """`add` stores names NFC; macOS and some input methods type `é` as e + U+0301."""
    decomposed, project, tag = "cafe\u0301", "proje\u0301", "te\u0301"
    key = vault_cli.add(decomposed, None, "--project", project, "--tag", tag)
    assert vault_cli.ok("show", decomposed).out.splitlines()[1] == "name        caf\u00e9"
    vault_cli.ok("edit", decomposed, "--note", "found")
    assert "proj\u00e9" in vault_cli.ok("list", "--project", project, "--tag", tag).out
    assert "edit" in vault_cli.ok("log", decomposed).out
    assert vault_cli.ok("get", "--project", project).out.strip() == key
    assert vault_cli.ok("get", decomposed).out.strip() == key
    vault_cli.ok("rm", decomposed, "--yes")
