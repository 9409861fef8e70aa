"""Rough edges of the everyday commands, found by trying them as a stranger would: how `log`
reads, one form for times, `unlock` options that contradict each other, keys pasted from
Windows, following and forgetting `.env` files, `doctor` on a broken config.toml, and what
the `import` plan says about keys that another row displaced. Real processes, real files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.terminal import in_terminal
from tests.helpers import PASSPHRASE, Cli, make_key


def test_log_details_read_as_words_not_python(vault_cli: Cli) -> None:
    cli = vault_cli
    cli.add("a", make_key(), "--project", "p")
    cli.ok("edit", "a", "--note", "n", "--tag", "x")
    text = cli.ok("log", "a").out
    edit = next(line for line in text.splitlines() if " edit " in line)
    assert edit.endswith("project: p; fields: note, tags"), edit
    assert "[" not in text and "'" not in text and "=" not in text
    assert "project: p; status: active" in text  # the add event, in the same form
    events = json.loads(cli.ok("log", "a", "--json").out)
    assert events[-1]["fields"] == ["note", "tags"]  # JSON keeps the list


def test_utc_times_read_as_local_times_do_where_the_zone_is_utc(vault_cli: Cli) -> None:
    """`--utc` used to print `15:01Z` while a machine set to UTC printed `15:01 UTC`: the
    same instant in two spellings. Now `--utc` from Shanghai prints what local time prints
    in London in winter, for every command that shows times."""
    cli = vault_cli
    cli.add("a", make_key(), "--project", "p")
    for command in (["log"], ["show", "a"]):
        asked = cli.ok(*command, "--utc", env={"TZ": "Asia/Shanghai"}).out
        local = cli.ok(*command, env={"TZ": "UTC"}).out
        assert asked == local
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", asked), asked
        assert not re.search(r"\d\d:\d\dZ", asked)
        shanghai = cli.ok(*command, env={"TZ": "Asia/Shanghai"}).out
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CST", shanghai)  # local by default


def test_unlock_refuses_an_idle_timeout_longer_than_the_session(vault_cli: Cli) -> None:
    cli = vault_cli
    for args in (["--ttl", "1h", "--idle", "2h"], ["--idle", "9h"]):  # 9h > the default 8h
        result = cli("unlock", *args)
        assert result.code == 2, result.err
        assert "is longer than --ttl" in result.err.splitlines()[0]
        assert "locked" in cli.ok("status").out  # nothing started
    empty = cli("unlock", "--idle", "")  # an empty value is a mistake, not "no idle timeout"
    assert empty.code == 2 and "invalid duration ''" in empty.err
    started = cli.ok("unlock", "--ttl", "1h", "--idle", "1h")  # equal: harmless, accepted
    try:
        assert started.out.startswith("unlocked until")
        assert started.out.endswith(", or after 1h unused\n")  # the idle timeout is said too
    finally:
        cli.ok("lock")


# --- keys pasted from Windows ---------------------------------------------------------------

BOM = "\ufeff"


def run_bytes(cli: Cli, *args: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """The CLI with `data` as stdin byte for byte (a Windows file or pipe, not text)."""
    return subprocess.run(
        [sys.executable, "-m", "vault", *args],
        input=data,
        capture_output=True,
        env=cli.env,
        timeout=60,
        check=False,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    "carried",
    [
        lambda key: (BOM + key + "\r\n").encode(),  # Notepad's UTF-8, type key.txt | …
        lambda key: (BOM + key + "\r\n").encode("utf-16-le"),  # PowerShell 5's `>` file
        lambda key: (" \t" + key + "\u00a0\u200b\n").encode(),  # copied from a web page
    ],
    ids=["utf8-bom-crlf", "utf16-bom", "spaces-nbsp-zwsp"],
)
def test_a_key_piped_with_a_bom_or_whitespace_is_stored_clean(vault_cli: Cli, carried) -> None:
    cli = vault_cli
    key, replacement = make_key(), make_key()
    added = run_bytes(cli, "add", "k", "--project", "p", data=carried(key))
    assert added.returncode == 0, added.stderr
    assert cli.ok("get", "k").out == key + "\n"  # stored exactly, nothing carried along
    edited = run_bytes(cli, "edit", "k", "--secret", data=carried(replacement))
    assert edited.returncode == 0, edited.stderr
    assert cli.ok("get", "k").out == replacement + "\n"


def test_a_bom_inside_a_key_is_still_refused(vault_cli: Cli) -> None:
    key = make_key()
    inside = run_bytes(vault_cli, "add", "k", data=(key[:20] + BOM + key[20:]).encode())
    assert inside.returncode == 2
    assert inside.stderr.decode().splitlines() == [
        "keyvault: error: the key contains non-ASCII characters"
    ]
    only_marks = run_bytes(vault_cli, "add", "k", data=(BOM + "\r\n").encode())
    assert only_marks.returncode == 2
    assert b"no key on standard input" in only_marks.stderr
    assert json.loads(vault_cli.ok("list", "--json").out) == []


@pytest.mark.slow
def test_a_key_pasted_at_the_prompt_with_a_bom_and_spaces_is_stored_clean(
    vault_cli: Cli,
) -> None:
    key = make_key()
    env = {k: v for k, v in vault_cli.env.items() if k != "KEYVAULT_PASSPHRASE"}
    term = in_terminal(["add", "k", "--project", "p"], {**env, "TERM": "dumb"})
    term.expect("passphrase: ")
    term.send(PASSPHRASE + "\n")
    term.expect("key: ")
    term.send(BOM + key + "  \n")
    assert term.wait() == 0, term.text
    assert vault_cli.ok("get", "k").out == key + "\n"


def test_import_takes_keys_saved_with_a_bom_or_spaces(vault_cli: Cli, tmp_path: Path) -> None:
    """Every import source reaches the store through one boundary: a cell, an llm alias."""
    cli = vault_cli
    in_cell, in_json = make_key(), make_key()
    table = tmp_path / "keys.csv"  # a BOM at the top of the file, and one inside a cell
    table.write_bytes((BOM + f"name,key,project\r\na,{BOM}{in_cell} ,p\r\n").encode())
    llm = tmp_path / "keys.json"
    llm.write_text(json.dumps({"openai": f"{BOM}{in_json}\r\n"}), encoding="utf-8")
    plan = json.loads(cli.ok("import", str(table), str(llm), "--json").out)
    assert [a["name"] for a in plan["added"]] == ["a", "openai"], plan
    assert cli.ok("get", "a").out == in_cell + "\n"
    assert cli.ok("get", "openai").out == in_json + "\n"


# --- .env files keyvault follows ---------------------------------------------------------------


def test_a_followed_env_file_can_be_listed_and_forgotten(vault_cli: Cli, tmp_path: Path) -> None:
    """`keyvault dotenv PATH` registered a file for good: a file moved to another tool, or one
    that now holds someone else's key, warned at every change of the project's key, and no
    command could stop that."""
    cli = vault_cli
    cli.add("a", make_key(), "--project", "work")
    app = tmp_path / "app"
    app.mkdir()
    env_file = app / ".env"
    cli.ok("dotenv", str(env_file), "--project", "work")
    listed = cli.ok("dotenv", "--list").out.splitlines()
    assert listed[0].split() == ["PROJECT", "PATH", "SINCE"]
    assert listed[1].split()[:2] == ["work", str(env_file)]
    assert cli.ok("dotenv", "--list", "--project", "other").out.startswith("no .env files")

    theirs = make_key()
    env_file.write_text(f"OPENAI_API_KEY={theirs}\n")  # the file now belongs to someone else
    changed = cli.ok("add", "b", "--project", "work", "--activate", input=make_key())
    assert "holds a key that is not this project's" in changed.err
    assert (
        "keyvault: warning: a file keyvault should no longer rewrite: keyvault dotenv --forget"
        in changed.err
    )

    link = tmp_path / "link"
    link.symlink_to(app)  # the same file by another path
    forgot = cli.ok("dotenv", "--forget", str(link / ".env"))
    assert forgot.out.startswith(f"no longer following {env_file} (work); the file is unchanged")
    assert env_file.read_text() == f"OPENAI_API_KEY={theirs}\n"
    quiet = cli.ok("edit", "a", "--status", "active")  # a key change: no file to warn about
    assert quiet.err == ""
    assert cli.ok("dotenv", "--list").out.startswith("no .env files are followed")
    forget = next(line for line in cli.ok("log").out.splitlines() if "export-forget" in line)
    assert forget.split()[3:] == ["export-forget", "-", "project:", "work;", "path:", str(env_file)]

    again = cli("dotenv", "--forget", str(env_file))
    assert again.code == 1
    assert "is not a .env file keyvault keeps up to date" in again.err
    assert "registered: none" in again.err


def test_one_env_file_under_two_spellings_is_one_registration(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """On a case-insensitive disk (macOS, Windows) `Proj/.env` and `proj/.env` are one file,
    as a symlinked folder is here: the second spelling was a second registration, so two
    projects took turns rewriting one file, and `--forget` under one spelling left the other
    rewriting it after saying "no longer following"."""
    cli = vault_cli
    work_key = cli.add("a", make_key(), "--project", "work")
    play_key = cli.add("b", make_key(), "--project", "play")
    app = tmp_path / "app"
    app.mkdir()
    link = tmp_path / "App"
    link.symlink_to(app)
    cli.ok("dotenv", str(app / ".env"), "--project", "work")
    cli.ok("dotenv", str(link / ".env"), "--project", "play")  # moves it, as any path would
    listed = cli.ok("dotenv", "--list").out.splitlines()[1:]
    assert [line.split()[:2] for line in listed] == [["play", str(app / ".env")]]
    cli.ok("add", "a2", "--project", "work", "--activate", input=make_key())
    assert f"OPENAI_API_KEY={play_key}" in (app / ".env").read_text()

    cli.ok("dotenv", "--forget", str(link / ".env"))
    assert cli.ok("dotenv", "--list").out.startswith("no .env files are followed")
    held = (app / ".env").read_bytes()
    cli.ok("add", "b2", "--project", "play", "--activate", input=make_key())
    assert (app / ".env").read_bytes() == held
    assert work_key.encode() not in held


def test_dotenv_options_that_contradict_are_usage_errors(vault_cli: Cli) -> None:
    for args in ([], ["--forget"], ["--list", ".env"], ["--list", "--forget"]):
        result = vault_cli("dotenv", *args)
        assert result.code == 2, args
        assert result.err.startswith("keyvault: error: give a PATH, or --list alone")


# --- what the import plan says --------------------------------------------------------------


def test_the_import_plan_says_which_active_keys_a_later_row_displaced(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """Rows say `status=active` for two keys of one project, and one for a project whose
    active key is already in the vault. The plan showed the first row as plain `standby`
    (its status at the end, as if it had asked for that) and never said that the vault's
    own active key stopped being exported."""
    cli = vault_cli
    cli.add("old", make_key(), "--project", "demo")
    table = tmp_path / "keys.csv"
    projects = {"b1": "imp", "b2": "imp", "b3": "demo"}
    rows = [f"{name},{make_key()},{project},active" for name, project in projects.items()]
    table.write_text("name,key,project,status\n" + "\n".join(rows) + "\n")
    heading = "no longer active (a row of this import became its project's active key):"
    for dry in (["--dry-run"], []):
        shown = cli.ok("import", str(table), *dry).out.splitlines()
        status = {line.split()[0]: line.split()[2:-2] for line in shown[2:5]}
        assert status == {"b1": ["active", "->", "standby"], "b2": ["active"], "b3": ["active"]}
        assert shown[shown.index(heading) + 1 :] == [
            "  old (demo, in the vault before): b3 is active now",
            f"  b1 (imp, {table}:2): b2 is active now",
        ]
    plan = json.loads(cli.ok("import", str(table), "--dry-run", "--json").out)
    assert plan["added"] == []  # all three are in the vault now: skipped as duplicates
    listed = {e["name"]: e["status"] for e in json.loads(cli.ok("list", "--json").out)}
    assert listed == {"old": "standby", "b1": "standby", "b2": "active", "b3": "active"}


def test_the_import_json_keeps_the_status_a_row_was_added_with(
    vault_cli: Cli, tmp_path: Path
) -> None:
    table = tmp_path / "keys.csv"
    table.write_text(f"name,key,status\nx1,{make_key()},active\nx2,{make_key()},active\n")
    plan = json.loads(vault_cli.ok("import", str(table), "--project", "p", "--json").out)
    assert [(a["name"], a["added_as"], a["status"]) for a in plan["added"]] == [
        ("x1", "active", "standby"),
        ("x2", "active", "active"),
    ]
    assert plan["displaced"] == [{"name": "x1", "project": "p", "where": f"{table}:2", "by": "x2"}]


# --- edits that change nothing --------------------------------------------------------------


def test_an_edit_that_changes_nothing_saves_nothing(vault_cli: Cli) -> None:
    """`edit a --note same` said `updated a`, wrote a history event claiming the note
    changed, and saved a new vault generation (a commit to share in a team vault, and the
    backup of the real previous version overwritten). Now only what differs is recorded."""
    cli = vault_cli
    key = cli.add("a", make_key(), "--project", "p")
    cli.ok("edit", "a", "--note", "n", "--tag", "x")
    vault = cli.home / "vault.age"
    before = (vault.read_bytes(), (cli.home / "vault.age.bak").read_bytes())
    history = cli.ok("log", "--json").out
    for args in (
        ["--note", "n"],
        ["--tag", "x"],
        ["--status", "active"],
        ["--name", "a"],
        ["--project", "p"],
        ["--note", "n", "--tag", "x", "--status", "active"],
    ):
        result = cli.ok("edit", "a", *args)
        assert result.out == "unchanged a: it already had those values\n", args
    same_key = cli.ok("edit", "a", "--secret", input=key)
    assert same_key.out.startswith("unchanged a")
    assert (vault.read_bytes(), (cli.home / "vault.age.bak").read_bytes()) == before
    assert cli.ok("log", "--json").out == history
    mixed = cli.ok("edit", "a", "--note", "n", "--priority", "3")
    assert mixed.out == "updated a\n"
    assert json.loads(cli.ok("log", "--json").out)[-1]["fields"] == ["priority"]


def test_show_marks_an_empty_tag_list_as_every_empty_field(vault_cli: Cli) -> None:
    vault_cli.add("a", make_key(), "--project", "p")
    lines = dict(line.split(None, 1) for line in vault_cli.ok("show", "a").out.splitlines()[:16])
    assert lines["tags"] == "-" and lines["note"] == "-"  # `tags` was printed blank
    vault_cli.ok("edit", "a", "--tag", "x", "--tag", "y")
    assert "tags        x, y" in vault_cli.ok("show", "a").out


def test_import_reads_a_spreadsheet_status_in_any_case(vault_cli: Cli, tmp_path: Path) -> None:
    """Excel and Google Sheets capitalise (`Active`); such rows were skipped as "status
    'Active' is not one of active, standby, …"."""
    table = tmp_path / "keys.csv"
    rows = ["Standby", "Active ", "RETIRED", "enabled"]
    table.write_text(
        "name,key,status\n" + "".join(f"r{n},{make_key()},{s}\n" for n, s in enumerate(rows))
    )
    plan = json.loads(vault_cli.ok("import", str(table), "--project", "p", "--json").out)
    assert [(a["name"], a["status"]) for a in plan["added"]] == [
        ("r0", "standby"),
        ("r1", "active"),
        ("r2", "retired"),
    ]
    assert [s["reason"] for s in plan["skipped"]] == [
        "status 'enabled' is not one of active, standby, disabled, retired"
    ]


def test_credit_and_dates_as_spreadsheets_write_them(vault_cli: Cli, tmp_path: Path) -> None:
    """A currency-formatted cell exports as `$1,234.50` and a date cell in a Chinese or
    Japanese locale as `2026/11/1`: such rows were skipped as "not a number" and "not
    YYYY-MM-DD". Ambiguous forms (`12,50`, `11/01/2026`) are still refused, never guessed."""
    cli = vault_cli
    table = tmp_path / "keys.csv"
    rows = [
        ("a", '"$1,234.50"', "2026/11/1"),
        ("b", "20 USD", "2026.02.03"),
        ("c", '"12,50"', "2026-01-01"),
        ("d", "5", "11/01/2026"),
    ]
    table.write_text(
        "name,key,credit,created\n"
        + "".join(f"{n},{make_key()},{credit},{day}\n" for n, credit, day in rows)
    )
    plan = json.loads(cli.ok("import", str(table), "--project", "p", "--json").out)
    assert [s["reason"] for s in plan["skipped"]] == [
        "credit '12,50' is not a number",
        "date '11/01/2026' is not YYYY-MM-DD",
    ]
    listed = json.loads(cli.ok("list", "--json").out)
    shown = {e["name"]: (e["credit_usd"], e["created"]) for e in listed}
    assert shown == {"a": (1234.5, "2026-11-01"), "b": (20.0, "2026-02-03")}
    cli.ok("edit", "a", "--credit", "$12.50", "--created", "2026/1/2")
    edited = json.loads(cli.ok("show", "a", "--json").out)
    assert (edited["credit_usd"], edited["created"]) == (12.5, "2026-01-02")
    refused = cli("edit", "a", "--created", "2026/13/01")
    assert refused.code == 2 and "date '2026/13/01' is not YYYY-MM-DD" in refused.err


# --- project names ---------------------------------------------------------------------------


def test_a_project_typed_in_another_case_is_refused_not_started(
    vault_cli: Cli, tmp_path: Path
) -> None:
    """Projects are told apart by exact name: `add --project Work` beside `work` silently
    started a second project, which `env` in the first never exported."""
    cli = vault_cli
    cli.add("a", make_key(), "--project", "work")
    typo = cli("add", "b", "--project", "Work", input=make_key())
    assert typo.code == 2
    assert typo.err.splitlines() == [
        "keyvault: error: project 'Work' differs from the existing project 'work' only in case",
        "keyvault: hint: use --project work",
    ]
    cli.add("c", make_key(), "--project", "other")
    moved = cli("edit", "c", "--project", "WORK")
    assert moved.code == 2 and "only in case" in moved.err
    table = tmp_path / "keys.csv"
    table.write_text(f"name,key,project\nd,{make_key()},Work\ne,{make_key()},work\n")
    plan = json.loads(cli.ok("import", str(table), "--json").out)
    assert [a["name"] for a in plan["added"]] == ["e"]
    assert plan["skipped"][0]["reason"].startswith("project 'Work' differs from the existing")
    listed = json.loads(cli.ok("list", "--json").out)
    assert sorted({e["project"] for e in listed}) == ["other", "work"]
    cli.add("f", make_key(), "--project", "new")  # a new project of its own is fine


# --- changes of what a project exports are said -------------------------------------------------


def test_add_edit_and_rm_say_when_the_active_key_changed(vault_cli: Cli) -> None:
    """`add --activate` and `edit --status active` made another key standby, and `rm` or
    `edit --status standby` of the active key left its project with none, all without a
    word: the next `env` in that project exported another key, or failed."""
    cli = vault_cli
    cli.add("a", make_key(), "--project", "p")
    took = cli.ok("add", "b", "--project", "p", "--activate", input=make_key())
    assert took.out.startswith("added b (sk-proj-…") and took.out.endswith(
        "to p as active; a is standby now\n"
    )
    assert cli.ok("edit", "a", "--status", "active").out == "updated a; b is standby now\n"
    set_aside = cli.ok("edit", "a", "--status", "retired").out
    assert (
        set_aside
        == "updated a; p has no active key now (`keyvault rotate --project p` picks one)\n"
    )
    cli.ok("edit", "b", "--status", "active")
    moved = cli.ok("edit", "b", "--project", "q").out  # the active key moves: p has none
    assert moved == "updated b; p has no active key now (`keyvault rotate --project p` picks one)\n"
    assert cli.ok("rm", "b", "--yes").out == (
        "removed b; q has no active key now (`keyvault rotate --project q` picks one)\n"
    )
    cli.add("c", make_key())  # the default project
    assert cli.ok("rm", "c", "--yes").out.endswith(
        "the default project has no active key now (`keyvault rotate --project ''` picks one)\n"
    )
    assert cli.ok("edit", "a", "--note", "n").out == "updated a\n"  # a standby key: nothing


def test_a_typo_of_a_project_without_an_active_key_gets_did_you_mean(vault_cli: Cli) -> None:
    """`env --project dem` for `demo`, whose keys are all standby, said "add one with
    `keyvault add NAME`": only projects with an active key were compared."""
    cli = vault_cli
    cli.add("a", make_key(), "--project", "demo", "--standby")
    for command in (["env"], ["get"], ["exec", "--", "true"]):
        result = cli(*command[:1], "--project", "dem", *command[1:])
        assert result.code == 1, command
        assert result.err.splitlines() == [
            "keyvault: error: project 'dem' has no keys",
            "keyvault: hint: did you mean 'demo'?",
        ]
    assert "has no active key" in cli("env", "--project", "demo").err
